import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { ActivityModel } from './activitymodel';
import { isNotFound } from './errors';
import { taskName } from './format';
import { LoadQueue } from './loadqueue';
import { IRunEnd, LogModel } from './logmodel';
import { OrchestrationsModel } from './orchestrationsmodel';
import { Poller } from './poller';
import { RunsModel } from './runsmodel';
import { isNotebook } from './taskform';
import { TasksModel } from './tasksmodel';
import { IOrchApi, IRunNowAnswer, ITask, ITaskRun, NewTask } from './types';

/**
 * What the sidebar shows, composed of one model per part: `orchestrations`, `tasks` (the
 * loaded pages), `runs` of the selected task, `log` of the selected run and `activity` (the
 * running count and failed runs of every task). This model holds the selection and the
 * actions, and polls: every few seconds it asks for the loaded tasks with one run each, the
 * selected task's runs and the activity (the orchestrations every fifth poll, or while one
 * is packaged). While nobody looks at the list (`isIdle`), only the activity is polled. The
 * loads wait in one line (`LoadQueue`), so answers never land out of order.
 */
export class OrchModel implements IDisposable {
  constructor(options: OrchModel.IOptions) {
    const api = options.api;
    this._api = api;
    this._isIdle = options.isIdle ?? (() => false);
    this.orchestrations = new OrchestrationsModel({ api });
    this.tasks = new TasksModel({
      api,
      queue: this._queue,
      orchestrations: this.orchestrations,
      pollNow: () => void this._queue.run(() => this._load(false), false),
      pageSize: options.pageSize,
      maxPolledTasks: options.maxPolledTasks
    });
    this.runs = new RunsModel({ api, limit: options.runsLimit });
    this.log = new LogModel({ api, maxLines: options.maxLogLines });
    this.activity = new ActivityModel({ api });
    this.tasks.changed.connect(this._onTasksChanged, this);
    this.log.ended.connect(this._onRunEnded, this);
    this._poller = new Poller({
      tick: () => this._queue.run(() => this._load(false), true),
      interval: options.interval,
      idleInterval: options.idleInterval,
      isIdle: this._isIdle,
      maxInterval: options.maxInterval,
      isHidden: options.isHidden
    });
  }

  /** The server API the parts use. */
  get api(): IOrchApi {
    return this._api;
  }

  /** The workspaces and their orchestrations. */
  readonly orchestrations: OrchestrationsModel;

  /** The loaded tasks: every task's, or the chosen orchestration's. */
  readonly tasks: TasksModel;

  /** The selected task's runs. */
  readonly runs: RunsModel;

  /** The selected run's log, followed while the run goes on. */
  readonly log: LogModel;

  /** The running count and the failed runs of every task. */
  readonly activity: ActivityModel;

  /** The selected task (loaded or not: it stays selected while it exists). */
  get selectedTask(): ITask | null {
    return this._selectedTaskId
      ? (this.tasks.task(this._selectedTaskId) ?? this._selectedRecord)
      : null;
  }

  /** The selected task's id. */
  get selectedTaskId(): string | null {
    return this._selectedTaskId;
  }

  /** The selected run. */
  get selectedRun(): ITaskRun | null {
    return this.runs.run(this._selectedRunId);
  }

  /** The selected run's id (set before its details are loaded). */
  get selectedRunId(): string | null {
    return this._selectedRunId;
  }

  /** Why the last refresh failed (null when it worked). */
  get error(): string | null {
    return this._queue.error;
  }

  /** A refresh failed, or worked again (null). */
  get errorChanged(): ISignal<LoadQueue, string | null> {
    return this._queue.errorChanged;
  }

  /** The selected task or run changed. */
  get selectionChanged(): ISignal<this, void> {
    return this._selectionChanged;
  }

  /**
   * Whether the runs of a task (by default the selected one) keep an executed notebook: its
   * orchestration, once loaded, has a `.ipynb` entrypoint.
   */
  runsNotebook(taskId: string | null = this._selectedTaskId): boolean {
    const task = taskId ? this.task(taskId) : null;
    const orch = task ? this.orchestrations.get(task.orch_id) : null;
    return orch !== null && isNotebook(orch.entrypoint);
  }

