import { ITask } from './types';

/**
 * The loaded part of one task listing (every task, or one orchestration's), newest first,
 * as `task/list` pages it by keyset. The list holds as many tasks as were asked for: the
 * first page, plus a page for each "load more". A poll asks again for the newest of them
 * (at most `maxPolled`); tasks beyond that keep their last known state.
 */
export class TaskPages {
  constructor(options: TaskPages.IOptions) {
    this.orchId = options.orchId ?? null;
    this._pageSize = Math.max(1, options.pageSize);
    this._maxPolled = Math.max(this._pageSize, options.maxPolled);
    this._wanted = this._pageSize;
  }

  /** The orchestration whose tasks these are (null: every task). */
  readonly orchId: string | null;

  /** The loaded tasks, newest first. */
  get items(): readonly ITask[] {
    return this._items;
  }

  /** Whether older tasks may exist beyond the loaded ones. */
  get hasMore(): boolean {
    return this._hasMore;
  }

  /** Whether a page was ever applied. */
  get loaded(): boolean {
    return this._loaded;
  }

  /** How many tasks a poll asks for: as many as are loaded, capped. */
  get pollLimit(): number {
    return Math.min(this._wanted, this._maxPolled);
  }

  /** How many tasks one more page asks for. */
  get pageSize(): number {
    return this._pageSize;
  }

  /** Where the next page starts: the id of the oldest loaded task. */
  get after(): string | null {
    return this._items.length > 0
      ? this._items[this._items.length - 1].id
      : null;
  }

  /** Start from tasks already known to be the newest of this listing (say, from a wider one). */
  prefill(items: readonly ITask[], hasMore: boolean): void {
    this._items = items.slice(0, this._wanted);
    this._hasMore = hasMore || items.length > this._wanted;
  }

  /**
   * The answer to a poll for the newest `limit` tasks. Tasks older than the newest
   * `limit` stay as they were (up to the number wanted); tasks gone from the answer's
   * range were deleted.
   */
  applyPoll(page: readonly ITask[], limit: number): void {
    this._loaded = true;
    this._polled = page.length;
    if (page.length < limit) {
      // the whole listing fits in the answer
      this._items = page.slice();
      this._hasMore = false;
      return;
    }
    const last = page[page.length - 1].id;
    const at = this._items.findIndex(t => t.id === last);
    const fresh = new Set(page.map(t => t.id));
    // the answer ends among the loaded tasks: the older loaded ones follow it
    const tail =
      at >= 0 ? this._items.slice(at + 1).filter(t => !fresh.has(t.id)) : [];
    let hasMore = at >= 0 ? this._hasMore : true;
    let items = page.concat(tail);
    if (items.length > this._wanted) {
      items = items.slice(0, this._wanted);
      hasMore = true;
    }
    this._items = items;
    this._hasMore = hasMore;
  }

  /** The answer to a request for the page after `after`. */
  applyMore(page: readonly ITask[]): void {
    this._loaded = true;
    // the user asked for a page more than was loaded: polls keep that many
    this._wanted = Math.max(this._wanted, this._items.length + this._pageSize);
    const known = new Set(this._items.map(t => t.id));
    this._items = this._items.concat(page.filter(t => !known.has(t.id)));
    this._hasMore = page.length >= this._pageSize;
  }

  /** Put a fresher record of a loaded task in its place; whether it was loaded. */
  replace(task: ITask): boolean {
    const at = this._items.findIndex(t => t.id === task.id);
    if (at < 0) {
      return false;
    }
    this._items = this._items.slice();
    this._items[at] = task;
    return true;
  }

  /**
   * The oldest loaded task is gone (a page after it is refused): keep only the tasks the
   * last poll covered, so the next page starts from one that exists.
   */
  dropUnpolled(): void {
    this._items = this._items.slice(0, this._polled);
    this._hasMore = true;
  }

  private _items: ITask[] = [];
  private _hasMore = false;
  private _loaded = false;
  private _polled = 0;
  private _wanted: number;
  private _pageSize: number;
  private _maxPolled: number;
}

/** The options of a `TaskPages`. */
export namespace TaskPages {
  export interface IOptions {
    /** Tasks per page. */
    pageSize: number;
    /** At most this many tasks are asked for by a poll. */
    maxPolled: number;
    /** Only this orchestration's tasks (null or absent: every task). */
    orchId?: string | null;
  }
}
