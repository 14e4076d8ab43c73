import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { h } from './dom';

/** The MIME type `%orch_open NAME` displays: `{"task_id": ..., "name"?: ..., "request"?: ...}`. */
export const OPEN_MIME = 'application/vnd.jupyter-orch.open+json';

/** Where the links send their task id (set by the extension's plugin). */
export const openLinks: { open: ((taskId: string) => void) | null } = {
  open: null
};

/** Links already opened (task id and request), so a re-render does not reopen them. */
const opened = new Set<string>();

/**
 * An `%orch_open` output: a link to the task's view, opened at once the first time the
 * output is rendered from a trusted source (the cell just ran) in this page.
 */
export class OpenTaskRenderer extends Widget implements IRenderMime.IRenderer {
  constructor() {
    super();
    this.addClass('jp-OrchOpenLink');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = model.data[OPEN_MIME] as {
      task_id?: unknown;
      name?: unknown;
      request?: unknown;
    };
    const taskId = typeof data?.task_id === 'string' ? data.task_id : null;
    this.node.replaceChildren();
    if (!taskId) {
      this.node.textContent = 'No task to open.';
      return;
    }
    const name =
      typeof data.name === 'string' && data.name
        ? data.name
        : taskId.slice(0, 8);
    const link = h('a', 'jp-OrchOpenLink-link', `Open task ${name}`);
    link.href = '#';
    link.title = 'Show this task in the main area';
    link.addEventListener('click', event => {
      event.preventDefault();
      openLinks.open?.(taskId);
    });
    this.node.appendChild(link);
    // a link made for one press (the widget panel's "Open in JupyterLab") carries its own
    // `request`: each press opens the view again
    const request = typeof data.request === 'string' ? data.request : '';
    const key = `${taskId} ${request}`;
    if (model.trusted && !opened.has(key) && openLinks.open) {
      opened.add(key);
      openLinks.open(taskId);
    }
  }
}

/** The renderer factory. */
export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [OPEN_MIME],
  defaultRank: 50,
  createRenderer: () => new OpenTaskRenderer()
};

const extension: IRenderMime.IExtension = {
  id: 'jupyter_orch:open-task-link',
  description: 'Links to tasks displayed by %orch_open.',
  rendererFactory,
  rank: 50,
  dataType: 'json'
};

export default extension;
