import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Panel, Widget } from '@lumino/widgets';

import { badge, h } from './dom';
import { messageOf } from './errors';
import { duration, statusWord, taskName, when } from './format';
import { LogPane } from './logpane';
import { joinRawLines, logText } from './logtext';
import { ITaskApi, TaskRecord } from './panelapi';
import { RunChart } from './runchart';
import { changeText, TaskEditForm } from './taskedit';
import { taskFacts } from './taskfacts';
import { parseArgs } from './taskform';
import { TaskPanelModel } from './taskpanelmodel';
import { IOrchestration, ITaskRun, JSONObject } from './types';

/** Statuses of a task that makes no run any more. */
const ENDED = new Set(['killed', 'pending_kill']);

/**
 * The main-area view of one task: a header (name, orchestration, kind, schedule in words
 * with its zone, next three fire times, arguments, timeout, executor, status) with Edit,
 * Run now and Delete, the run-history chart, the selected run with Run again, its log at full width,
 * and the task's history of changes.
 */
export class TaskPanel extends Panel {
  constructor(options: TaskPanel.IOptions) {
    super();
    this.model = options.model;
    this._options = options;
    this.addClass('jp-OrchTaskPanel');
    this.id = `jp-OrchTaskPanel-${options.model.taskId}`;
    this.title.label = 'Task';
    this.title.closable = true;

    const top = new Widget();
    top.addClass('jp-OrchTaskPanel-top');
    this._header = h('div', 'jp-OrchTaskPanel-header');
    this._edit = h('div', 'jp-OrchTaskPanel-edit');
    this._edit.hidden = true;
    const chartTitle = h('h2', 'jp-OrchTaskPanel-section', 'Runs');
    this._chart = new RunChart({
      onSelect: runId => this.model.selectRun(runId)
    });
    this._run = h('div', 'jp-OrchTaskPanel-run');
    top.node.append(
      this._header,
      this._edit,
      chartTitle,
      this._chart.node,
      this._run
    );
    this.addWidget(top);

    this._log = new LogPane({
      log: this.model.log,
      download: () => this._downloadLog()
    });
    this.addWidget(this._log);

    const bottom = new Widget();
    this._history = h('details', 'jp-OrchTaskPanel-history');
    this._history.addEventListener('toggle', this._onHistoryToggle);
    bottom.node.appendChild(this._history);
    this.addWidget(bottom);

    this.model.changed.connect(this._render, this);
    this.model.runs.changed.connect(this._render, this);
    this._render();
  }

