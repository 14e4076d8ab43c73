import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { WidgetTracker } from '@jupyterlab/apputils';

import { CommandIDs } from './commandids';
import { OrchModel } from './model';
import { ITaskApi } from './panelapi';
import { TaskPanel } from './taskpanel';
import { TaskPanelModel } from './taskpanelmodel';

/**
 * Opens tasks' views in the main area, one per task (opening an open one shows it), and
 * brings them back with the layout after a reload. `jupyter-orch:open-task {taskId, runId?}`
 * is the command behind the sidebar, the notifications and the `%orch_open` links.
 */
export class TaskOpener {
  constructor(options: TaskOpener.IOptions) {
    this._app = options.app;
    this._model = options.model;
    this._taskApi = options.taskApi;
    this.tracker = new WidgetTracker<TaskPanel>({
      namespace: 'jupyter-orch-task'
    });
    options.restorer?.restore(this.tracker, {
      command: CommandIDs.openTask,
      args: panel => ({ taskId: panel.model.taskId }),
      name: panel => panel.model.taskId
    });
  }

  /** The open task views. */
  readonly tracker: WidgetTracker<TaskPanel>;

  /** Show a task's view (opening it if needed), with run `runId` selected if given. */
  open(taskId: string, runId?: string): TaskPanel {
    let panel = this.tracker.find(p => p.model.taskId === taskId);
    if (!panel) {
      // a tab behind another is polled slowly
      let view: TaskPanel | null = null;
      const model = new TaskPanelModel({
        taskId,
        api: this._model.api,
        taskApi: this._taskApi,
        isIdle: () => !view?.isVisible
      });
      panel = view = new TaskPanel({
        model,
        taskApi: this._taskApi,
        orchestration: id => this._model.orchestrations.get(id),
        openTask: id => void this.open(id),
        deleteTask: () =>
          void this._app.commands.execute(CommandIDs.deleteTask, {
            taskId,
            name: model.task?.name ?? null
          })
      });
      this._app.shell.add(panel, 'main', { mode: 'tab-after' });
      void this.tracker.add(panel);
      void model.refresh();
    }
    if (runId) {
      panel.model.selectRun(runId);
    }
    this._app.shell.activateById(panel.id);
    return panel;
  }

  private _app: JupyterFrontEnd;
  private _model: OrchModel;
  private _taskApi: ITaskApi;
}

/** The opener's options. */
export namespace TaskOpener {
  export interface IOptions {
    app: JupyterFrontEnd;
    model: OrchModel;
    taskApi: ITaskApi;
    restorer: ILayoutRestorer | null;
  }
}
