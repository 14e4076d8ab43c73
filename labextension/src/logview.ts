import { CommandRegistry } from '@lumino/commands';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { CommandIDs } from './commandids';
import { badge, h } from './dom';
import { duration, when } from './format';
import { LogBody } from './logbody';
import { ILogChange, LogModel } from './logmodel';
import { OrchModel } from './model';

/**
 * The selected run's log, live while the run goes on. It keeps to the newest line
 * unless the user scrolled up; "Follow" brings it back. A run of a notebook has an
 * "Open output" button in the header, which opens its executed notebook.
 */
export class LogView extends Widget {
  constructor(model: OrchModel, commands: CommandRegistry) {
    super();
    this._model = model;
    this._commands = commands;
    this.addClass('jp-OrchLogView');
    this.title.label = 'Log';

    this._header = h('div', 'jp-OrchLogView-header');
    this._status = h('span', 'jp-OrchLogView-status');
    this._output = h('button', 'jp-OrchLogView-output', 'Open output');
    this._output.type = 'button';
    this._output.title =
      "Open the run's executed notebook, read-only (again: its newest copy)";
    this._output.hidden = true;
    this._output.addEventListener('click', this._onOutput);
    this._header.append(this._status, this._output);
    this._lines = new LogBody({
      prefix: 'jp-OrchLogView',
      noteClass: 'jp-OrchLogView-note',
      dropped: count => `${count} earlier lines are not shown.`,
      onScroll: () => {
        this._jump.hidden = this._lines.stick;
      }
    });
    this._body = this._lines.node;
    this._jump = h('button', 'jp-OrchLogView-jump jp-mod-styled', 'Follow ↓');
    this._jump.type = 'button';
    this._jump.title = 'Scroll to the newest line and keep following';
    this._jump.hidden = true;
    this._jump.addEventListener('click', this._onJump);
    this.node.append(this._header, this._body, this._jump);

    model.log.changed.connect(this._onLog, this);
    model.runs.changed.connect(this._renderHeader, this);
    model.selectionChanged.connect(this._renderHeader, this);
    model.orchestrations.changed.connect(this._renderHeader, this);
    this._onLog(model.log, { reset: true, added: [] });
    // a run going: its duration in the header keeps moving
    this._ticker = setInterval(() => {
      if (this.isVisible && model.selectedRun?.status === 'running') {
        this._renderHeader();
      }
    }, 1000);
  }

  /** Whether the view keeps to the newest line. */
  get following(): boolean {
    return this._lines.stick;
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    Signal.disconnectReceiver(this);
    clearInterval(this._ticker);
    this._lines.dispose();
    this._jump.removeEventListener('click', this._onJump);
    this._output.removeEventListener('click', this._onOutput);
    super.dispose();
  }

  private _onLog(log: LogModel, change: ILogChange): void {
    this._lines.show(log, change);
    this._renderHeader();
    this._lines.toEnd();
    this._jump.hidden = this._lines.stick;
  }

  private _renderHeader(): void {
    const model = this._model;
    const run = model.selectedRun;
    const header = this._status;
    header.replaceChildren();
    this._output.hidden = model.runOutput() === null;
    if (!model.selectedRunId) {
      header.textContent = model.selectedTaskId
        ? 'Select a run to see its log.'
        : 'Select a task, then a run, to see its log.';
      this._body.hidden = true;
      return;
    }
    this._body.hidden = false;
    const parts: (string | HTMLElement)[] = [];
    if (run) {
      parts.push(badge(run.status));
      if (run.exit_code !== null) {
        parts.push(`exit ${run.exit_code}`);
      }
      parts.push(when(run.started_at ?? run.created_at));
      const took = duration(run.started_at ?? run.created_at, run.ended_at);
      if (took) {
        parts.push(took);
      }
      if (
        run.reason &&
        run.status !== 'success' &&
        !/^exit code/.test(run.reason)
      ) {
        parts.push(run.reason);
      }
    }
    const { state, error, lines } = model.log;
    if (state === 'following' && (!run || run.status === 'running')) {
      parts.push(h('span', 'jp-OrchLogView-live', 'live'));
    } else if (state === 'error') {
      parts.push(
        h('span', 'jp-OrchLogView-error', `log unavailable: ${error}`)
      );
    }
    if (state === 'ended' && lines.length === 0) {
      parts.push('(no output)');
    }
    parts.forEach((part, index) => {
      if (index > 0) {
        header.append(' · ');
      }
      header.append(part);
    });
  }

  private _onOutput = (): void => {
    const output = this._model.runOutput();
    if (output) {
      const { taskId, runId } = output;
      void this._commands.execute(CommandIDs.openOutput, { taskId, runId });
    }
  };

  private _onJump = (): void => {
    this._jump.hidden = true;
    this._lines.toEnd(true);
    this._body.focus();
  };

  private _model: OrchModel;
  private _commands: CommandRegistry;
  private _header: HTMLDivElement;
  private _status: HTMLSpanElement;
  private _output: HTMLButtonElement;
  private _lines: LogBody;
  private _body: HTMLDivElement;
  private _jump: HTMLButtonElement;
  private _ticker: ReturnType<typeof setInterval>;
}