  /** What the view shows. */
  readonly model: TaskPanelModel;

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    Signal.disconnectReceiver(this);
    clearInterval(this._ticker);
    this._chart.dispose();
    this._form?.dispose();
    this._history.removeEventListener('toggle', this._onHistoryToggle);
    this.model.dispose();
    super.dispose();
  }

  protected override onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.model.start();
    // a run going: its duration and the chart move every second
    this._ticker = setInterval(() => {
      if (this.model.selectedRun?.status === 'running') {
        this._renderRuns();
      }
    }, 1000);
  }

  /** Shown again: fresh state at once rather than at the next (slow) poll. */
  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.wake();
  }

  protected override onBeforeDetach(msg: Message): void {
    clearInterval(this._ticker);
    this.model.stop();
    super.onBeforeDetach(msg);
  }

  private _render(): void {
    this._renderHeader();
    this._renderRuns();
    this._renderHistory();
  }

  private _renderHeader(): void {
    const { task, error, gone } = this.model;
    const header = this._header;
    header.replaceChildren();
    if (!task) {
      header.append(
        h(
          'div',
          'jp-OrchTaskPanel-empty',
          error ? `Cannot load the task: ${error}` : 'Loading…'
        )
      );
      return;
    }
    const name = taskName(task);
    this.title.label = name;
    this.title.caption = `Task ${name} (${task.id})`;
    const title = h('div', 'jp-OrchTaskPanel-titleRow');
    title.append(h('h1', 'jp-OrchTaskPanel-name', name), badge(task.status));
    if (gone) {
      title.append(
        h('span', 'jp-OrchTaskPanel-problem', 'This task no longer exists.')
      );
    } else if (error) {
      title.append(h('span', 'jp-OrchTaskPanel-problem', error));
    }
    const actions = h('div', 'jp-OrchTaskPanel-actions');
    const live = !task.killed && !ENDED.has(task.status);
    actions.append(
      this._button(
        'Edit',
        'Change the schedule, arguments, timeout…',
        () => this._openEdit(),
        !live
      ),
      ...(task.run_type === 'CronJob'
        ? [
            this._button(
              'Run now',
              'One more run of this task now, beside its schedule',
              () => void this._act('Run now', () => this.model.runNow()),
              !live
            )
          ]
        : []),
      this._button(
        'Refresh',
        'Load the task and its runs again',
        () => void this.model.refresh()
      ),
      this._button(
        'Delete…',
        'Delete this task with its runs, logs and outputs (a run going is stopped first)',
        () => this._options.deleteTask(),
        gone
      )
    );
    title.append(actions);
    header.append(title, this._facts(task));
  }

  /** The header's facts, as a description list. */
  private _facts(task: TaskRecord): HTMLElement {
    const facts = h('dl', 'jp-OrchTaskPanel-facts');
    const orch = this._options.orchestration(task.orch_id);
    for (const fact of taskFacts(task, orch)) {
      const dd = h('dd', '');
      if (fact.shape === 'list') {
        const list = h('ol', 'jp-OrchTaskPanel-fires');
        for (const item of fact.items ?? []) {
          list.appendChild(h('li', '', item));
        }
        dd.append(list);
      } else if (fact.shape === 'code') {
        dd.append(h('code', 'jp-OrchTaskPanel-args', fact.value));
      } else {
        dd.append(fact.value);
      }
      facts.append(h('dt', '', fact.term), dd);
    }
    return facts;
  }

  private _renderRuns(): void {
    const { task, runs, selectedRunId } = this.model;
    this._chart.render(runs.items, task?.last_skipped ?? [], selectedRunId);
    const run = this.model.selectedRun;
    this._run.replaceChildren();
    if (!run) {
      this._run.textContent = runs.items.length ? '' : 'No run yet.';
      return;
    }
    const start = run.started_at ?? run.created_at;
    const parts: (string | HTMLElement)[] = [
      h('strong', '', `Run ${run.run_id.slice(0, 8)}`),
      badge(run.status),
      when(start),
      `took ${duration(start, run.ended_at) || '0 s'}${run.ended_at ? '' : ' so far'}`,
      `trigger: ${statusWord(run.trigger)}`
    ];
    if (run.exit_code !== null) {
      parts.push(`exit ${run.exit_code}`);
    }
    const info = h('span', 'jp-OrchTaskPanel-runInfo');
    parts.forEach((part, i) => {
      if (i > 0) {
        info.append(' · ');
      }
      info.append(part);
    });
    this._run.append(info);
    if (run.status !== 'running' && task && !task.killed) {
      const again = task.run_type === 'Oneshot' ? ' (a new run-once task)' : '';
      this._run.append(
        this._button(
          'Run again',
          `Run it again with the same arguments${again}`,
          () => void this._rerun(run)
        ),
        this._button(
          'Run again with…',
          `Run it again with other arguments${again}`,
          () => void this._rerunWith(run)
        )
      );
    }
  }

  private _renderHistory(): void {
    const history = this.model.history;
    const summary = h('summary', '', 'History of changes');
    this._history.replaceChildren(summary);
    if (!this._history.open) {
      return;
    }
    if (history === null) {
      this._history.append(h('div', '', 'Loading…'));
      return;
    }
    const list = h('ol', 'jp-OrchTaskPanel-changes');
    for (const change of [...history].reverse()) {
      const item = h('li', '');
      item.append(
        h(
          'span',
          'jp-OrchTaskPanel-changeAt',
          `${when(change.at)} · ${change.by}`
        )
      );
      for (const line of changeText(change)) {
        item.append(h('div', 'jp-OrchTaskPanel-change', line));
      }
      list.appendChild(item);
    }
    this._history.append(
      list.childElementCount ? list : h('div', '', 'No change yet.')
    );
  }

  private _onHistoryToggle = (): void => {
    if (this._history.open) {
      void this.model.loadHistory();
    }
  };

  private _openEdit(): void {
    const task = this.model.task;
    if (!task) {
      return;
    }
    this._form?.dispose();
    this._form = new TaskEditForm({
      task,
      preview: (schedule, zone) =>
        this._options.taskApi.previewSchedule(schedule, zone),
      save: changes => this.model.update(changes),
      close: () => {
        this._form?.dispose();
        this._form = null;
        this._edit.replaceChildren();
        this._edit.hidden = true;
      }
    });
    this._edit.replaceChildren(this._form.node);
    this._edit.hidden = false;
    this._form.node.querySelector('input')?.focus();
  }

  private async _rerun(run: ITaskRun, json?: JSONObject): Promise<void> {
    await this._act('Run again', async () => {
      const answer = await this.model.rerun(run.run_id, json);
      if (answer.id !== this.model.taskId) {
        this._options.openTask(answer.id);
      }
    });
  }

  private async _rerunWith(run: ITaskRun): Promise<void> {
    let text = JSON.stringify(this.model.task?.input_data ?? {}, null, 2);
    let problem = '';
    for (;;) {
      const body = new ArgsBody(text, problem);
      const result = await showDialog<string>({
        title: `Run ${run.run_id.slice(0, 8)} again with`,
        body,
        buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Run' })]
      });
      if (!result.button.accept || result.value === null) {
        return;
      }
      text = result.value;
      const args = parseArgs(text);
      if (typeof args === 'string') {
        problem = args;
        continue;
      }
      await this._rerun(run, args);
      return;
    }
  }

  private async _act(
    title: string,
    action: () => Promise<unknown>
  ): Promise<void> {
    try {
      await action();
    } catch (error) {
      await showErrorMessage(`${title} failed`, messageOf(error));
    }
  }

  private async _downloadLog(): Promise<{ name: string; text: string }> {
    const runId = this.model.selectedRunId;
    if (!runId) {
      throw new Error('no run is selected');
    }
    const raw = await this._options.taskApi.logsForRun(runId);
    const task = this.model.task;
    const stem = (task ? taskName(task) : 'task').replace(/[^\w.-]+/g, '_');
    return {
      name: `${stem}-run-${runId.slice(0, 8)}.log`,
      text: logText(joinRawLines(raw))
    };
  }

  private _button(
    label: string,
    title: string,
    onClick: () => void,
    disabled = false
  ): HTMLButtonElement {
    const button = h('button', 'jp-mod-styled jp-OrchTaskPanel-button', label);
    button.type = 'button';
    button.title = title;
    button.disabled = disabled;
    button.addEventListener('click', onClick);
    return button;
  }

  private _options: TaskPanel.IOptions;
  private _header: HTMLDivElement;
  private _edit: HTMLDivElement;
  private _form: TaskEditForm | null = null;
  private _chart: RunChart;
  private _run: HTMLDivElement;
  private _log: LogPane;
  private _history: HTMLDetailsElement;
  private _ticker: ReturnType<typeof setInterval> | undefined;
}

/** The arguments of a run again, as JSON text. */
class ArgsBody extends Widget implements Dialog.IBodyWidget<string> {
  constructor(text: string, problem: string) {
    super();
    this.addClass('jp-OrchCreateDialog');
    this._text = h('textarea', 'jp-mod-styled jp-OrchCreateDialog-args');
    this._text.rows = 6;
    this._text.value = text;
    this._text.setAttribute('aria-label', 'Arguments (JSON object)');
    const alert = h('div', 'jp-OrchCreateDialog-error', problem);
    alert.setAttribute('role', 'alert');
    alert.hidden = !problem;
    this.node.append(alert, this._text);
  }

  getValue(): string {
    return this._text.value;
  }

  private _text: HTMLTextAreaElement;
}

/** The task view's options. */
export namespace TaskPanel {
  export interface IOptions {
    model: TaskPanelModel;
    taskApi: ITaskApi;
    /** An orchestration, if known. */
    orchestration: (id: string) => IOrchestration | null;
    /** Open another task's view (a run-once task's run again is a new task). */
    openTask: (taskId: string) => void;
    /** Ask to delete this task (closes the view once deleted). */
    deleteTask: () => void;
  }
}