  /**
   * The run whose executed notebook can be opened ("Open output"): run `runId` of task
   * `taskId` (by default the selected run), when its task runs a notebook; else null.
   */
  runOutput(
    taskId: string | null = this._selectedTaskId,
    runId: string | null = this._selectedRunId
  ): IRunOutput | null {
    const task = taskId ? this.task(taskId) : null;
    if (!task || !runId || !this.runsNotebook(task.id)) {
      return null;
    }
    const title = `${taskName(task)} – run ${runId.slice(0, 8)}`;
    return { taskId: task.id, runId, title };
  }

  /** Whether the model is disposed. */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The task with this id, if it is loaded (or selected). */
  task(id: string): ITask | null {
    return (
      this.tasks.task(id) ??
      (id === this._selectedTaskId ? this._selectedRecord : null)
    );
  }

  /**
   * Poll the server every few seconds (slower while idle, not at all while the page is
   * hidden); while idle, only the running count and the failures are asked for.
   */
  start(): void {
    if (!this._disposed) {
      this._poller.start();
    }
  }

  /** Stop polling. */
  stop(): void {
    this._poller.stop();
  }

  /** Someone looks at the list again: poll now, then at the active pace. */
  wake(): void {
    this._poller.wake();
  }

  /** Load everything again now; throws with the server's message if it fails. */
  refresh(): Promise<void> {
    return this._queue.run(() => this._load(true), true);
  }

  /** Select a task (null: none); its newest run is selected once its runs are loaded. */
  selectTask(taskId: string | null): Promise<void> {
    if (taskId !== this._selectedTaskId) {
      this._selectedTaskId = taskId;
      this._selectedRecord = taskId ? this.tasks.task(taskId) : null;
      this._selectedRunId = null;
      this._runPinned = false;
      this.log.clear();
      this.runs.setTask(taskId);
      this._selectionChanged.emit();
    }
    return this._queue.run(async () => {
      await this._loadSelected();
      await this._loadRuns();
    }, false);
  }

  /** Select a run and follow its log; `pinned` keeps it selected when newer runs start. */
  selectRun(runId: string | null, pinned = true): void {
    this._runPinned = pinned && runId !== null;
    if (runId === this._selectedRunId) {
      return;
    }
    this._selectedRunId = runId;
    this.log.stop();
    this._selectionChanged.emit();
    if (runId === null) {
      this.log.clear();
    } else {
      this.log.follow(runId);
    }
  }

  /** Kill a task; its runs end, its logs stay. */
  async kill(taskId: string): Promise<void> {
    await this._api.kill(taskId);
    await this._refreshQuietly();
  }

  /** Pause (true) or resume (false) a scheduled or continuous task. */
  async setPaused(taskId: string, pause: boolean): Promise<void> {
    await this._api.pause(taskId, pause);
    await this._refreshQuietly();
  }

  /** Start one extra run of a task now; the new run is selected if its task is. */
  async runNow(taskId: string): Promise<IRunNowAnswer> {
    const run = await this._api.runNow(taskId);
    if (taskId === this._selectedTaskId) {
      this._runPinned = false;
    }
    await this._refreshQuietly();
    return run;
  }

  /** Package a folder or `.py` file of the Jupyter root; the new orchestration's id. */
  async createFromPath(path: string, name?: string): Promise<string> {
    const id = await this._api.createFromPath(path, name);
    await this._refreshQuietly();
    return id;
  }

  /** Create a task and select it; its id. */
  async createTask(task: NewTask): Promise<string> {
    const id = await this._api.createTask(task);
    await this._refreshQuietly();
    await this.selectTask(id);
    return id;
  }

