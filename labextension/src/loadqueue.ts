import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { messageOf } from './errors';

/**
 * The models' loads in one line: each starts once the one before it has ended, so answers
 * never land out of order. A load that `report`s says whether it worked: `error` is its
 * failure's message, and null again once one works (the sidebar shows it).
 */
export class LoadQueue implements IDisposable {
  /** Why the last reported load failed (null when it worked). */
  get error(): string | null {
    return this._error;
  }

  /** A reported load failed, or worked again (null). */
  get errorChanged(): ISignal<this, string | null> {
    return this._errorChanged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * Run `work` once every load queued before it has ended. The promise rejects as the work
   * does if `rethrow`, else it always resolves.
   */
  run(work: () => Promise<void>, rethrow: boolean): Promise<void> {
    const next = this._queue.then(work);
    this._queue = next.catch(() => undefined);
    return rethrow ? next : next.catch(() => undefined);
  }

  /** Do `work`, noting whether it worked as `error`; a failure is thrown on. */
  async report(work: () => Promise<void>): Promise<void> {
    try {
      await work();
      this._setError(null);
    } catch (error) {
      this._setError(messageOf(error));
      throw error;
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    Signal.clearData(this);
  }

  private _setError(error: string | null): void {
    if (error !== this._error) {
      this._error = error;
      this._errorChanged.emit(error);
    }
  }

  private _queue: Promise<void> = Promise.resolve();
  private _error: string | null = null;
  private _disposed = false;
  private _errorChanged = new Signal<this, string | null>(this);
}
