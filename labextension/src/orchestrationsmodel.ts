import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IOrchApi, IOrchestration, ITask, IWorkspace } from './types';

/**
 * The workspaces and every orchestration of them, newest first (`orchestration/list` per
 * workspace, which is not paged). It signals only real changes (a new orchestration, a
 * status, a name), so an unchanged list does not redraw.
 */
export class OrchestrationsModel implements IDisposable {
  constructor(options: OrchestrationsModel.IOptions) {
    this._api = options.api;
  }

  /** Every workspace. */
  get workspaces(): readonly IWorkspace[] {
    return this._workspaces;
  }

  /** Every orchestration, newest first. */
  get items(): readonly IOrchestration[] {
    return this._items;
  }

  /** The orchestrations changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The orchestration with this id. */
  get(id: string): IOrchestration | null {
    return this._index.get(id) ?? null;
  }

  /** Whether an orchestration of this id is known. */
  has(id: string): boolean {
    return this._index.has(id);
  }

  /**
   * Whether the list is worth asking for again before its turn: an orchestration is being
   * packaged, or one of these tasks belongs to an orchestration not known yet.
   */
  isStale(tasks: readonly ITask[]): boolean {
    const packaging = this._items.some(
      o => o.status === 'pending_packaging' || o.status === 'packaging'
    );
    return packaging || tasks.some(t => !this._index.has(t.orch_id));
  }

  /** Ask for the workspaces if `again`, or if none is known yet. */
  async loadWorkspaces(again: boolean): Promise<void> {
    if (again || this._workspaces.length === 0) {
      this._workspaces = await this._api.listWorkspaces();
    }
  }

  /** Ask for the orchestrations of every known workspace; signal if they changed. */
  async load(): Promise<void> {
    const lists = await Promise.all(
      this._workspaces.map(w => this._api.listOrchestrations(w.id))
    );
    const orchs = lists
      .flat()
      .sort((a, b) => b.created_at.localeCompare(a.created_at));
    const key = orchs
      .map(o => `${o.id}|${o.status}|${o.updated_at}|${o.name}`)
      .join('\n');
    if (key === this._key || this._disposed) {
      return;
    }
    this._key = key;
    this._items = orchs;
    this._index = new Map(orchs.map(o => [o.id, o]));
    this._changed.emit();
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
  private _workspaces: IWorkspace[] = [];
  private _items: IOrchestration[] = [];
  private _index = new Map<string, IOrchestration>();
  private _key = '';
  private _changed = new Signal<this, void>(this);
}

/** The orchestrations model's options. */
export namespace OrchestrationsModel {
  export interface IOptions {
    /** The server API. */
    api: IOrchApi;
  }
}
