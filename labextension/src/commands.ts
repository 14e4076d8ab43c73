import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { Contents } from '@jupyterlab/services';
import {
  addIcon,
  launchIcon,
  notebookIcon,
  pauseIcon,
  refreshIcon,
  runIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import { DisposableSet, IDisposable } from '@lumino/disposable';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { CommandIDs } from './commandids';
import { askForTask } from './createdialog';
import { messageOf } from './errors';
import { taskName } from './format';
import { orchIcon } from './icons';
import { IRunOutput, OrchModel } from './model';
import { OutputOpener } from './outputview';
import { addDeleteCommands } from './deletecommands';
import { ITaskApi } from './panelapi';
import { OrchSidebar } from './sidebar';
import { TaskOpener } from './taskopener';
import { IOrchestration, ITask } from './types';

/** What the commands need. */
export interface ICommandsOptions {
  app: JupyterFrontEnd;
  model: OrchModel;
  sidebar: OrchSidebar;
  browserFactory: IFileBrowserFactory | null;
  palette: ICommandPalette | null;
  /** Opens runs' executed notebooks (null without a document manager). */
  opener: OutputOpener | null;
  /** Opens tasks' views in the main area. */
  taskOpener: TaskOpener;
  /** The calls beyond the sidebar's (delete orchestrations and tasks). */
  taskApi: ITaskApi;
}

/** Statuses in which a task can be killed, paused or run no more. */
const ENDED = new Set(['killed', 'pending_kill']);

/**
 * Register the commands (sidebar actions, "Create orchestration" in the file browser,
 * opening a run's log or its executed notebook), their menu and palette entries; dispose
 * to remove them all.
 */
export function addCommands(options: ICommandsOptions): IDisposable {
  const { app, model, sidebar, browserFactory, palette, opener } = options;
  const { taskOpener, taskApi } = options;
  const { commands } = app;
  const set = new DisposableSet();
  const menuRows = new MenuRows();
  set.add(menuRows);

  /** The task a command acts on: `taskId` if given, else the selected one. */
  const target = (args: ReadonlyPartialJSONObject): ITask | null => {
    const id = typeof args.taskId === 'string' ? args.taskId : null;
    return id ? model.task(id) : model.selectedTask;
  };
  const live = (task: ITask | null): task is ITask =>
    task !== null && !task.killed && !ENDED.has(task.status);
  const paused = (task: ITask | null): boolean =>
    task !== null &&
    (task.status === 'paused' || task.status === 'pending_pause');
  const open = (): void => app.shell.activateById(sidebar.id);

  set.add(
    commands.addCommand(CommandIDs.open, {
      label: 'Show Orchestrations',
      icon: orchIcon,
      execute: open
    })
  );

  set.add(
    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Orchestrations',
      caption: 'Refresh orchestrations, tasks and runs',
      icon: refreshIcon,
      execute: async () => {
        try {
          await model.refresh();
        } catch (error) {
          await showErrorMessage('Refresh failed', messageOf(error));
        }
      }
    })
  );

  set.add(
    commands.addCommand(CommandIDs.runNow, {
      label: 'Run now',
      caption:
        'Start one more run of the selected scheduled task now, beside its schedule',
      icon: runIcon,
      // a run-once task has had its run (its runs are run again from their row), and a
      // continuous task is kept running: only a scheduled task takes an extra run
      isEnabled: args => {
        const task = target(args);
        return live(task) && task.run_type === 'CronJob';
      },
      execute: async args => {
        const task = target(args);
        if (!task) {
          return;
        }
        try {
          await model.runNow(task.id);
        } catch (error) {
          await showErrorMessage('Run now failed', messageOf(error));
        }
      }
    })
  );

  set.add(
    commands.addCommand(CommandIDs.pauseResume, {
      label: args => (paused(target(args)) ? 'Resume' : 'Pause'),
      caption: args =>
        paused(target(args))
          ? 'Resume the selected task'
          : 'Pause the selected task: no new runs, running ones finish',
      icon: args => (paused(target(args)) ? runIcon : pauseIcon),
      isEnabled: args => {
        const task = target(args);
        return live(task) && task.run_type !== 'Oneshot';
      },
      execute: async args => {
        const task = target(args);
        if (!task) {
          return;
        }
        const pause = !paused(task);
        try {
          await model.setPaused(task.id, pause);
        } catch (error) {
          const title = pause ? 'Pause failed' : 'Resume failed';
          await showErrorMessage(title, messageOf(error));
        }
      }
    })
  );

  set.add(
    commands.addCommand(CommandIDs.kill, {
      label: 'Kill',
      caption: 'Kill the selected task (its logs are kept)',
      icon: stopIcon,
      isEnabled: args => live(target(args)),
      execute: async args => {
        const task = target(args);
        if (!task) {
          return;
        }
        const answer = await showDialog({
          title: 'Kill task',
          body: `Kill “${taskName(task)}”? No new run starts and the runs still going are stopped. Their logs are kept.`,
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Kill' })]
        });
        if (!answer.button.accept) {
          return;
        }
        try {
          await model.kill(task.id);
        } catch (error) {
          await showErrorMessage('Kill failed', messageOf(error));
        }
      }
    })
  );

  /** The task of `taskId`, of the row under the context menu, or the selected one. */
  const taskIdOf = (args: ReadonlyPartialJSONObject): string | null => {
    if (typeof args.taskId === 'string') {
      return args.taskId;
    }
    return menuRows.key('jp-OrchTaskList-row') ?? model.selectedTaskId;
  };

  set.add(
    commands.addCommand(CommandIDs.openTask, {
      label: 'Open task',
      caption:
        "Open the task's view in the main area: runs chart, log, edit, run again",
      icon: launchIcon,
      isEnabled: args => taskIdOf(args) !== null,
      execute: args => {
        const taskId = taskIdOf(args);
        const runId = typeof args.runId === 'string' ? args.runId : undefined;
        if (taskId) {
          taskOpener.open(taskId, runId);
        }
      }
    })
  );

  /** The file browser's selected item, if it can become an orchestration. */
  const packable = (): Contents.IModel | null => {
    const item = browserFactory?.tracker.currentWidget?.selectedItems().next();
    if (!item || item.done) {
      return null;
    }
    const model = item.value;
    const ok =
      model.type === 'directory' ||
      model.type === 'notebook' ||
      (model.type === 'file' && model.name.endsWith('.py'));
    return ok ? model : null;
  };

  set.add(
    commands.addCommand(CommandIDs.createFromPath, {
      label: 'Create orchestration',
      caption:
        'Package this folder, .py file or notebook as an orchestration and run it',
      icon: orchIcon,
      isVisible: () => packable() !== null,
      execute: async () => {
        const item = packable();
        if (!item) {
          return;
        }
        let orchId: string;
        try {
          orchId = await model.createFromPath(item.path);
        } catch (error) {
          await showErrorMessage(
            'Create orchestration failed',
            messageOf(error)
          );
          return;
        }
        open();
        const orch = model.orchestrations.get(orchId);
        await askForTask(
          {
            id: orchId,
            name: orch?.name ?? item.name,
            workspace_id: orch?.workspace_id ?? 1,
            entrypoint: orch?.entrypoint,
            source: item.path
          },
          model
        );
      }
    })
  );

  /** The orchestration of `orchId`, of the row under the context menu, or the filter. */
  const orchestrationOf = (
    args: ReadonlyPartialJSONObject
  ): IOrchestration | null => {
    let id = typeof args.orchId === 'string' ? args.orchId : null;
    if (!id) {
      id = menuRows.key('jp-OrchOrchList-row') ?? model.tasks.orchFilter;
    }
    return id ? model.orchestrations.get(id) : null;
  };

  set.add(
    addDeleteCommands({
      commands,
      model,
      taskApi,
      taskOpener,
      orchestrationOf,
      taskIdOf
    })
  );

  set.add(
    commands.addCommand(CommandIDs.newTask, {
      label: 'New task…',
      caption: 'Run this orchestration once, on a schedule or continuously',
      icon: addIcon,
      isEnabled: args => orchestrationOf(args) !== null,
      execute: async args => {
        const orch = orchestrationOf(args);
        if (orch) {
          open();
          await askForTask(orch, model);
        }
      }
    })
  );

  set.add(
    commands.addCommand(CommandIDs.openRun, {
      label: 'Open run log',
      execute: async args => {
        const taskId = typeof args.taskId === 'string' ? args.taskId : null;
        const runId = typeof args.runId === 'string' ? args.runId : null;
        if (!taskId) {
          return;
        }
        open();
        const task = model.task(taskId);
        const filter = model.tasks.orchFilter;
        if (task && filter && filter !== task.orch_id) {
          model.tasks.setOrchFilter(null);
        }
        await model.selectTask(taskId);
        if (runId) {
          model.selectRun(runId);
        }
      }
    })
  );

  /**
   * The run "Open output" is for: `runId` (of `taskId`, else of the selected task), the
   * run row under the context menu, or the selected run; null unless it has a notebook.
   */
  const outputOf = (args: ReadonlyPartialJSONObject): IRunOutput | null => {
    let runId = typeof args.runId === 'string' ? args.runId : null;
    const taskId = typeof args.taskId === 'string' ? args.taskId : null;
    if (!runId) {
      runId = menuRows.key('jp-OrchRunList-row');
    }
    return runId
      ? model.runOutput(taskId ?? model.selectedTaskId, runId)
      : model.runOutput();
  };

  set.add(
    commands.addCommand(CommandIDs.openOutput, {
      label: 'Open output',
      caption:
        "Open the run's executed notebook, read-only (open again: its newest copy)",
      icon: notebookIcon,
      isEnabled: args => opener !== null && outputOf(args) !== null,
      isVisible: args => opener !== null && outputOf(args) !== null,
      execute: async args => {
        const output = outputOf(args);
        if (!output || !opener) {
          return;
        }
        try {
          await opener.open(output);
        } catch (error) {
          await showErrorMessage('Open output failed', messageOf(error));
        }
      }
    })
  );

  for (const selector of [
    '.jp-DirListing-item[data-isdir="true"]',
    '.jp-DirListing-item[data-file-type="python"]',
    '.jp-DirListing-item[data-file-type="notebook"]'
  ]) {
    set.add(
      app.contextMenu.addItem({
        command: CommandIDs.createFromPath,
        selector,
        rank: 60
      })
    );
  }
  set.add(
    app.contextMenu.addItem({
      command: CommandIDs.newTask,
      selector: '.jp-OrchOrchList-row',
      rank: 1
    })
  );
  set.add(
    app.contextMenu.addItem({
      command: CommandIDs.deleteOrch,
      selector: '.jp-OrchOrchList-row',
      rank: 2
    })
  );
  set.add(
    app.contextMenu.addItem({
      command: CommandIDs.openTask,
      selector: '.jp-OrchTaskList-row',
      rank: 1
    })
  );
  set.add(
    app.contextMenu.addItem({
      command: CommandIDs.deleteTask,
      selector: '.jp-OrchTaskList-row',
      rank: 2
    })
  );
  set.add(
    app.contextMenu.addItem({
      command: CommandIDs.openOutput,
      selector: '.jp-OrchRunList[data-output="notebook"] .jp-OrchRunList-row',
      rank: 1
    })
  );

  if (palette) {
    const category = 'Orchestrations';
    for (const command of [
      CommandIDs.open,
      CommandIDs.refresh,
      CommandIDs.openOutput,
      CommandIDs.openTask
    ]) {
      set.add(palette.addItem({ command, category }));
    }
  }
  return set;
}

/**
 * The rows under the newest context menu, read when it opens: the lists build their rows
 * again on every poll, so by the time a menu item runs, the row clicked may have left the
 * page (and `contextMenuHitTest` no longer finds it from the event's target).
 */
class MenuRows implements IDisposable {
  constructor() {
    document.addEventListener('contextmenu', this._onMenu, true);
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The key of the row of this class the menu was opened on, if any. */
  key(className: string): string | null {
    return this._keys.get(className) ?? null;
  }

  dispose(): void {
    this._disposed = true;
    document.removeEventListener('contextmenu', this._onMenu, true);
  }

  private _onMenu = (event: MouseEvent): void => {
    this._keys.clear();
    for (const node of event.composedPath()) {
      if (node instanceof HTMLElement && node.dataset.key !== undefined) {
        for (const name of MENU_ROWS) {
          if (node.classList.contains(name)) {
            this._keys.set(name, node.dataset.key);
          }
        }
      }
    }
  };

  private _disposed = false;
  private _keys = new Map<string, string>();
}

/** The rows whose context menus act on their item. */
const MENU_ROWS = [
  'jp-OrchOrchList-row',
  'jp-OrchTaskList-row',
  'jp-OrchRunList-row'
];
