import { Message } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { badge, h } from './dom';
import { duration, shortWhen, statusWord, when } from './format';
import { OrchModel } from './model';
import { ITaskRun } from './types';
import { VirtualRows } from './virtualrows';

/** The selected task's runs, newest first; choosing one shows its log. */
export class RunList extends Widget {
  constructor(model: OrchModel) {
    super();
    this._model = model;
    this.addClass('jp-OrchRunList');
    this.title.label = 'Runs';
    this._rows = new VirtualRows<ITaskRun>({
      rowHeight: 28,
      label: 'Runs',
      emptyText: 'Select a task to see its runs.',
      key: run => run.run_id,
      render: (run, row) => this._renderRow(run, row),
      isSelected: run => run.run_id === model.selectedRunId,
      onActivate: run => model.selectRun(run.run_id)
    });
    this.node.appendChild(this._rows.node);
    model.runsChanged.connect(this._onRuns, this);
    model.selectionChanged.connect(this._onSelection, this);
    this._onRuns();
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    Signal.disconnectReceiver(this);
    this._rows.dispose();
    super.dispose();
  }

  protected override onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this._rows.update();
  }

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._rows.update();
  }

  private _onRuns(): void {
    const model = this._model;
    this._rows.setEmptyText(
      model.selectedTaskId ? 'No run yet.' : 'Select a task to see its runs.'
    );
    this._rows.setItems(model.runs);
  }

  private _onSelection(): void {
    this._onRuns();
    const id = this._model.selectedRunId;
    if (id) {
      this._rows.scrollToKey(id);
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
  private _rows: VirtualRows<ITaskRun>;
}
