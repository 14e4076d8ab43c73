import {
  Dialog,
  Notification,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { deleteIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { DisposableSet, IDisposable } from '@lumino/disposable';

import { CommandIDs } from './commandids';
import {
  deleteAfterPreview,
  IDeleteUi,
  orchestrationDeletion,
  taskDeletion
} from './deleting';
import { OrchModel } from './model';
import { ITaskApi } from './panelapi';
import { TaskOpener } from './taskopener';
import { IOrchestration } from './types';

/** The deletions' dialogs and notifications, JupyterLab's. */
export const labDeleteUi: IDeleteUi = {
  async confirm(title, question) {
    const answer = await showDialog({
      title,
      body: question,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    return answer.button.accept;
  },
  done(message) {
    Notification.success(message, { autoClose: 5000 });
  },
  async failed(title, message) {
    await showErrorMessage(title, message);
  }
};

/** What the delete commands need. */
export interface IDeleteCommandsOptions {
  commands: CommandRegistry;
  model: OrchModel;
  taskApi: ITaskApi;
  taskOpener: TaskOpener;
  /** The orchestration a command acts on (its args, the row under the menu, the filter). */
  orchestrationOf: (args: ReadonlyPartialJSONObject) => IOrchestration | null;
  /** The task a command acts on (its args, the row under the menu, the selected one). */
  taskIdOf: (args: ReadonlyPartialJSONObject) => string | null;
}

/**
 * "Delete orchestration…" and "Delete task…": each asks with the server's preview,
 * deletes, says what went, closes the views of the tasks that went and refreshes the
 * sidebar. Dispose to remove them.
 */
export function addDeleteCommands(
  options: IDeleteCommandsOptions
): IDisposable {
  const { commands, model, taskApi, taskOpener } = options;
  const { orchestrationOf, taskIdOf } = options;
  const set = new DisposableSet();

  /** The sidebar and the views once tasks are gone. */
  const forget = async (taskIds: string[]): Promise<void> => {
    const gone = new Set(taskIds);
    const views = taskOpener.tracker.filter(p => gone.has(p.model.taskId));
    for (const view of views) {
      view.close();
    }
    if (model.selectedTaskId !== null && gone.has(model.selectedTaskId)) {
      await model.selectTask(null);
    }
    await model.refresh().catch(() => undefined);
  };

  set.add(
    commands.addCommand(CommandIDs.deleteOrch, {
      label: 'Delete orchestration…',
      caption: 'Delete this orchestration with its tasks, runs, logs and files',
      icon: deleteIcon,
      isEnabled: args => orchestrationOf(args) !== null,
      execute: async args => {
        const orch = orchestrationOf(args);
        if (!orch) {
          return;
        }
        const deletion = orchestrationDeletion(orch, taskApi);
        const done = await deleteAfterPreview(deletion, labDeleteUi);
        if (done) {
          if (model.tasks.orchFilter === orch.id) {
            model.tasks.setOrchFilter(null);
          }
          await forget(done.tasks);
        }
      }
    })
  );

  set.add(
    commands.addCommand(CommandIDs.deleteTask, {
      label: 'Delete task…',
      caption:
        'Delete this task with its runs, logs and outputs (a run going is stopped first)',
      icon: deleteIcon,
      isEnabled: args => taskIdOf(args) !== null,
      execute: async args => {
        const taskId = taskIdOf(args);
        if (!taskId) {
          return;
        }
        const view = taskOpener.tracker.find(p => p.model.taskId === taskId);
        const task = model.task(taskId) ??
          view?.model.task ?? {
            id: taskId,
            name: typeof args.name === 'string' ? args.name : null
          };
        const done = await deleteAfterPreview(
          taskDeletion(task, taskApi),
          labDeleteUi
        );
        if (done) {
          await forget(done.tasks);
        }
      }
    })
  );
  return set;
}
