/**
 * The calls of the task view and the forms beyond the sidebar's (`IOrchApi`): change a
 * task, read its history, run a run again, preview a schedule, read or download a run's
 * whole log, delete orchestrations and tasks. Field for field as jupyter_orch/openapi.json
 * describes them.
 */

import { requestAPI } from './handler';
import { ConcurrencyPolicy, ITask, JSONObject } from './types';

/** A task as `task/get_by_id` answers it. */
export type TaskRecord = ITask;

/** The fields `task/update` changes; one left out keeps its value. */
export interface ITaskUpdate {
  id: string;
  name?: string | null;
  schedule?: string;
  timezone?: string;
  json?: JSONObject;
  timeout?: number | null;
  concurrency_policy?: ConcurrencyPolicy;
  keep_runs?: number | null;
  keep_days?: number | null;
}

/** One change of a task: each field as `[old, new]`. */
export interface ITaskChange {
  at: string;
  by: string;
  changes: { [field: string]: [unknown, unknown] };
}

/** Where a run run again is: its task (the same, or a new run-once task) and its run. */
export interface IRerunAnswer {
  id: string;
  run_id: string | null;
}

/** The next fire times of a schedule, and the schedule in words. */
export interface ISchedulePreview {
  fires: string[];
  description: string;
}

/** What `orchestration/delete_orchestrations` deleted, or would delete. */
export interface IDeleteResult {
  orchestrations: string[];
  tasks: string[];
  task_runs: number;
  deleted: boolean;
}

/** What `task/delete` deleted, or would delete. */
export interface ITaskDeleteResult {
  tasks: string[];
  task_runs: number;
  /** The tasks with a run going (stopped first when deleting). */
  running: string[];
  deleted: boolean;
}

/** The calls beyond the sidebar's. */
export interface ITaskApi {
  getTask(taskId: string, runLimit: number): Promise<TaskRecord>;
  updateTask(update: ITaskUpdate): Promise<TaskRecord>;
  taskHistory(taskId: string): Promise<ITaskChange[]>;
  rerun(runId: string, json?: JSONObject): Promise<IRerunAnswer>;
  previewSchedule(
    schedule: string,
    timezone: string,
    count?: number
  ): Promise<ISchedulePreview>;
  /** A run's whole log, in the container runtime's line format. */
  logsForRun(runId: string): Promise<string[]>;
  /** Without `confirm`, only what would be deleted. */
  deleteOrchestrations(ids: string[], confirm: boolean): Promise<IDeleteResult>;
  /** Without `confirm`, only what would be deleted. */
  deleteTasks(ids: string[], confirm: boolean): Promise<ITaskDeleteResult>;
}

/** POST a JSON body to an endpoint. */
function post<T>(endPoint: string, body: object): Promise<T> {
  return requestAPI<T>(endPoint, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

/** The calls over HTTP. */
export class TaskApiClient implements ITaskApi {
  getTask(taskId: string, runLimit: number): Promise<TaskRecord> {
    return post('task/get_by_id', { id: taskId, run_limit: runLimit });
  }

  updateTask(update: ITaskUpdate): Promise<TaskRecord> {
    return post('task/update', update);
  }

  async taskHistory(taskId: string): Promise<ITaskChange[]> {
    const answer = await post<{ changes: ITaskChange[] }>('task/history', {
      id: taskId
    });
    return answer.changes;
  }

  rerun(runId: string, json?: JSONObject): Promise<IRerunAnswer> {
    return post(
      'task/rerun',
      json ? { run_id: runId, json } : { run_id: runId }
    );
  }

  previewSchedule(
    schedule: string,
    timezone: string,
    count = 3
  ): Promise<ISchedulePreview> {
    return post('schedule/preview', { schedule, timezone, count });
  }

  async logsForRun(runId: string): Promise<string[]> {
    const answer = await post<{ logs: string[] }>('task/get_logs_for_run', {
      id: runId
    });
    return answer.logs;
  }

  deleteOrchestrations(
    ids: string[],
    confirm: boolean
  ): Promise<IDeleteResult> {
    return post('orchestration/delete_orchestrations', {
      orchestrations: ids,
      confirm_delete: confirm
    });
  }

  deleteTasks(ids: string[], confirm: boolean): Promise<ITaskDeleteResult> {
    return post('task/delete', { tasks: ids, confirm_delete: confirm });
  }
}
