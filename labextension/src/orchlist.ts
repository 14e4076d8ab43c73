import { badge, h } from './dom';
import { OrchModel } from './model';
import { IOrchestration } from './types';
import { RowsPanel } from './rowspanel';
import { VirtualRows } from './virtualrows';

/** Orchestrations and their packaging status; choosing one shows only its tasks. */
export class OrchList extends RowsPanel<IOrchestration> {
  constructor(model: OrchModel) {
    super();
    this._model = model;
    this.addClass('jp-OrchOrchList');
    this.title.label = 'Orchestrations';
    this.rows = new VirtualRows<IOrchestration>({
      rowHeight: 40,
      label: 'Orchestrations',
      emptyText: 'No orchestrations yet.',
      key: orch => orch.id,
      render: (orch, row) => this._renderRow(orch, row),
      isSelected: orch => orch.id === model.tasks.orchFilter,
      onActivate: orch =>
        model.tasks.setOrchFilter(
          model.tasks.orchFilter === orch.id ? null : orch.id
        )
    });
    this.rows.node.addEventListener('keydown', this._onKeyDown);
    this.node.appendChild(this.rows.node);
    model.orchestrations.changed.connect(this._onChange, this);
    model.tasks.changed.connect(this._onChange, this);
    model.tasks.filterChanged.connect(this._onFilter, this);
    this._onChange();
  }

  override dispose(): void {
    if (!this.isDisposed) {
      this.rows.node.removeEventListener('keydown', this._onKeyDown);
    }
    super.dispose();
  }

  private _onChange(): void {
    this.rows.setItems(this._model.orchestrations.items);
  }

  private _onFilter(): void {
    this.rows.update();
  }

  private _renderRow(orch: IOrchestration, row: HTMLElement): void {
    row.classList.add('jp-OrchOrchList-row');
    const { count, exact } = this._model.tasks.count(orch.id);
    // with tasks still to load, what is loaded is a lower bound ("3+ tasks")
    const tasks = exact
      ? `${count} task${count === 1 ? '' : 's'}`
      : count > 0
        ? `${count}+ tasks`
        : '';
    const top = h('div', 'jp-OrchOrchList-line');
    top.append(
      h('span', 'jp-OrchOrchList-name', orch.name),
      badge(orch.status)
    );
    const details = [
      orch.entrypoint,
      orch.requirements ? 'own environment' : '',
      tasks
    ].filter(Boolean);
    const bottom = h(
      'div',
      'jp-OrchOrchList-line jp-OrchOrchList-details',
      orch.error ? orch.error : details.join(' · ')
    );
    if (orch.error) {
      bottom.classList.add('jp-mod-error');
    }
    row.append(top, bottom);
    row.title = [
      `${orch.name}: ${orch.status.replace(/_/g, ' ')}`,
      `file: ${orch.file_name}`,
      `entrypoint: ${orch.entrypoint}`,
      orch.error ? `error: ${orch.error}` : '',
      'Click to show only its tasks'
    ]
      .filter(Boolean)
      .join('\n');
  }

  private _onKeyDown = (event: KeyboardEvent): void => {
    const tasks = this._model.tasks;
    if (event.key === 'Escape' && tasks.orchFilter) {
      event.preventDefault();
      tasks.setOrchFilter(null);
    }
  };

  private _model: OrchModel;
  protected readonly rows: VirtualRows<IOrchestration>;
}
