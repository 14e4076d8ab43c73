import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { isNotFound } from './errors';
import { LoadQueue } from './loadqueue';
import { OrchestrationsModel } from './orchestrationsmodel';
import { SPARK_RUNS } from './sparkline';
import { TaskPages } from './taskpages';
import { IOrchApi, ITask, ITaskQuery } from './types';

/** How many tasks of an orchestration are known; `exact` unless some are not loaded. */
export interface ITaskCount {
  count: number;
  exact: boolean;
}

/**
 * The loaded tasks, newest first, each with its newest run: every task's, or those of the
 * chosen orchestration (`orchFilter`).
 *
 * Tasks come a page at a time (`task/list` with `limit` and `after`, by keyset): the newest
 * page first, another only when asked (`loadMore`). A poll (`fetch`, then its `apply`) asks
 * again for as many tasks as are loaded (at most `maxPolledTasks`), so its cost follows
 * what the list shows, not how many tasks the server keeps. While an orchestration is
 * chosen, its own tasks are paged (`orch_id`), and only the newest page of every task is
 * polled beside them (for the orchestrations' task counts). It signals only real changes.
 */
export class TasksModel implements IDisposable {
  constructor(options: TasksModel.IOptions) {
    this._api = options.api;
    this._queue = options.queue;
    this._orchestrations = options.orchestrations;
    this._pollNow = options.pollNow;
    this._pageSize = Math.max(1, options.pageSize ?? 100);
    this._maxPolled = Math.max(this._pageSize, options.maxPolledTasks ?? 500);
    this._all = this._newPages(null);
  }

  /** The loaded tasks of the list shown, newest first. */
  get items(): readonly ITask[] {
    return this._shown().items;
  }

  /** Whether older tasks than those loaded may exist (`loadMore` fetches them). */
  get hasMore(): boolean {
    return this._shown().hasMore;
  }

  /** Whether a page of older tasks is being fetched. */
  get loadingMore(): boolean {
    return this._moreJob !== null;
  }

  /** The orchestration whose tasks alone are shown, if any. */
  get orchFilter(): string | null {
    return this._orchFilter;
  }

  /** The task list changed (a task, a status, a newest run, or what is loaded). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The orchestration filter changed. */
  get filterChanged(): ISignal<this, void> {
    return this._filterChanged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The task with this id, if it is loaded. */
  task(id: string): ITask | null {
    return this._index.get(id) ?? null;
  }

  /** How many tasks of an orchestration are loaded, and whether that is all of them. */
  count(orchId: string): ITaskCount {
    const own = this._byOrch;
    if (own && own.orchId === orchId && own.loaded) {
      return { count: own.items.length, exact: !own.hasMore };
    }
    return {
      count: this._counts.get(orchId) ?? 0,
      exact: !this._all.hasMore
    };
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
      this._pollNow();
    }
  }

  /**
   * Fetch the page of tasks after the oldest loaded one (of the list shown); later polls
   * keep that many tasks fresh. Resolves at once when every task is loaded.
   */
  loadMore(): Promise<void> {
    if (this._moreJob !== null) {
      return this._moreJob;
    }
    const pages = this._shown();
    if (!pages.hasMore || this._disposed) {
      return Promise.resolve();
    }
    const job = this._queue
      .run(() => this._loadMore(pages), true)
      .finally(() => {
        if (this._moreJob === job) {
          this._moreJob = null;
          this._changed.emit();
        }
      });
    this._moreJob = job;
    this._changed.emit();
    return job;
  }

  /** Ask for the loaded tasks again; `apply` the answer to take it in. */
  async fetch(): Promise<TasksModel.IPoll> {
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
    const answers = await Promise.all(
      polls.map(([pages, limit]) =>
        this._api.listTasks(this._query(pages, limit))
      )
    );
    return {
      tasks: answers.flat(),
      apply: () => {
        polls.forEach(([pages, limit], i) =>
          pages.applyPoll(answers[i], limit)
        );
        this._publish();
      }
    };
  }

  /** A fresher record of a task: a loaded task shows it (and the list signals). */
  replace(task: ITask): void {
    const stale = [this._all, this._byOrch].filter(
      (p): p is TaskPages => p !== null && p.replace(task)
    );
    if (stale.length > 0) {
      this._publish();
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    Signal.clearData(this);
  }

  /** One page more of the list shown; if its start is gone, from the last polled task. */
  private async _loadMore(pages: TaskPages): Promise<void> {
    if (pages !== this._shown() || !pages.hasMore || this._disposed) {
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

  /** The loaded tasks may have changed: signal if they did. */
  private _publish(): void {
    const lists = [this._all, this._byOrch];
    const key = lists
      .map(p => (p ? `${p.hasMore}\n${p.items.map(taskKey).join('\n')}` : ''))
      .join('\n--\n');
    if (key !== this._key) {
      this._key = key;
      this._index = new Map();
      for (const pages of lists) {
        for (const task of pages?.items ?? []) {
          this._index.set(task.id, task);
        }
      }
      this._counts = new Map();
      for (const task of this._all.items) {
        this._counts.set(
          task.orch_id,
          (this._counts.get(task.orch_id) ?? 0) + 1
        );
      }
      this._changed.emit();
    }
    if (this._orchFilter && !this._orchestrations.has(this._orchFilter)) {
      this.setOrchFilter(null);
    }
  }

  /** The list shown: the chosen orchestration's tasks, or every task. */
  private _shown(): TaskPages {
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
    const query: ITaskQuery = { runLimit: SPARK_RUNS, limit };
    if (after !== undefined) {
      query.after = after;
    }
    if (pages.orchId !== null) {
      query.orchId = pages.orchId;
    }
    return query;
  }

  private _api: IOrchApi;
  private _queue: LoadQueue;
  private _orchestrations: OrchestrationsModel;
  private _pollNow: () => void;
  private _pageSize: number;
  private _maxPolled: number;
  private _disposed = false;
  private _orchFilter: string | null = null;
  private _all: TaskPages;
  private _byOrch: TaskPages | null = null;
  private _moreJob: Promise<void> | null = null;
  private _index = new Map<string, ITask>();
  private _counts = new Map<string, number>();
  private _key = '';
  private _changed = new Signal<this, void>(this);
  private _filterChanged = new Signal<this, void>(this);
}

/** The tasks model's options, and a poll's answer. */
export namespace TasksModel {
  export interface IOptions {
    /** The server API. */
    api: IOrchApi;
    /** The line the sidebar's loads wait in ("load more" waits there too). */
    queue: LoadQueue;
    /** The known orchestrations: a filter on one that is gone ends. */
    orchestrations: OrchestrationsModel;
    /** Poll now: the chosen orchestration's own pages are to be fetched. */
    pollNow: () => void;
    /** How many tasks a page holds: the first one, and each one loaded more (100). */
    pageSize?: number;
    /** At most this many tasks are asked for by a poll; older loaded ones stay as were (500). */
    maxPolledTasks?: number;
  }

  /** The answer to a poll of the loaded tasks. */
  export interface IPoll {
    /** Every task it brought (of every list polled). */
    tasks: readonly ITask[];
    /** Take the answer in: the lists change, and signal if they did. */
    apply: () => void;
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
