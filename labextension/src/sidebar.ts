import {
  CommandToolbarButton,
  SidePanel,
  Toolbar
} from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { AccordionPanel, Widget } from '@lumino/widgets';

import { CommandIDs } from './commandids';
import { h } from './dom';
import { requestAPI } from './handler';
import { orchIcon } from './icons';
import { LoadQueue } from './loadqueue';
import { LogView } from './logview';
import { OrchModel } from './model';
import { OrchList } from './orchlist';
import { RunList } from './runlist';
import { TaskList } from './tasklist';
import type { IEngineInfo } from './types';

/**
 * The left sidebar panel "Orchestrations": a toolbar of task actions, then four
 * sections: orchestrations, tasks, the selected task's runs, the selected run's log.
 */
export class OrchSidebar extends SidePanel {
  constructor(options: OrchSidebar.IOptions) {
    super();
    const { model, commands } = options;
    this._model = model;
    this._commands = commands;
    this.id = 'jp-orch-sidebar';
    this.addClass('jp-OrchSidebar');
    this.title.icon = orchIcon;
    this.title.caption = 'Orchestrations';

    const heading = h('h2', 'jp-OrchSidebar-title', 'Orchestrations');
    this._error = h('div', 'jp-OrchSidebar-error');
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    // Which engine answers: this server's own, or the JupyterHub service of everyone's tasks.
    const engine = h('div', 'jp-OrchSidebar-engine');
    requestAPI<IEngineInfo>('engine/info', { method: 'POST', body: '{}' }).then(
      info => {
        engine.textContent = `Engine: ${info.label}`;
        engine.title = `as ${info.user}, jupyter_orch ${info.version}`;
      },
      () => undefined // the sections show the server's errors
    );
    const header = new Widget();
    header.node.append(heading, engine, this._error);
    this.header.addWidget(header);

    this.toolbar.addItem(
      'open-task',
      new CommandToolbarButton({
        commands,
        id: CommandIDs.openTask,
        label: ''
      })
    );
    for (const id of [
      CommandIDs.runNow,
      CommandIDs.pauseResume,
      CommandIDs.kill
    ]) {
      this.toolbar.addItem(id, new CommandToolbarButton({ commands, id }));
    }
    this.toolbar.addItem('spacer', Toolbar.createSpacerItem());
    this.toolbar.addItem(
      'refresh',
      new CommandToolbarButton({ commands, id: CommandIDs.refresh, label: '' })
    );

    this.addWidget(new OrchList(model));
    this.addWidget(
      new TaskList(model, taskId => {
        void commands.execute(CommandIDs.openTask, { taskId });
      })
    );
    this.addWidget(new RunList(model));
    this.addWidget(new LogView(model, commands));
    this._layoutSections();

    model.errorChanged.connect(this._onError, this);
    model.tasks.changed.connect(this._onState, this);
    model.selectionChanged.connect(this._onState, this);
    model.runs.changed.connect(this._onState, this);
    model.orchestrations.changed.connect(this._onState, this);
  }

  /**
   * Add a section below the others, sharing the height with them (`size` against the
   * tasks' 3): a section added to the accordion after its sizes were set gets none.
   */
  addSection(widget: Widget, size = 1): void {
    this.addWidget(widget);
    this._sizes.push(size);
    this._layoutSections();
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    Signal.disconnectReceiver(this);
    super.dispose();
  }

  /** Opened: show fresh state at once rather than at the next (idle) poll. */
  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.wake();
  }

  private _onError(_: LoadQueue, error: string | null): void {
    this._error.hidden = error === null;
    this._error.textContent = error ? `Cannot refresh: ${error}` : '';
  }

  /** The selected task, its status or its run changed: the action buttons follow. */
  private _onState(): void {
    for (const id of [...CommandIDs.taskActions, ...CommandIDs.runActions]) {
      this._commands.notifyCommandChanged(id);
    }
  }

  private _layoutSections(): void {
    (this.content as AccordionPanel).setRelativeSizes(this._sizes);
  }

  private _model: OrchModel;
  private _commands: CommandRegistry;
  /** The sections' shares of the height: orchestrations, tasks, runs, log, then more. */
  private _sizes = [1, 3, 1.5, 3];
  private _error: HTMLDivElement;
}

/** The sidebar's options. */
export namespace OrchSidebar {
  export interface IOptions {
    model: OrchModel;
    commands: CommandRegistry;
  }
}
