import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { messageOf } from './errors';
import { ILogLine, LineJoiner } from './logline';
import { FollowEvent, IOrchApi, RunStatus } from './types';

/** Where the followed run's log stands. */
export type LogState = 'idle' | 'following' | 'ended' | 'error';

/** A change of the log: `reset` means start over from `lines`. */
export interface ILogChange {
  reset: boolean;
  added: readonly ILogLine[];
}

/** The followed run ended, with this status. */
export interface IRunEnd {
  runId: string;
  status: RunStatus;
}

/**
 * One run's log, followed as it is written (`task/follow_logs`) until the run ends. After a
 * broken connection it asks again from the next line, waiting longer each time; after 5
 * failures in a row it gives up (`error`). The pieces of a long line are joined; lines are
 * signalled in batches, so a burst of output is one change; past `maxLines` the oldest tenth
 * is dropped.
 */
export class LogModel implements IDisposable {
  constructor(options: LogModel.IOptions) {
    this._api = options.api;
    this._maxLines = options.maxLines ?? 20000;
  }

  /** The followed run's whole lines so far. */
  get lines(): readonly ILogLine[] {
    return this._lines;
  }

  /** Whether the log is being followed, complete, or failed. */
  get state(): LogState {
    return this._state;
  }

  /** Why following the log failed. */
  get error(): string | null {
    return this._error;
  }

  /** How many lines were dropped from the head of a very long log. */
  get dropped(): number {
    return this._dropped;
  }

  /** Lines were added, or the log started over, or its state changed. */
  get changed(): ISignal<this, ILogChange> {
    return this._changed;
  }

  /** The followed run ended (signalled after its last lines). */
  get ended(): ISignal<this, IRunEnd> {
    return this._ended;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Start over with the log of this run, and follow it. */
  follow(runId: string): void {
    this.stop();
    this._reset('following');
    const controller = new AbortController();
    this._follow = controller;
    void this._followLoop(runId, controller);
  }

  /** Stop following, and show no log. */
  clear(): void {
    this.stop();
    this._reset('idle');
  }

  /** Stop following; the lines so far stay. */
  stop(): void {
    this._follow?.abort();
    this._follow = null;
    if (this._flushTimer !== null) {
      clearTimeout(this._flushTimer);
      this._flushTimer = null;
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.stop();
    Signal.clearData(this);
  }

  private _reset(state: LogState): void {
    this._lines = [];
    this._dropped = 0;
    this._joiner = new LineJoiner();
    this._pending = [];
    this._state = state;
    this._error = null;
    this._changed.emit({ reset: true, added: [] });
  }

  /** Follow until the run has ended; after a broken connection resume where it stopped. */
  private async _followLoop(
    runId: string,
    controller: AbortController
  ): Promise<void> {
    const signal = controller.signal;
    let next = 0;
    let failures = 0;
    let lastError = 'the connection ended early';
    while (!signal.aborted) {
      let end: RunStatus | null = null;
      const onEvent = (event: FollowEvent): void => {
        if (signal.aborted) {
          return;
        }
        failures = 0;
        if ('n' in event) {
          next = event.n + 1;
          const line = this._joiner.push(event.n, event.line);
          if (line) {
            this._queueLine(line);
          }
        } else if ('end' in event) {
          end = event.status;
          next = event.next;
        }
      };
      try {
        await this._api.followLogs(runId, next, onEvent, signal);
      } catch (error) {
        lastError = messageOf(error);
      }
      if (signal.aborted) {
        return;
      }
      if (end !== null) {
        for (const line of this._joiner.flush()) {
          this._queueLine(line);
        }
        this._flush();
        this._state = 'ended';
        this._changed.emit({ reset: false, added: [] });
        this._ended.emit({ runId, status: end });
        return;
      }
      this._flush();
      failures += 1;
      if (failures > 5) {
        this._state = 'error';
        this._error = lastError;
        this._changed.emit({ reset: false, added: [] });
        return;
      }
      await sleep(Math.min(500 * 2 ** failures, 8000), signal);
    }
  }

  /** Lines are shown in batches, so a burst of output is one update. */
  private _queueLine(line: ILogLine): void {
    this._pending.push(line);
    if (this._flushTimer === null) {
      this._flushTimer = setTimeout(() => this._flush(), 50);
    }
  }

  private _flush(): void {
    if (this._flushTimer !== null) {
      clearTimeout(this._flushTimer);
      this._flushTimer = null;
    }
    if (this._pending.length === 0) {
      return;
    }
    const added = this._pending;
    this._pending = [];
    this._lines.push(...added);
    if (this._lines.length > this._maxLines) {
      const drop = this._lines.length - Math.floor(this._maxLines * 0.9);
      this._lines.splice(0, drop);
      this._dropped += drop;
      this._changed.emit({ reset: true, added: [] });
      return;
    }
    this._changed.emit({ reset: false, added });
  }

  private _api: IOrchApi;
  private _maxLines: number;
  private _disposed = false;
  private _lines: ILogLine[] = [];
  private _dropped = 0;
  private _state: LogState = 'idle';
  private _error: string | null = null;
  private _joiner = new LineJoiner();
  private _pending: ILogLine[] = [];
  private _flushTimer: ReturnType<typeof setTimeout> | null = null;
  private _follow: AbortController | null = null;
  private _changed = new Signal<this, ILogChange>(this);
  private _ended = new Signal<this, IRunEnd>(this);
}

/** The log model's options. */
export namespace LogModel {
  export interface IOptions {
    /** The server API. */
    api: IOrchApi;
    /** How many lines are kept; older ones are dropped (20000). */
    maxLines?: number;
  }
}

/** Wait, unless the signal aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
