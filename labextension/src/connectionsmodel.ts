import { Signal } from '@lumino/signaling';

import { requestAPI } from './handler';

/** What the sidebar keeps of a connection: never its details (they are secret). */
export interface IConnectionSummary {
  id: string;
  name: string;
  type: string;
  workspaceNames: string[];
}

/** A connection as `connections/list` answers it. */
export interface IConnectionAnswer {
  id: string;
  name: string;
  type: string;
  details: Record<string, unknown>;
  created_at: string;
  workspace_names: string[];
}

/** The calls the connections section makes. */
export interface IConnectionsApi {
  list(): Promise<IConnectionSummary[]>;
  create(
    name: string,
    type: string,
    details: Record<string, unknown>
  ): Promise<void>;
}

/** A connection without its details. */
export function summarise(answer: IConnectionAnswer): IConnectionSummary {
  return {
    id: answer.id,
    name: answer.name,
    type: answer.type,
    workspaceNames: answer.workspace_names
  };
}

/** The server's connections API; details are dropped as soon as they arrive. */
export const connectionsApi: IConnectionsApi = {
  async list(): Promise<IConnectionSummary[]> {
    const answer = await requestAPI<{ connections: IConnectionAnswer[] }>(
      'connections/list',
      { method: 'POST', body: '{}' }
    );
    return answer.connections.map(summarise);
  },
  async create(
    name: string,
    type: string,
    details: Record<string, unknown>
  ): Promise<void> {
    await requestAPI<{ id: string }>('connections/create', {
      method: 'POST',
      body: JSON.stringify({ name, type, details })
    });
  }
};

/**
 * The details typed in the form: a JSON object (empty text: `{}`), or a message saying
 * what is wrong — which never repeats the text, as it holds secrets.
 */
export function parseDetails(text: string): Record<string, unknown> | string {
  if (!text.trim()) {
    return {};
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'Details must be JSON, such as {"host": "…", "token": "…"}.';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return 'Details must be a JSON object, such as {"host": "…"}.';
  }
  return value as Record<string, unknown>;
}

/** The connections listed by name and type, and the error of the last call. */
export class ConnectionsModel {
  constructor(api: IConnectionsApi = connectionsApi) {
    this._api = api;
  }

  /** The list or the error changed. */
  readonly changed = new Signal<this, void>(this);

  get items(): readonly IConnectionSummary[] {
    return this._items;
  }

  get error(): string | null {
    return this._error;
  }

  /** Read the list again. */
  async refresh(): Promise<void> {
    try {
      this._items = await this._api.list();
      this._error = null;
    } catch (error) {
      this._error = messageOf(error);
    }
    this.changed.emit();
  }

  /** Create a connection; null when made, else what went wrong. */
  async create(
    name: string,
    type: string,
    detailsText: string
  ): Promise<string | null> {
    if (!name.trim() || !type.trim()) {
      return 'A connection needs a name and a type.';
    }
    const details = parseDetails(detailsText);
    if (typeof details === 'string') {
      return details;
    }
    try {
      await this._api.create(name.trim(), type.trim(), details);
    } catch (error) {
      return messageOf(error);
    }
    await this.refresh();
    return null;
  }

  private _api: IConnectionsApi;
  private _items: IConnectionSummary[] = [];
  private _error: string | null = null;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
