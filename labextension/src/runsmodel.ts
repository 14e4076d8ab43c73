import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IOrchApi, ITaskRun, RunStatus } from './types';

/**
 * One task's newest runs, newest first (`task/list_task_runs`, the newest `limit`). It
 * signals only real changes (a new run, a status), so an unchanged list does not redraw.
 */
export class RunsModel implements IDisposable {
  constructor(options: RunsModel.IOptions) {
    this._api = options.api;
    this._limit = options.limit ?? 50;
  }

  /** The task whose runs these are (null: none). */
  get taskId(): string | null {
    return this._taskId;
  }

  /** The runs, newest first. */
  get items(): readonly ITaskRun[] {
    return this._items;
  }

  /** The runs changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The run with this id, if listed. */
  run(runId: string | null): ITaskRun | null {
    return this._items.find(r => r.run_id === runId) ?? null;
  }

  /** List another task's runs (null: none): none until they are loaded. */
  setTask(taskId: string | null): void {
    this._taskId = taskId;
    this._items = [];
    this._key = '';
    this._changed.emit();
  }

  /**
   * Ask for the task's runs again; signal if they changed. Resolves to whether the answer
   * is the current task's (another may have been chosen meanwhile).
   */
  async load(): Promise<boolean> {
    const taskId = this._taskId;
    if (taskId === null) {
      return false;
    }
    const runs = await this._api.listRuns(taskId, this._limit);
    if (taskId !== this._taskId || this._disposed) {
      return false;
    }
    const key = runs.map(runKey).join('\n');
    if (key !== this._key) {
      this._key = key;
      this._items = runs;
      this._changed.emit();
    }
    return true;
  }

  /**
   * A run ended with this status (its log said so): show it at once. Returns whether the
   * run was listed as running (so the rest is worth asking for again).
   */
  markEnded(runId: string, status: RunStatus): boolean {
    const run = this.run(runId);
    if (run && run.status !== status) {
      this._items = this._items.map(r =>
        r.run_id === runId ? { ...r, status } : r
      );
      this._key = '';
      this._changed.emit();
    }
    return run?.status === 'running';
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    Signal.clearData(this);
  }

  private _api: IOrchApi;
  private _limit: number;
  private _disposed = false;
  private _taskId: string | null = null;
  private _items: ITaskRun[] = [];
  private _key = '';
  private _changed = new Signal<this, void>(this);
}

/** The runs model's options. */
export namespace RunsModel {
  export interface IOptions {
    /** The server API. */
    api: IOrchApi;
    /** How many of the task's newest runs are listed (50). */
    limit?: number;
  }
}

/** What a run row shows: a change of any of it is a change of the list. */
function runKey(run: ITaskRun): string {
  return [run.run_id, run.status, run.updated_at].join('|');
}
