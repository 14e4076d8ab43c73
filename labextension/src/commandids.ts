/** The extension's command ids. */
export namespace CommandIDs {
  export const open = 'jupyter-orch:open';
  export const refresh = 'jupyter-orch:refresh';
  export const runNow = 'jupyter-orch:run-now';
  export const pauseResume = 'jupyter-orch:pause-resume';
  export const kill = 'jupyter-orch:kill';
  export const createFromPath = 'jupyter-orch:create-from-path';
  export const newTask = 'jupyter-orch:new-task';
  export const openRun = 'jupyter-orch:open-run';
  export const openOutput = 'jupyter-orch:open-output';
  export const openTask = 'jupyter-orch:open-task';
  export const deleteOrch = 'jupyter-orch:delete-orchestration';
  export const deleteTask = 'jupyter-orch:delete-task';

  /** The commands whose state follows the selected task. */
  export const taskActions = [openTask, runNow, pauseResume, kill, deleteTask];

  /** The commands whose state follows the selected run and its orchestration. */
  export const runActions = [openOutput];
}