  /** Stop polling and following; disconnect every listener. */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._poller.dispose();
    for (const part of [
      this.log,
      this.runs,
      this.tasks,
      this.orchestrations,
      this.activity,
      this._queue
    ]) {
      part.dispose();
    }
    Signal.clearData(this);
  }

  private async _refreshQuietly(): Promise<void> {
    await this._queue.run(() => this._load(true), false);
  }

  /**
   * Fetch the running count and the failures; unless idle, the loaded tasks again (and
   * orchestrations, workspaces when due) and the selected task's runs.
   */
  private async _load(full: boolean): Promise<void> {
    if (this._disposed) {
      return;
    }
    await this._queue.report(() =>
      !full && this._isIdle() ? this.activity.load() : this._loadShown(full)
    );
  }

  /** What the sidebar shows, and the activity beside it. */
  private async _loadShown(full: boolean): Promise<void> {
    const tick = this._tick++;
    const orchestrations = this.orchestrations;
    await orchestrations.loadWorkspaces(full || tick % 20 === 0);
    const [poll, activity] = await Promise.all([
      this.tasks.fetch(),
      this.activity.fetch()
    ]);
    if (full || tick % 5 === 0 || orchestrations.isStale(poll.tasks)) {
      await orchestrations.load();
    }
    poll.apply();
    const seen = poll.tasks.filter(t => t.last_runs[0]?.status === 'running');
    this.activity.apply(activity, seen.length);
    await this._loadSelected(poll.tasks);
    await this._loadRuns();
  }

  /**
   * The selected task's record when the poll did not bring it (it is not loaded, or older
   * than the polled tasks); the selection ends once the task is gone.
   */
  private async _loadSelected(polled?: readonly ITask[]): Promise<void> {
    const taskId = this._selectedTaskId;
    if (taskId === null) {
      return;
    }
    const found = polled
      ? polled.find(t => t.id === taskId)
      : this._selectedRecord;
    if (found) {
      this._selectedRecord = found;
      return;
    }
    let task: ITask;
    try {
      task = await this._api.getTask(taskId, 1);
    } catch (error) {
      if (isNotFound(error) && taskId === this._selectedTaskId) {
        void this.selectTask(null);
        return;
      }
      throw error;
    }
    if (taskId !== this._selectedTaskId || this._disposed) {
      return;
    }
    this._selectedRecord = task;
    // a loaded task older than the polled ones: its row shows the fresh record
    this.tasks.replace(task);
  }

  /** The selected task's runs; its newest run is selected unless the user chose one. */
  private async _loadRuns(): Promise<void> {
    const taskId = this._selectedTaskId;
    if (taskId === null) {
      return;
    }
    const current = await this.runs.load();
    if (!current || taskId !== this._selectedTaskId || this._disposed) {
      return;
    }
    const runs = this.runs.items;
    const newest = runs[0]?.run_id ?? null;
    const present = runs.some(r => r.run_id === this._selectedRunId);
    if (newest !== null && (!this._runPinned || !present)) {
      this.selectRun(newest, false);
    }
  }

  /** The loaded tasks changed: the selected one's record follows its row. */
  private _onTasksChanged(): void {
    const loaded = this._selectedTaskId
      ? this.tasks.task(this._selectedTaskId)
      : null;
    if (loaded) {
      this._selectedRecord = loaded;
    }
  }

  /** The followed run has ended: show its final status at once, then refresh. */
  private _onRunEnded(_: LogModel, end: IRunEnd): void {
    if (this.runs.markEnded(end.runId, end.status)) {
      void this._refreshQuietly();
    }
  }

  private _api: IOrchApi;
  private _isIdle: () => boolean;
  private _poller: Poller;
  private _queue = new LoadQueue();
  private _disposed = false;
  private _tick = 0;
  private _selectedTaskId: string | null = null;
  private _selectedRecord: ITask | null = null;
  private _selectedRunId: string | null = null;
  private _runPinned = false;
  private _selectionChanged = new Signal<this, void>(this);
}

/** A run with a notebook output, and what its tab is called. */
export interface IRunOutput {
  taskId: string;
  runId: string;
  /** "<task name> – run <first 8 characters of the run id>" */
  title: string;
}

/** The model's options. */
export namespace OrchModel {
  export interface IOptions {
    /** The server API. */
    api: IOrchApi;
    /** Milliseconds between polls (3000). */
    interval?: number;
    /** Milliseconds between polls while nobody looks at the list (10000). */
    idleInterval?: number;
    /** Whether nobody looks at the list (the sidebar is closed): poll less often. */
    isIdle?: () => boolean;
    /** At most this many milliseconds between failing polls (30000). */
    maxInterval?: number;
    /** Whether the page is hidden: polling stands by (the document's visibility by default). */
    isHidden?: () => boolean;
    /** How many runs of the selected task are listed (50). */
    runsLimit?: number;
    /** How many tasks a page holds: the first one, and each one loaded more (100). */
    pageSize?: number;
    /** At most this many tasks are asked for by a poll; older loaded ones stay as were (500). */
    maxPolledTasks?: number;
    /** How many log lines are kept; older ones are dropped (20000). */
    maxLogLines?: number;
  }
}
