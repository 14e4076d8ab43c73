import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { ActivityModel } from './activitymodel';
import { isNotFound } from './errors';
import { LoadQueue } from './loadqueue';
import { IRunEnd, LogModel } from './logmodel';
import { Poller } from './poller';
import { TaskPages } from './taskpages';
import {
  IOrchApi,
  IOrchestration,
  IRunNowAnswer,
  ITask,
  ITaskQuery,
  ITaskRun,
  IWorkspace,
  NewTask
} from './types';

/** How many tasks of an orchestration are known; `exact` unless some are not loaded. */
export interface ITaskCount {
  count: number;
  exact: boolean;
}

/**
 * The state the sidebar shows: orchestrations, tasks, the selected task's runs and the
 * selected run's log. It polls the server with cheap requests (the loaded tasks with one
 * run each, the selected task's runs) and follows the selected run's log as it is written.
 * The running count and the failed runs come from `task/activity`, which covers every task
 * whether loaded or not; while nobody looks at the list (`isIdle`), only that is polled.
 *
 * Tasks come a page at a time (`task/list` with `limit` and `after`): the newest page
 * first, another only when asked (`loadMoreTasks`). A poll asks again for as many tasks as
 * are loaded (at most `maxPolledTasks`), so its cost follows what the list shows, not how
 * many tasks the server keeps. While an orchestration is chosen, its own tasks are paged
 * (`orch_id`), and only the newest page of every task is polled beside them.
 */
export class OrchModel implements IDisposable {
  constructor(options: OrchModel.IOptions) {
    this._api = options.api;
    this.activity = new ActivityModel({ api: options.api });
    this.log = new LogModel({
      api: options.api,
      maxLines: options.maxLogLines
    });
    this.log.ended.connect(this._onRunEnded, this);
    this._isIdle = options.isIdle ?? (() => false);
    this._poller = new Poller({
      tick: () => this._queue.run(() => this._load(false), true),
      interval: options.interval,
      idleInterval: options.idleInterval,
      isIdle: this._isIdle,
      maxInterval: options.maxInterval,
      isHidden: options.isHidden
    });
    this._runsLimit = options.runsLimit ?? 50;
    this._pageSize = Math.max(1, options.pageSize ?? 100);
    this._maxPolled = Math.max(this._pageSize, options.maxPolledTasks ?? 500);
    this._all = this._newPages(null);
  }

  /** The running count and the failed runs of every task. */
  readonly activity: ActivityModel;

  /** The selected run's log, followed while the run goes on. */
  readonly log: LogModel;

  /** Every workspace. */
  get workspaces(): readonly IWorkspace[] {
    return this._workspaces;
  }

  /** Every orchestration, newest first. */
  get orchestrations(): readonly IOrchestration[] {
    return this._orchestrations;
  }

  /**
   * The loaded tasks, newest first, each with its newest run: every task's, or the chosen
   * orchestration's.
   */
  get tasks(): readonly ITask[] {
    return this._shownPages().items;
  }

  /** Whether older tasks than those loaded may exist (`loadMoreTasks` fetches them). */
  get hasMoreTasks(): boolean {
    return this._shownPages().hasMore;
  }

  /** Whether a page of older tasks is being fetched. */
  get loadingMoreTasks(): boolean {
    return this._moreJob !== null;
  }

  /** The orchestration whose tasks alone are shown, if any. */
  get orchFilter(): string | null {
    return this._orchFilter;
  }

  /** The selected task (loaded or not: it stays selected while it exists). */
  get selectedTask(): ITask | null {
    return this._selectedTaskId
      ? (this._taskIndex.get(this._selectedTaskId) ?? this._selectedRecord)
      : null;
  }

  /** The selected task's id. */
  get selectedTaskId(): string | null {
    return this._selectedTaskId;
  }

  /** The selected task's runs, newest first. */
  get runs(): readonly ITaskRun[] {
    return this._runs;
  }

  /** The selected run. */
  get selectedRun(): ITaskRun | null {
    return this._runs.find(r => r.run_id === this._selectedRunId) ?? null;
  }

