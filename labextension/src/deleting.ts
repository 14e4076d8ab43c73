import {
  Dialog,
  Notification,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';

import { messageOf } from './errors';
import { OrchModel } from './model';
import { IDeleteResult, ITaskApi } from './panelapi';
import { IOrchestration } from './types';

/** "2 tasks and 14 runs": what a deletion takes with it. */
export function deletionCounts(result: IDeleteResult): string {
  const plural = (n: number, word: string): string =>
    `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(result.tasks.length, 'task')} and ${plural(result.task_runs, 'run')}`;
}

/**
 * Delete an orchestration after a dialog that says what goes with it (the server's
 * preview: its tasks and their runs, with logs and files); a task still running is
 * stopped. Resolves to whether it was deleted.
 */
export async function deleteOrchestration(
  orch: IOrchestration,
  model: OrchModel,
  api: ITaskApi
): Promise<boolean> {
  let preview: IDeleteResult;
  try {
    preview = await api.deleteOrchestrations([orch.id], false);
  } catch (error) {
    await showErrorMessage('Delete failed', messageOf(error));
    return false;
  }
  const answer = await showDialog({
    title: 'Delete orchestration',
    body:
      `Delete “${orch.name}” with its ${deletionCounts(preview)}? ` +
      'Their logs and outputs are deleted too; runs still going are stopped. This cannot be undone.',
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
  });
  if (!answer.button.accept) {
    return false;
  }
  let done: IDeleteResult;
  try {
    done = await api.deleteOrchestrations([orch.id], true);
  } catch (error) {
    await showErrorMessage('Delete failed', messageOf(error));
    return false;
  }
  if (model.tasks.orchFilter === orch.id) {
    model.tasks.setOrchFilter(null);
  }
  Notification.success(
    `Deleted “${orch.name}” with its ${deletionCounts(done)}.`,
    { autoClose: 5000 }
  );
  await model.refresh().catch(() => undefined);
  return true;
}
