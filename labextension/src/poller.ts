import { IDisposable } from '@lumino/disposable';
import { IPoll, Poll } from '@lumino/polling';

/**
 * Calls `tick` again and again on a `Poll` of @lumino/polling, as JupyterLab's own session
 * and kernel managers poll: every `interval` while someone looks at the list, every
 * `idleInterval` while nobody does (`isIdle`, asked after each tick). A tick that fails is
 * tried again later and later (backing off up to `maxInterval`). While the page is hidden
 * the poll stands by ('when-hidden': after one more tick it calls nothing) until the page
 * shows again.
 */
export class Poller implements IDisposable {
  constructor(options: Poller.IOptions) {
    this._interval = options.interval ?? 3000;
    this._idleInterval = options.idleInterval ?? 10000;
    this._isIdle = options.isIdle ?? (() => false);
    this._max = Math.max(
      options.maxInterval ?? 30000,
      this._interval,
      this._idleInterval
    );
    const tick = options.tick;
    this._poll = new Private.VisiblePoll(
      {
        auto: false,
        name: 'jupyter_orch:poll',
        standby: 'when-hidden',
        frequency: this._frequency(this._interval),
        factory: async () => {
          try {
            await tick();
          } finally {
            this._pace();
          }
        }
      },
      options.isHidden
    );
  }

  /** Whether `start` was called (and `stop` not since). */
  get isStarted(): boolean {
    return this._started;
  }

  /** Whether the poller is disposed. */
  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** How the poll stands by: 'when-hidden'. */
  get standby(): Poller.Standby {
    return this._poll.standby;
  }

  /** Tick now, then on and on. */
  start(): void {
    if (this._started || this.isDisposed) {
      return;
    }
    this._started = true;
    void this._poll.start();
  }

  /** Tick no more (until `start`). */
  stop(): void {
    this._started = false;
    void this._poll.stop();
  }

  /** Someone looks at the list again: tick now, then at the active pace. */
  wake(): void {
    if (!this._started || this.isDisposed) {
      return;
    }
    void this._poll.refresh();
  }

  dispose(): void {
    this._started = false;
    this._poll.dispose();
  }

  /** The pace of the next ticks, as the list is looked at or not. */
  private _pace(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.frequency = this._frequency(
      this._isIdle() ? this._idleInterval : this._interval
    );
  }

  private _frequency(interval: number): IPoll.Frequency {
    return { interval, backoff: true, max: this._max };
  }

  private _interval: number;
  private _idleInterval: number;
  private _isIdle: () => boolean;
  private _max: number;
  private _started = false;
  private _poll: Poll<void, unknown, 'standby'>;
}

/** The poller's options. */
export namespace Poller {
  /** When a poll stands by. */
  export type Standby = Poll.Standby | (() => boolean | Poll.Standby);

  export interface IOptions {
    /** One round of requests; a rejection backs the next ones off. */
    tick: () => Promise<void>;
    /** Milliseconds between ticks (3000). */
    interval?: number;
    /** Milliseconds between ticks while nobody looks at the list (10000). */
    idleInterval?: number;
    /** Whether nobody looks at the list (the sidebar is closed). */
    isIdle?: () => boolean;
    /** At most this many milliseconds between failing ticks (30000). */
    maxInterval?: number;
    /** Whether the page is hidden (by default, as the document says). */
    isHidden?: () => boolean;
  }
}

namespace Private {
  /** A poll that asks `isHidden`, when given, whether the page is hidden. */
  export class VisiblePoll extends Poll<void, unknown, 'standby'> {
    constructor(
      options: Poll.IOptions<void, unknown, 'standby'>,
      isHidden?: () => boolean
    ) {
      super(options);
      this._isHidden = isHidden ?? null;
    }

    protected override get hidden(): boolean {
      return this._isHidden ? this._isHidden() : super.hidden;
    }

    private _isHidden: (() => boolean) | null;
  }
}
