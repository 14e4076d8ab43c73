import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { isNotFound, messageOf } from './errors';
import { LogModel } from './logmodel';
import {
  IRerunAnswer,
  ITaskApi,
  ITaskChange,
  ITaskUpdate,
  TaskRecord
} from './panelapi';
import { Poller } from './poller';
import { RunsModel } from './runsmodel';
import { IOrchApi, ITaskRun, JSONObject } from './types';

/**
 * What the main-area view of one task shows: the task's record (with its next fire times),
 * its newest runs, the selected run's log (followed while the run goes on) and the task's
 * history of changes. It polls the task and its runs every few seconds while started; the
 * newest run is selected unless the user chose one.
 */
export class TaskPanelModel implements IDisposable {
  constructor(options: TaskPanelModel.IOptions) {
    this.taskId = options.taskId;
    this._api = options.api;
    this._taskApi = options.taskApi;
    this.runs = new RunsModel({ api: options.api, limit: options.runsLimit });
    this.log = new LogModel({ api: options.api });
    this.log.ended.connect((_, end) => {
      if (this.runs.markEnded(end.runId, end.status)) {
        void this.refresh();
      }
    });
    this.runs.setTask(this.taskId);
    this._poller = new Poller({
      tick: () => this.refresh(),
      interval: options.interval,
      idleInterval: options.idleInterval,
      isIdle: options.isIdle
    });
  }

  /** The task shown. */
  readonly taskId: string;

  /** Its newest runs, newest first. */
  readonly runs: RunsModel;

  /** The selected run's log. */
  readonly log: LogModel;

  /** The task's record, once loaded. */
  get task(): TaskRecord | null {
    return this._task;
  }

  /** Why the last load failed (null when it worked). */
  get error(): string | null {
    return this._error;
  }

  /** Whether the server says the task does not exist (any more). */
  get gone(): boolean {
    return this._gone;
  }

  /** The task's changes, oldest first (null until loaded). */
  get history(): readonly ITaskChange[] | null {
    return this._history;
  }

  /** The selected run's id. */
  get selectedRunId(): string | null {
    return this._selectedRunId;
  }

  /** The selected run, if listed. */
  get selectedRun(): ITaskRun | null {
    return this.runs.run(this._selectedRunId);
  }

  /** The task, its history, its error or the selection changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Poll the task and its runs. */
  start(): void {
    this._poller.start();
  }

  /** Someone looks again: poll now, then at the active pace. */
  wake(): void {
    this._poller.wake();
  }

  /** Stop polling (the log stays followed). */
  stop(): void {
    this._poller.stop();
  }

  /** Load the task and its runs now. */
  async refresh(): Promise<void> {
    if (this._disposed) {
      return;
    }
    try {
      const task = await this._taskApi.getTask(this.taskId, 1);
      if (this._disposed) {
        return;
      }
      this._task = task;
      this._gone = false;
      this._error = null;
      await this.runs.load();
      this._selectNewest();
    } catch (error) {
      this._gone = isNotFound(error);
      this._error = messageOf(error);
    }
    this._changed.emit();
  }

  /** Load the task's history of changes. */
  async loadHistory(): Promise<void> {
    try {
      this._history = await this._taskApi.taskHistory(this.taskId);
    } catch (error) {
      this._history = null;
      this._error = `history: ${messageOf(error)}`;
    }
    this._changed.emit();
  }

  /** Select a run (null: none) and follow its log; `pinned` keeps it when newer runs come. */
  selectRun(runId: string | null, pinned = true): void {
    this._pinned = pinned && runId !== null;
    if (runId === this._selectedRunId) {
      return;
    }
    this._selectedRunId = runId;
    if (runId === null) {
      this.log.clear();
    } else {
      this.log.follow(runId);
    }
    this._changed.emit();
  }

  /** Change the task; its record (and next fire times) and history follow. */
  async update(fields: Omit<ITaskUpdate, 'id'>): Promise<TaskRecord> {
    const task = await this._taskApi.updateTask({ id: this.taskId, ...fields });
    this._task = { ...task, last_runs: task.last_runs ?? [] };
    this._changed.emit();
    void this.loadHistory();
    return task;
  }

  /**
   * Run a run again (with other arguments if given). A run of this task is selected; the
   * answer says where the new run is (a run-once task's run again is a new task).
   */
  async rerun(runId: string, json?: JSONObject): Promise<IRerunAnswer> {
    const answer = await this._taskApi.rerun(runId, json);
    if (answer.id === this.taskId) {
      this._pinned = false;
      await this.refresh();
      if (answer.run_id) {
        this.selectRun(answer.run_id, false);
      }
    }
    return answer;
  }

  /** One more run of the task now (`task/run_now`), selected. */
  async runNow(): Promise<void> {
    const run = await this._api.runNow(this.taskId);
    this._pinned = false;
    await this.refresh();
    this.selectRun(run.run_id, false);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._poller.dispose();
    this.log.dispose();
    this.runs.dispose();
    Signal.clearData(this);
  }

  /** The newest run is selected unless the user chose one that is still listed. */
  private _selectNewest(): void {
    const runs = this.runs.items;
    const present = runs.some(r => r.run_id === this._selectedRunId);
    const newest = runs[0]?.run_id ?? null;
    if (newest !== null && (!this._pinned || !present)) {
      this.selectRun(newest, false);
    }
  }

  private _api: IOrchApi;
  private _taskApi: ITaskApi;
  private _poller: Poller;
  private _disposed = false;
  private _task: TaskRecord | null = null;
  private _error: string | null = null;
  private _gone = false;
  private _history: ITaskChange[] | null = null;
  private _selectedRunId: string | null = null;
  private _pinned = false;
  private _changed = new Signal<this, void>(this);
}

/** The task view model's options. */
export namespace TaskPanelModel {
  export interface IOptions {
    taskId: string;
    api: IOrchApi;
    taskApi: ITaskApi;
    /** How many runs are listed and charted (50). */
    runsLimit?: number;
    /** Milliseconds between polls (3000). */
    interval?: number;
    /** Milliseconds between polls while nobody looks (10000). */
    idleInterval?: number;
    /** Whether nobody looks at the view (its tab is behind another). */
    isIdle?: () => boolean;
  }
}
