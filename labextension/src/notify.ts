import { Notification } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { IDisposable } from '@lumino/disposable';

import { CommandIDs } from './commandids';
import { taskName } from './format';
import { IFailedRun, OrchModel } from './model';

/** A JupyterLab notification for each failed run, with a button that opens its log. */
export class FailureNotifier implements IDisposable {
  constructor(model: OrchModel, commands: CommandRegistry) {
    this._model = model;
    this._commands = commands;
    model.runFailed.connect(this._onFailed, this);
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._model.runFailed.disconnect(this._onFailed, this);
  }

  private _onFailed(_: OrchModel, failed: IFailedRun): void {
    const { taskId, runId, status } = failed;
    const commands = this._commands;
    const what = status === 'timed_out' ? 'timed out' : 'failed';
    const name = taskName({ id: taskId, name: failed.taskName });
    Notification.error(`Task “${name}”: a run ${what}.`, {
      autoClose: 15000,
      actions: [
        {
          label: 'Open log',
          caption: 'Show the run and its log in the Orchestrations panel',
          callback: () => {
            void commands.execute(CommandIDs.openRun, {
              taskId,
              runId
            });
          }
        }
      ]
    });
  }

  private _model: OrchModel;
  private _commands: CommandRegistry;
  private _disposed = false;
}
