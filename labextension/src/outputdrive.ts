import { URLExt } from '@jupyterlab/coreutils';
import type { INotebookContent } from '@jupyterlab/nbformat';
import type { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { API_PATH } from './handler';
import { IOrchApi } from './types';

/** The drive's name: its paths are `OrchOutputs:runs/<run id>/<name>.ipynb`. */
export const OUTPUT_DRIVE = 'OrchOutputs';

/** The folder of the drive that holds the runs' notebooks. */
const RUNS = 'runs';

/** `runs/<run id>.ipynb` or `runs/<run id>/<any name>.ipynb`. */
const RUN_PATH = /^runs\/([A-Za-z0-9_-]+)(?:\.ipynb|\/[^/]+\.ipynb)$/;

/** The MIME type JupyterLab gives notebooks. */
const NOTEBOOK_MIME = 'application/x-ipynb+json';

/** The path of a run's executed notebook, in the drive (`OrchOutputs:runs/…`). */
export function outputPath(runId: string, title: string): string {
  return `${OUTPUT_DRIVE}:${RUNS}/${runId}/${fileName(title)}`;
}

/** Whether a path (with its drive) is a run's output in the drive. */
export function isOutputPath(path: string): boolean {
  return path.startsWith(`${OUTPUT_DRIVE}:`);
}

/** The run id of a path of the drive (without the drive's name), or null. */
export function runIdOf(localPath: string): string | null {
  const match = RUN_PATH.exec(trimSlashes(localPath));
  return match ? match[1] : null;
}

/**
 * A read-only Contents drive of the runs' executed notebooks: `get` of
 * `runs/<run id>/<name>.ipynb` asks the server for that run's output
 * (`task/get_run_output`; while the run goes on, the copy so far) and answers a notebook
 * that is not writable; the name after the run id is only what the tab shows. Saving,
 * renaming, deleting, copying, creating and checkpoints are refused.
 */
export class OutputDrive implements Contents.IDrive {
  constructor(options: OutputDrive.IOptions) {
    this._api = options.api;
    this.serverSettings = options.serverSettings;
  }

  readonly name = OUTPUT_DRIVE;

  readonly serverSettings: ServerConnection.ISettings;

  /** Never emits: nothing changes the drive from JupyterLab. */
  get fileChanged(): ISignal<Contents.IDrive, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._fetched = null;
    Signal.clearData(this);
  }

  /**
   * Ask for a run's output now, and keep it for the next `get` of that run: the caller
   * learns of a missing output (the server's 404 and its message) before opening it, and
   * the output is fetched once.
   */
  async prefetch(runId: string): Promise<void> {
    this._fetched = null;
    const content = await this._api.getRunOutput(runId);
    this._fetched = { runId, content };
  }

  /** A run's executed notebook; the root and `runs` are empty folders. */
  async get(
    localPath: string,
    options?: Contents.IFetchOptions
  ): Promise<Contents.IModel> {
    const path = trimSlashes(localPath);
    if (path === '' || path === RUNS) {
      return folder(path);
    }
    const runId = runIdOf(path);
    if (runId === null) {
      throw notFound(path);
    }
    const withContent = options?.content !== false;
    const kept = this._fetched?.runId === runId ? this._fetched.content : null;
    if (withContent) {
      this._fetched = null;
    }
    const content = withMetadata(kept ?? (await this._api.getRunOutput(runId)));
    const now = new Date().toISOString();
    return {
      name: path.slice(path.lastIndexOf('/') + 1),
      path,
      type: 'notebook',
      writable: false,
      created: now,
      last_modified: now,
      mimetype: NOTEBOOK_MIME,
      content: withContent ? content : null,
      format: withContent ? 'json' : null
    };
  }

  /** The API address of the run's notebook (what "Download" saves). */
  async getDownloadUrl(localPath: string): Promise<string> {
    const runId = runIdOf(localPath);
    if (runId === null) {
      throw notFound(trimSlashes(localPath));
    }
    const query = new URLSearchParams({ id: runId });
    const url = URLExt.join(
      this.serverSettings.baseUrl,
      API_PATH,
      'task/get_run_output'
    );
    return `${url}?${query.toString()}`;
  }

  newUntitled(): Promise<Contents.IModel> {
    return refuse('create a file in');
  }

  delete(localPath: string): Promise<void> {
    return refuse(`delete ${localPath} from`);
  }

  rename(localPath: string): Promise<Contents.IModel> {
    return refuse(`rename ${localPath} in`);
  }

  save(localPath: string): Promise<Contents.IModel> {
    return refuse(`save ${localPath} to`);
  }

  copy(localPath: string): Promise<Contents.IModel> {
    return refuse(`copy ${localPath} in`);
  }

  createCheckpoint(localPath: string): Promise<Contents.ICheckpointModel> {
    return refuse(`checkpoint ${localPath} in`);
  }

  /** No checkpoints: an output is not edited. */
  async listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return [];
  }

  restoreCheckpoint(localPath: string): Promise<void> {
    return refuse(`restore a checkpoint of ${localPath} in`);
  }

  deleteCheckpoint(localPath: string): Promise<void> {
    return refuse(`delete a checkpoint of ${localPath} in`);
  }

  private _api: Pick<IOrchApi, 'getRunOutput'>;
  private _disposed = false;
  private _fetched: { runId: string; content: INotebookContent } | null = null;
  private _fileChanged = new Signal<Contents.IDrive, Contents.IChangedArgs>(
    this
  );
}

/** The drive's options. */
export namespace OutputDrive {
  export interface IOptions {
    /** Where run outputs come from (`task/get_run_output`). */
    api: Pick<IOrchApi, 'getRunOutput'>;
    /** The server settings of the contents manager the drive is added to. */
    serverSettings: ServerConnection.ISettings;
  }
}

/** A file name for a tab: the title without path separators, control characters or `:`. */
function fileName(title: string): string {
  const safe = title.replace(/[\u0000-\u001f/\\:]+/g, '-').trim();
  return `${safe || 'output'}.ipynb`;
}

/**
 * The notebook with the `language_info` and `kernelspec` JupyterLab adds to a notebook
 * without them once it is loaded, so that loading does not leave it changed ("unsaved").
 */
function withMetadata(content: INotebookContent): INotebookContent {
  const metadata = { ...content.metadata };
  metadata.language_info ??= { name: '' };
  metadata.kernelspec ??= { name: '', display_name: '' };
  return { ...content, metadata };
}

function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

/** An empty folder of the drive. */
function folder(path: string): Contents.IModel {
  return {
    name: path,
    path,
    type: 'directory',
    writable: false,
    created: '',
    last_modified: '',
    mimetype: '',
    content: [],
    format: 'json'
  };
}

/** The error of a path that is no run's output (a 404, as the server's would be). */
function notFound(path: string): Error {
  const message = `${OUTPUT_DRIVE}: no ${path || 'such file'}: a run's output is runs/<run id>.ipynb`;
  return Object.assign(new Error(message), { status: 404 });
}

/** Every change is refused: outputs are kept by the server, read-only. */
function refuse<T>(what: string): Promise<T> {
  return Promise.reject(
    new Error(
      `Cannot ${what} ${OUTPUT_DRIVE}: a run's output is read-only (File > Download keeps a copy)`
    )
  );
}
