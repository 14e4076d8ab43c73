import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { IStatusBar } from '@jupyterlab/statusbar';

import { OrchClient } from './client';
import { CommandIDs } from './commandids';
import { addCommands } from './commands';
import { ConnectionsPanel } from './connectionspanel';
import { OrchModel } from './model';
import { FailureNotifier } from './notify';
import { OutputDrive } from './outputdrive';
import { OutputNotebookExtension, OutputOpener } from './outputview';
import { openLinks } from './mime';
import { TaskApiClient } from './panelapi';
import { OrchSidebar } from './sidebar';
import { TaskOpener } from './taskopener';
import { RunningStatus } from './statusitem';

/**
 * The Orchestrations sidebar, the main-area views of tasks (`jupyter-orch:open-task`), the file browser's "Create orchestration", the status bar's
 * running count, the notifications of failed runs, and the read-only drive (`OrchOutputs`)
 * whose notebooks are the runs' executed copies ("Open output").
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter_orch:plugin',
  description: 'Orchestrations, tasks, runs and live logs of jupyter_orch.',
  autoStart: true,
  optional: [
    IFileBrowserFactory,
    IStatusBar,
    ICommandPalette,
    ILayoutRestorer,
    IDocumentManager
  ],
  activate: (
    app: JupyterFrontEnd,
    browserFactory: IFileBrowserFactory | null,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    docManager: IDocumentManager | null
  ): void => {
    const api = new OrchClient();
    // while the sidebar is closed, only the status bar and notifications need the list
    const model: OrchModel = new OrchModel({
      api,
      isIdle: (): boolean => !sidebar.isVisible
    });
    const sidebar: OrchSidebar = new OrchSidebar({
      model,
      commands: app.commands
    });
    const contents = app.serviceManager.contents;
    const drive = new OutputDrive({
      api,
      serverSettings: contents.serverSettings
    });
    contents.addDrive(drive);
    app.docRegistry.addWidgetExtension(
      'Notebook',
      new OutputNotebookExtension()
    );
    const opener = docManager ? new OutputOpener({ drive, docManager }) : null;
    sidebar.addSection(new ConnectionsPanel());
    const taskApi = new TaskApiClient();
    const taskOpener = new TaskOpener({ app, model, taskApi, restorer });
    openLinks.open = taskId => taskOpener.open(taskId);
    addCommands({
      app,
      model,
      sidebar,
      browserFactory,
      palette,
      opener,
      taskOpener,
      taskApi
    });
    app.shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, 'jupyter-orch-sidebar');
    if (statusBar) {
      const item = new RunningStatus(model.activity, () => {
        void app.commands.execute(CommandIDs.open);
      });
      statusBar.registerStatusItem('jupyter_orch:running', {
        item,
        align: 'left',
        rank: 5
      });
    }
    new FailureNotifier(model.activity, app.commands);
    model.start();
  }
};

export default plugin;
