import type { INotebookContent } from '@jupyterlab/nbformat';

import { requestAPI, streamJSONLines } from './handler';
import {
  FollowEvent,
  IActivity,
  IIdAnswer,
  IOrchApi,
  IOrchestration,
  ITask,
  ITaskQuery,
  IRunNowAnswer,
  ITaskRun,
  IWorkspace,
  IWorkspaceList,
  NewTask
} from './types';

/** POST a JSON body to an endpoint. */
function post<T>(endPoint: string, body: object): Promise<T> {
  return requestAPI<T>(endPoint, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

/** The endpoint that creates each kind of task. */
const CREATE_ENDPOINT: Record<NewTask['kind'], string> = {
  once: 'task/run_once',
  scheduled: 'task/run_scheduled',
  continuous: 'task/run_continuously'
};

/** The orchestration API over HTTP, for the model. */
export class OrchClient implements IOrchApi {
  async listWorkspaces(): Promise<IWorkspace[]> {
    const answer = await post<IWorkspaceList>('workspaces/list', {});
    return answer.workspaces;
  }

  listOrchestrations(workspaceId: number): Promise<IOrchestration[]> {
    return post('orchestration/list', { workspace_id: workspaceId });
  }

  listTasks(query: ITaskQuery): Promise<ITask[]> {
    const body: Record<string, string | number> = {
      run_limit: query.runLimit,
      limit: query.limit
    };
    if (query.after !== undefined) {
      body.after = query.after;
    }
    if (query.orchId !== undefined) {
      body.orch_id = query.orchId;
    }
    return post('task/list', body);
  }

  activity(since: string | null): Promise<IActivity> {
    return post('task/activity', since === null ? {} : { since });
  }

  getTask(taskId: string, runLimit: number): Promise<ITask> {
    return post('task/get_by_id', { id: taskId, run_limit: runLimit });
  }

  listRuns(taskId: string, limit: number): Promise<ITaskRun[]> {
    return post('task/list_task_runs', { task_id: taskId, limit });
  }

  kill(taskId: string): Promise<ITask> {
    return post('task/kill', { id: taskId });
  }

  pause(taskId: string, pause: boolean): Promise<ITask> {
    return post('task/pause', { id: taskId, pause });
  }

  runNow(taskId: string): Promise<IRunNowAnswer> {
    return post('task/run_now', { id: taskId });
  }

  async createFromPath(path: string, name?: string): Promise<string> {
    const body = name ? { path, name } : { path };
    const answer = await post<IIdAnswer>(
      'orchestration/create_from_path',
      body
    );
    return answer.id;
  }

  async createTask(task: NewTask): Promise<string> {
    const answer = await post<IIdAnswer>(
      CREATE_ENDPOINT[task.kind],
      task.request
    );
    return answer.id;
  }

  getRunOutput(runId: string): Promise<INotebookContent> {
    const query = new URLSearchParams({ id: runId });
    return requestAPI<INotebookContent>(
      `task/get_run_output?${query.toString()}`,
      { method: 'GET' }
    );
  }

  followLogs(
    runId: string,
    from: number,
    onEvent: (event: FollowEvent) => void,
    signal: AbortSignal
  ): Promise<void> {
    const query = new URLSearchParams({ id: runId, from: String(from) });
    return streamJSONLines<FollowEvent>(
      `task/follow_logs?${query.toString()}`,
      onEvent,
      signal
    );
  }
}
