/**
 * Deleting orchestrations and tasks: the server's preview of what goes, a question built
 * from it, then the deletion and a word of what went. No JupyterLab here: the dialogs and
 * notifications come in through `IDeleteUi` (deletecommands.ts gives JupyterLab's).
 */

import { messageOf } from './errors';
import { taskName } from './format';
import type { IDeleteResult, ITaskApi, ITaskDeleteResult } from './panelapi';
import type { IOrchestration, ITask } from './types';

/** "1 run", "14 runs". */
function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** "2 tasks and 14 runs": what an orchestration's deletion takes with it. */
export function deletionCounts(result: IDeleteResult): string {
  return `${plural(result.tasks.length, 'task')} and ${plural(result.task_runs, 'run')}`;
}

/** How a deletion asks, tells what it did, and says what went wrong. */
export interface IDeleteUi {
  /** Whether the user said yes to `question` (a warning "Delete" button). */
  confirm(title: string, question: string): Promise<boolean>;
  done(message: string): void;
  failed(title: string, message: string): Promise<void>;
}

/** One deletion: its call (a preview without `confirm`) and the words around it. */
export interface IDeletion<R extends { tasks: string[] }> {
  /** The dialog's title: "Delete task". */
  title: string;
  call(confirm: boolean): Promise<R>;
  /** The question, from the preview. */
  question(preview: R): string;
  /** What went, from the answer. */
  report(done: R): string;
}

/**
 * Ask the server what would go, ask the user with that, and delete. Resolves to the
 * server's answer once deleted, or null when the user said no or a call failed (said
 * through `ui`).
 */
export async function deleteAfterPreview<R extends { tasks: string[] }>(
  deletion: IDeletion<R>,
  ui: IDeleteUi
): Promise<R | null> {
  /** The call's answer, or null once its error is said. */
  const attempt = async (confirm: boolean): Promise<R | null> => {
    try {
      return await deletion.call(confirm);
    } catch (error) {
      await ui.failed('Delete failed', messageOf(error));
      return null;
    }
  };
  const preview = await attempt(false);
  if (
    !preview ||
    !(await ui.confirm(deletion.title, deletion.question(preview)))
  ) {
    return null;
  }
  const done = await attempt(true);
  if (!done) {
    return null;
  }
  ui.done(deletion.report(done));
  return done;
}

/** An orchestration with its tasks, their runs, logs and outputs. */
export function orchestrationDeletion(
  orch: IOrchestration,
  api: ITaskApi
): IDeletion<IDeleteResult> {
  return {
    title: 'Delete orchestration',
    call: confirm => api.deleteOrchestrations([orch.id], confirm),
    question: preview =>
      `Delete “${orch.name}” with its ${deletionCounts(preview)}? ` +
      'Their logs and outputs are deleted too; runs still going are stopped. This cannot be undone.',
    report: done => `Deleted “${orch.name}” with its ${deletionCounts(done)}.`
  };
}

/** A task with its runs, logs and outputs; a run going is stopped first. */
export function taskDeletion(
  task: Pick<ITask, 'id' | 'name'>,
  api: ITaskApi
): IDeletion<ITaskDeleteResult> {
  const name = taskName(task);
  const runs = (result: ITaskDeleteResult): string =>
    result.task_runs === 0
      ? 'no run'
      : `its ${plural(result.task_runs, 'run')}`;
  return {
    title: 'Delete task',
    call: confirm => api.deleteTasks([task.id], confirm),
    question: preview =>
      preview.task_runs === 0
        ? `Delete “${name}”? It has no run. This cannot be undone.`
        : `Delete “${name}” with ${runs(preview)}? Its logs and outputs go too` +
          (preview.running.length > 0
            ? '; its run going is stopped first.'
            : '.') +
          ' This cannot be undone.',
    report: done =>
      `Deleted “${name}”` +
      (done.task_runs === 0 ? '.' : ` with ${runs(done)}.`) +
      (done.running.length > 0 ? ' Its run going was stopped.' : '')
  };
}
