import { Notification } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { IDisposable } from '@lumino/disposable';

import { ActivityModel, IFailedRun } from './activitymodel';
import { CommandIDs } from './commandids';
import { taskName } from './format';

/** More failures than this in one look are told in one notification. */
const MAX_SINGLE = 3;

/** How long a failure notification stays (ms). */
const AUTO_CLOSE = 15000;

/**
 * A JupyterLab notification for each failed run, with a button that opens its log; when
 * one look brings more than a few, a single notification names their tasks instead.
 */
export class FailureNotifier implements IDisposable {
  constructor(activity: ActivityModel, commands: CommandRegistry) {
    this._activity = activity;
    this._commands = commands;
    activity.runFailed.connect(this._onFailed, this);
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._pending = [];
    this._activity.runFailed.disconnect(this._onFailed, this);
  }

  /** The model signals one look's failures together: they are told once it is done. */
  private _onFailed(_: ActivityModel, failed: IFailedRun): void {
    this._pending.push(failed);
    if (this._pending.length === 1) {
      queueMicrotask(() => this._flush());
    }
  }

  private _flush(): void {
    const batch = this._pending;
    this._pending = [];
    if (this._disposed || batch.length === 0) {
      return;
    }
    if (batch.length <= MAX_SINGLE) {
      batch.forEach(failed => this._notifyOne(failed));
      return;
    }
    const names = [
      ...new Set(
        batch.map(f => `“${taskName({ id: f.taskId, name: f.taskName })}”`)
      )
    ];
    const shown = names.slice(0, MAX_SINGLE).join(', ');
    const more = names.length - MAX_SINGLE;
    const tasks = more > 0 ? `${shown} and ${more} more` : shown;
    const commands = this._commands;
    Notification.error(
      `${batch.length} runs failed or timed out (tasks ${tasks}).`,
      {
        autoClose: AUTO_CLOSE,
        actions: [
          {
            label: 'Show tasks',
            caption: 'Open the Orchestrations panel',
            callback: () => {
              void commands.execute(CommandIDs.open);
            }
          }
        ]
      }
    );
  }

  private _notifyOne(failed: IFailedRun): void {
    const { taskId, runId, status } = failed;
    const commands = this._commands;
    const what = status === 'timed_out' ? 'timed out' : 'failed';
    const name = taskName({ id: taskId, name: failed.taskName });
    Notification.error(`Task “${name}”: a run ${what}.`, {
      autoClose: AUTO_CLOSE,
      actions: [
        {
          label: 'Open log',
          caption:
            "Show the run and its log: in the task's view, and selected in the Orchestrations panel",
          callback: () => {
            void commands.execute(CommandIDs.openRun, { taskId, runId });
            void commands.execute(CommandIDs.openTask, { taskId, runId });
          }
        }
      ]
    });
  }

  private _activity: ActivityModel;
  private _commands: CommandRegistry;
  private _disposed = false;
  private _pending: IFailedRun[] = [];
}
