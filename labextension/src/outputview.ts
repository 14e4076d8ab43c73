import { ISessionContext, Notification } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry, IDocumentWidget } from '@jupyterlab/docregistry';
import { refreshIcon, ToolbarButton } from '@jupyterlab/ui-components';

import { messageOf } from './errors';
import { IRunOutput } from './model';
import { isOutputPath, OutputDrive, outputPath } from './outputdrive';

/** The widget factory that shows the outputs: JupyterLab's notebook. */
const FACTORY = 'Notebook';

/** How long the notification of a missing output stays (ms). */
const AUTO_CLOSE = 10000;

/** An output notebook starts no kernel and connects to none: it is only read. */
const NO_KERNEL: Partial<ISessionContext.IKernelPreference> = {
  shouldStart: false,
  canStart: false,
  shouldReuse: false,
  autoStartDefault: false
};

/**
 * Opens runs' executed notebooks from the drive in the main area, read-only, as
 * JupyterLab's notebook shows any notebook.
 */
export class OutputOpener {
  constructor(options: OutputOpener.IOptions) {
    this._drive = options.drive;
    this._docManager = options.docManager;
  }

  /**
   * Open a run's executed notebook; if it is open already, load its newest copy (the run
   * may still be going) and show it. A missing output (the server's 404) is told in a
   * notification with the server's message, and nothing opens.
   */
  async open(output: IRunOutput): Promise<void> {
    try {
      await this._drive.prefetch(output.runId);
    } catch (error) {
      Notification.error(`${output.title}: ${messageOf(error)}`, {
        autoClose: AUTO_CLOSE
      });
      return;
    }
    const docManager = this._docManager;
    const path = outputPath(output.runId, output.title);
    const open = docManager.findWidget(path, FACTORY);
    if (open) {
      await docManager.contextForWidget(open)?.revert();
    }
    docManager.openOrReveal(path, FACTORY, undefined, undefined, NO_KERNEL);
  }

  private _drive: OutputDrive;
  private _docManager: IDocumentManager;
}

/** The opener's options. */
export namespace OutputOpener {
  export interface IOptions {
    drive: OutputDrive;
    docManager: IDocumentManager;
  }
}

/**
 * What every notebook of the drive gets, however it opens (also when JupyterLab restores
 * it after a reload): no kernel, and a Reload button that loads the newest copy.
 */
export class OutputNotebookExtension implements DocumentRegistry.IWidgetExtension<
  IDocumentWidget,
  DocumentRegistry.IModel
> {
  createNew(
    widget: IDocumentWidget,
    context: DocumentRegistry.IContext<DocumentRegistry.IModel>
  ): void {
    if (!isOutputPath(context.path)) {
      return;
    }
    const session = context.sessionContext;
    session.kernelPreference = { ...session.kernelPreference, ...NO_KERNEL };
    widget.addClass('jp-OrchOutput');
    const reload = new ToolbarButton({
      icon: refreshIcon,
      label: 'Reload',
      tooltip: "Load the newest copy of this run's output",
      onClick: () => {
        // a failure is shown by the document's own error dialog
        context.revert().catch(() => undefined);
      }
    });
    widget.toolbar.insertItem(0, 'jupyter-orch-reload', reload);
  }
}