  /** The selected run's id (set before its details are loaded). */
  get selectedRunId(): string | null {
    return this._selectedRunId;
  }

  /** Why the last refresh failed (null when it worked). */
  get error(): string | null {
    return this._queue.error;
  }

  /** Whether the model is disposed. */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The orchestration with this id. */
  orchestration(id: string): IOrchestration | null {
    return this._orchIndex.get(id) ?? null;
  }

  /** The task with this id, if it is loaded (or selected). */
  task(id: string): ITask | null {
    return (
      this._taskIndex.get(id) ??
      (id === this._selectedTaskId ? this._selectedRecord : null)
    );
  }

  /** How many tasks of an orchestration are loaded, and whether that is all of them. */
  taskCount(orchId: string): ITaskCount {
    const own = this._byOrch;
    if (own && own.orchId === orchId && own.loaded) {
      return { count: own.items.length, exact: !own.hasMore };
    }
    return {
      count: this._taskCounts.get(orchId) ?? 0,
      exact: !this._all.hasMore
    };
  }

  /** The orchestrations changed. */
  get orchestrationsChanged(): ISignal<this, void> {
    return this._orchestrationsChanged;
  }

  /** The task list changed (a task, a status, a newest run, or what is loaded). */
  get tasksChanged(): ISignal<this, void> {
    return this._tasksChanged;
  }

  /** The orchestration filter changed. */
  get filterChanged(): ISignal<this, void> {
    return this._filterChanged;
  }

  /** The selected task or run changed. */
  get selectionChanged(): ISignal<this, void> {
    return this._selectionChanged;
  }

  /** The selected task's runs changed. */
  get runsChanged(): ISignal<this, void> {
    return this._runsChanged;
  }

