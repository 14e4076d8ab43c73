import { badge, h } from './dom';
import { duration, shortWhen, statusWord, when } from './format';
import { OrchModel } from './model';
import { ITaskRun } from './types';
import { RowsPanel } from './rowspanel';
import { VirtualRows } from './virtualrows';

/**
 * The selected task's runs, newest first; choosing one shows its log. The list is marked
 * `data-output="notebook"` when the task runs a notebook (its rows' context menu then has
 * Open output).
 */
export class RunList extends RowsPanel<ITaskRun> {
  constructor(model: OrchModel) {
    super();
    this._model = model;
    this.addClass('jp-OrchRunList');
    this.title.label = 'Runs';
    this.rows = new VirtualRows<ITaskRun>({
      rowHeight: 28,
      label: 'Runs',
      emptyText: 'Select a task to see its runs.',
      key: run => run.run_id,
      render: (run, row) => this._renderRow(run, row),
      isSelected: run => run.run_id === model.selectedRunId,
      onActivate: run => model.selectRun(run.run_id)
    });
    this.node.appendChild(this.rows.node);
    model.runs.changed.connect(this._onRuns, this);
    model.selectionChanged.connect(this._onSelection, this);
    model.orchestrations.changed.connect(this._onKind, this);
    this._onRuns();
    // a run going: its duration keeps moving
    this._ticker = setInterval(() => {
      if (
        this.isVisible &&
        model.runs.items.some(r => r.status === 'running')
      ) {
        this.rows.update();
      }
    }, 1000);
  }

  override dispose(): void {
    clearInterval(this._ticker);
    super.dispose();
  }

  private _onRuns(): void {
    const model = this._model;
    this.rows.setEmptyText(
      model.selectedTaskId ? 'No run yet.' : 'Select a task to see its runs.'
    );
    this.rows.setItems(model.runs.items);
    this._onKind();
  }

  /** Whether the runs listed keep an executed notebook. */
  private _onKind(): void {
    if (this._model.runsNotebook()) {
      this.node.dataset.output = 'notebook';
    } else {
      delete this.node.dataset.output;
    }
  }

  private _onSelection(): void {
    this._onRuns();
    const id = this._model.selectedRunId;
    if (id) {
      this.rows.scrollToKey(id);
    }
  }

  private _renderRow(run: ITaskRun, row: HTMLElement): void {
    row.classList.add('jp-OrchRunList-row');
    row.dataset.status = run.status;
    const dot = h('span', 'jp-OrchDot');
    dot.dataset.status = run.status;
    const took = duration(run.started_at ?? run.created_at, run.ended_at);
    row.append(
      dot,
      h('span', 'jp-OrchRunList-when', shortWhen(run.created_at)),
      badge(run.status),
      h('span', 'jp-OrchRunList-took', took),
      h('span', 'jp-OrchRunList-trigger', run.trigger.replace(/_/g, ' '))
    );
    row.title = [
      `run ${run.run_id}`,
      `status: ${statusWord(run.status)}`,
      run.exit_code !== null ? `exit code: ${run.exit_code}` : '',
      run.reason ? `reason: ${run.reason}` : '',
      `started: ${when(run.started_at ?? run.created_at)}`,
      run.ended_at ? `ended: ${when(run.ended_at)}` : ''
    ]
      .filter(Boolean)
      .join('\n');
  }

  private _model: OrchModel;
  private _ticker: ReturnType<typeof setInterval>;
  protected readonly rows: VirtualRows<ITaskRun>;
}
