import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IActivity, IOrchApi, RunStatus } from './types';

/** A run that ended badly since the last look. */
export interface IFailedRun {
  taskId: string;
  taskName: string | null;
  runId: string;
  status: RunStatus;
}

/**
 * How far before the previous answer's time failures are asked for again: a run that ended
 * while that answer was read is not missed (runs already announced are skipped).
 */
const FAILURE_OVERLAP_MS = 10000;

/**
 * What `task/activity` tells of every task, loaded or not: how many have a run going (the
 * status bar's count) and the runs that failed or timed out since the previous look (the
 * notifications). Its cost follows the runs going and the failures it answers, not the
 * number of tasks, so it is polled even while nobody looks at the list.
 *
 * The first look's failures (the newest ever) are only noted as seen; each later look asks
 * for the failures since the previous answer's `as_of` less 10 s and announces each run once.
 */
export class ActivityModel implements IDisposable {
  constructor(options: ActivityModel.IOptions) {
    this._api = options.api;
  }

  /** How many tasks have a run going. */
  get runningCount(): number {
    return this._running;
  }

  /** The number of tasks with a run going changed. */
  get runningCountChanged(): ISignal<this, number> {
    return this._runningCountChanged;
  }

  /**
   * A run failed or timed out since the previous look; the failures of one look are
   * signalled one after another, in the order they ended.
   */
  get runFailed(): ISignal<this, IFailedRun> {
    return this._runFailed;
  }

  /** Where the next look for failures starts (null before the first: the newest ever). */
  get since(): string | null {
    if (this._activityAt === null) {
      return null;
    }
    const at = Date.parse(this._activityAt) - FAILURE_OVERLAP_MS;
    return new Date(at).toISOString();
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Ask for the running count and the failures since the previous look (see `apply`). */
  fetch(): Promise<IActivity> {
    return this._api.activity(this.since);
  }

  /** Ask, and apply the answer. */
  async load(): Promise<void> {
    this.apply(await this.fetch());
  }

  /**
   * Apply a `task/activity` answer: the running count (at least `seenRunning`, the tasks
   * with a run going in a list polled at the same time), and a signal for each failed run not
   * announced before. The first look's failures are only noted as seen.
   */
  apply(activity: IActivity, seenRunning = 0): void {
    if (this._disposed) {
      return;
    }
    // the tasks polled with this answer whose newest run is going: the count says no less
    // than the list shows, whichever answer was read first
    const running = Math.max(activity.running, seenRunning);
    if (running !== this._running) {
      this._running = running;
      this._runningCountChanged.emit(running);
    }
    const first = this._activityAt === null;
    this._activityAt = activity.as_of;
    for (const run of [...activity.failed].reverse()) {
      if (this._announced.has(run.run_id)) {
        continue;
      }
      this._announced.set(run.run_id, Date.parse(run.updated_at));
      if (first) {
        continue;
      }
      this._runFailed.emit({
        taskId: run.task,
        taskName: run.task_name,
        runId: run.run_id,
        status: run.status
      });
    }
    // a run that ended before the next look's start cannot come again
    const since = Date.parse(this._activityAt) - FAILURE_OVERLAP_MS;
    for (const [runId, at] of this._announced) {
      if (at <= since) {
        this._announced.delete(runId);
      }
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    Signal.clearData(this);
  }

  private _api: IOrchApi;
  private _disposed = false;
  private _running = 0;
  private _activityAt: string | null = null;
  /** Failed runs announced, with when they ended (ms), until no look can bring them again. */
  private _announced = new Map<string, number>();
  private _runningCountChanged = new Signal<this, number>(this);
  private _runFailed = new Signal<this, IFailedRun>(this);
}

/** The activity model's options. */
export namespace ActivityModel {
  export interface IOptions {
    /** The server API. */
    api: IOrchApi;
  }
}