  /** A refresh failed, or worked again (null). */
  get errorChanged(): ISignal<LoadQueue, string | null> {
    return this._queue.errorChanged;
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

  /**
   * Show only the tasks of one orchestration (null: every task). Its tasks already loaded
   * show at once; its own pages are fetched from the server.
   */
  setOrchFilter(orchId: string | null): void {
    if (orchId === this._orchFilter) {
      return;
    }
    this._orchFilter = orchId;
    this._moreJob = null;
    if (orchId === null) {
      this._byOrch = null;
    } else {
      // the loaded tasks are the newest of every task: those of this orchestration are
      // the newest of its own, and all of them unless more tasks are to be loaded
      const own = this._newPages(orchId);
      own.prefill(
        this._all.items.filter(t => t.orch_id === orchId),
        this._all.hasMore
      );
      this._byOrch = own;
    }
    this._filterChanged.emit();
    this._publish();
    if (orchId !== null && this._byOrch?.hasMore && !this._disposed) {
      void this._queue.run(() => this._load(false), false);
    }
  }

  /**
   * Fetch the page of tasks after the oldest loaded one (of the list shown); later polls
   * keep that many tasks fresh. Resolves at once when every task is loaded.
   */
  loadMoreTasks(): Promise<void> {
    if (this._moreJob !== null) {
      return this._moreJob;
    }
    const pages = this._shownPages();
    if (!pages.hasMore || this._disposed) {
      return Promise.resolve();
    }
    const job = this._queue
      .run(() => this._loadMore(pages), true)
      .finally(() => {
        if (this._moreJob === job) {
          this._moreJob = null;
          this._tasksChanged.emit();
        }
      });
    this._moreJob = job;
    this._tasksChanged.emit();
    return job;
  }

  /** Select a task (null: none); its newest run is selected once its runs are loaded. */
  selectTask(taskId: string | null): Promise<void> {
    if (taskId !== this._selectedTaskId) {
      this._selectedTaskId = taskId;
      this._selectedRecord = taskId
        ? (this._taskIndex.get(taskId) ?? null)
        : null;
      this._runs = [];
      this._runsKey = '';
      this._selectedRunId = null;
      this._runPinned = false;
      this.log.clear();
      this._selectionChanged.emit();
      this._runsChanged.emit();
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
    this.log.dispose();
    this.activity.dispose();
    this._queue.dispose();
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
    if (full || this._workspaces.length === 0 || tick % 20 === 0) {
      this._workspaces = await this._api.listWorkspaces();
    }
    const all = this._all;
    const own = this._byOrch;
    // while an orchestration is chosen, every task's list is not shown: only its
    // newest page is watched, for the task counts of the orchestrations
    const polls: [TaskPages, number][] = [
      [all, own ? this._pageSize : all.pollLimit]
    ];
    if (own) {
      polls.push([own, own.pollLimit]);
    }
    const [answers, activity] = await Promise.all([
      Promise.all(
        polls.map(([pages, limit]) =>
          this._api.listTasks(this._query(pages, limit))
        )
      ),
      this.activity.fetch()
    ]);
    const packaging = this._orchestrations.some(
      o => o.status === 'pending_packaging' || o.status === 'packaging'
    );
    const polled = answers.flat();
    const unknown = polled.some(t => !this._orchIndex.has(t.orch_id));
    if (full || packaging || unknown || tick % 5 === 0) {
      await this._loadOrchestrations();
    }
    polls.forEach(([pages, limit], i) => pages.applyPoll(answers[i], limit));
    this._publish();
    this.activity.apply(activity);
    await this._loadSelected(polled);
    await this._loadRuns();
  }

  /** One page more of the list shown; if its start is gone, from the last polled task. */
  private async _loadMore(pages: TaskPages): Promise<void> {
    if (pages !== this._shownPages() || !pages.hasMore || this._disposed) {
      return;
    }
    const ask = (): Promise<ITask[]> =>
      this._api.listTasks(
        this._query(pages, pages.pageSize, pages.after ?? undefined)
      );
    await this._queue.report(async () => {
      let page: ITask[];
      try {
        page = await ask();
      } catch (error) {
        if (!isNotFound(error)) {
          throw error;
        }
        pages.dropUnpolled();
        page = await ask();
      }
      pages.applyMore(page);
      this._publish();
    });
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
    const stale = [this._all, this._byOrch].filter(
      (p): p is TaskPages => p !== null && p.replace(task)
    );
    if (stale.length > 0) {
      this._publish();
    }
  }

  /** The list shown: the chosen orchestration's tasks, or every task. */
  private _shownPages(): TaskPages {
    return this._byOrch ?? this._all;
  }

  private _newPages(orchId: string | null): TaskPages {
    return new TaskPages({
      pageSize: this._pageSize,
      maxPolled: this._maxPolled,
      orchId
    });
  }

  private _query(pages: TaskPages, limit: number, after?: string): ITaskQuery {
    const query: ITaskQuery = { runLimit: 1, limit };
    if (after !== undefined) {
      query.after = after;
    }
    if (pages.orchId !== null) {
      query.orchId = pages.orchId;
    }
    return query;
  }

  private async _loadOrchestrations(): Promise<void> {
    const lists = await Promise.all(
      this._workspaces.map(w => this._api.listOrchestrations(w.id))
    );
    const orchs = lists
      .flat()
      .sort((a, b) => b.created_at.localeCompare(a.created_at));
    const key = orchs
      .map(o => `${o.id}|${o.status}|${o.updated_at}|${o.name}`)
      .join('\n');
    if (key === this._orchKey) {
      return;
    }
    this._orchKey = key;
    this._orchestrations = orchs;
    this._orchIndex = new Map(orchs.map(o => [o.id, o]));
    this._orchestrationsChanged.emit();
  }

  /** The loaded tasks may have changed: signal if they did. */
  private _publish(): void {
    const lists = [this._all, this._byOrch];
    const key = lists
      .map(p => (p ? `${p.hasMore}\n${p.items.map(taskKey).join('\n')}` : ''))
      .join('\n--\n');
    if (key !== this._tasksKey) {
      this._tasksKey = key;
      this._taskIndex = new Map();
      for (const pages of lists) {
        for (const task of pages?.items ?? []) {
          this._taskIndex.set(task.id, task);
        }
      }
      this._taskCounts = new Map();
      for (const task of this._all.items) {
        this._taskCounts.set(
          task.orch_id,
          (this._taskCounts.get(task.orch_id) ?? 0) + 1
        );
      }
      const selected = this._selectedTaskId
        ? this._taskIndex.get(this._selectedTaskId)
        : undefined;
      if (selected) {
        this._selectedRecord = selected;
      }
      this._tasksChanged.emit();
    }
    if (this._orchFilter && !this._orchIndex.has(this._orchFilter)) {
      this.setOrchFilter(null);
    }
  }

  /** The selected task's runs; its newest run is selected unless the user chose one. */
  private async _loadRuns(): Promise<void> {
    const taskId = this._selectedTaskId;
    if (taskId === null) {
      return;
    }
    const runs = await this._api.listRuns(taskId, this._runsLimit);
    if (taskId !== this._selectedTaskId || this._disposed) {
      return;
    }
    const key = runs.map(runKey).join('\n');
    if (key !== this._runsKey) {
      this._runsKey = key;
      this._runs = runs;
      this._runsChanged.emit();
    }
    const newest = runs[0]?.run_id ?? null;
    const present = runs.some(r => r.run_id === this._selectedRunId);
    if (newest !== null && (!this._runPinned || !present)) {
      this.selectRun(newest, false);
    }
  }

  /** The followed run has ended: show its final status at once, then refresh. */
  private _onRunEnded(_: LogModel, end: IRunEnd): void {
    const { runId, status } = end;
    const run = this._runs.find(r => r.run_id === runId);
    if (run && run.status !== status) {
      this._runs = this._runs.map(r =>
        r.run_id === runId ? { ...r, status } : r
      );
      this._runsKey = '';
      this._runsChanged.emit();
    }
    if (run && run.status === 'running') {
      void this._refreshQuietly();
    }
  }

  private _api: IOrchApi;
  private _poller: Poller;
  private _runsLimit: number;
  private _pageSize: number;
  private _maxPolled: number;
  private _isIdle: () => boolean;
  private _disposed = false;
  private _queue = new LoadQueue();
  private _tick = 0;

  private _workspaces: IWorkspace[] = [];
  private _orchestrations: IOrchestration[] = [];
  private _orchIndex = new Map<string, IOrchestration>();
  private _orchKey = '';
  private _orchFilter: string | null = null;
  private _all: TaskPages;
  private _byOrch: TaskPages | null = null;
  private _moreJob: Promise<void> | null = null;
  private _taskIndex = new Map<string, ITask>();
  private _taskCounts = new Map<string, number>();
  private _tasksKey = '';

  private _selectedTaskId: string | null = null;
  private _selectedRecord: ITask | null = null;
  private _runs: ITaskRun[] = [];
  private _runsKey = '';
  private _selectedRunId: string | null = null;
  private _runPinned = false;

  private _orchestrationsChanged = new Signal<this, void>(this);
  private _tasksChanged = new Signal<this, void>(this);
  private _filterChanged = new Signal<this, void>(this);
  private _selectionChanged = new Signal<this, void>(this);
  private _runsChanged = new Signal<this, void>(this);
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
    /** How many runs of the selected task are listed (50). */
    runsLimit?: number;
    /** How many tasks a page holds: the first one, and each one loaded more (100). */
    pageSize?: number;
    /** At most this many tasks are asked for by a poll; older loaded ones stay as were (500). */
    maxPolledTasks?: number;
    /** How many log lines are kept; older ones are dropped (20000). */
    maxLogLines?: number;
    /** Whether the page is hidden: polling stands by (the document's visibility by default). */
    isHidden?: () => boolean;
  }
}

/** What a task row shows: a change of any of it is a change of the list. */
function taskKey(task: ITask): string {
  const run = task.last_runs[0];
  return [
    task.id,
    task.name,
    task.status,
    task.updated_at,
    task.next_run_at,
    run?.run_id,
    run?.status
  ].join('|');
}

function runKey(run: ITaskRun): string {
  return [run.run_id, run.status, run.updated_at].join('|');
}
