import { Message } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ConnectionsModel } from './connectionsmodel';
import { h } from './dom';

/**
 * The sidebar's "Connections" section: connections by name and type (never their details),
 * and a form that creates one. The list is read when the section is shown and after a
 * creation.
 */
export class ConnectionsPanel extends Widget {
  constructor(model: ConnectionsModel = new ConnectionsModel()) {
    super();
    this._model = model;
    this.addClass('jp-OrchConnections');
    this.title.label = 'Connections';
    this._list = h('ul', 'jp-OrchConnections-list');
    this._list.setAttribute('aria-label', 'Connections');
    this._error = h('div', 'jp-OrchSidebar-error');
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    this._name = input('Name', 'text');
    this._type = input('Type (HTTP, ODBC …)', 'text');
    this._details = h('textarea', 'jp-mod-styled jp-OrchConnections-details');
    this._details.placeholder =
      'Details (JSON, secret): {"host": "…", "token": "…"}';
    this._details.setAttribute('aria-label', 'Details');
    this._details.rows = 3;
    const create = h('button', 'jp-mod-styled jp-mod-accept', 'Create');
    create.type = 'submit';
    const form = h('form', 'jp-OrchConnections-form');
    form.append(this._name, this._type, this._details, create);
    form.addEventListener('submit', this._onSubmit);
    this._form = form;
    this.node.append(this._list, this._error, form);
    model.changed.connect(this._render, this);
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._form.removeEventListener('submit', this._onSubmit);
    Signal.disconnectReceiver(this);
    super.dispose();
  }

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this._model.refresh();
  }

  private _onSubmit = (event: Event): void => {
    event.preventDefault();
    void this._create();
  };

  private async _create(): Promise<void> {
    const problem = await this._model.create(
      this._name.value,
      this._type.value,
      this._details.value
    );
    this._showError(problem);
    if (problem === null) {
      this._name.value = this._type.value = this._details.value = '';
    }
  }

  private _render(): void {
    const items = this._model.items;
    this._list.replaceChildren(
      ...(items.length
        ? items.map(conn => {
            const row = h('li', 'jp-OrchConnections-row');
            row.append(
              h('span', 'jp-OrchConnections-name', conn.name),
              h('span', 'jp-OrchConnections-type', ` ${conn.type}`)
            );
            row.title = conn.workspaceNames.length
              ? `in ${conn.workspaceNames.join(', ')}`
              : 'in no workspace';
            return row;
          })
        : [h('li', 'jp-OrchConnections-empty', 'No connections yet.')])
    );
    this._showError(this._model.error);
  }

  private _showError(message: string | null): void {
    this._error.hidden = message === null;
    this._error.textContent = message ?? '';
  }

  private _model: ConnectionsModel;
  private _list: HTMLUListElement;
  private _error: HTMLDivElement;
  private _form: HTMLFormElement;
  private _name: HTMLInputElement;
  private _type: HTMLInputElement;
  private _details: HTMLTextAreaElement;
}

function input(label: string, type: string): HTMLInputElement {
  const node = h('input', 'jp-mod-styled jp-OrchConnections-input');
  node.type = type;
  node.placeholder = label;
  node.setAttribute('aria-label', label);
  return node;
}
