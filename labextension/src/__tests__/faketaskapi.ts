/** The calls beyond the sidebar's (`ITaskApi`), over a `FakeApi`'s tasks and runs. */
import {
  IDeleteResult,
  ITaskApi,
  ITaskDeleteResult,
  ITaskUpdate,
  TaskRecord
} from '../panelapi';
import { ITask, JSONObject } from '../types';
import { FakeApi, notFound } from './fakeapi';

/** The calls beyond the sidebar's, over the fake server's tasks and runs. */
export class FakeTaskApi implements ITaskApi {
  constructor(private api: FakeApi) {}
  updates: ITaskUpdate[] = [];
  reruns: [string, JSONObject | undefined][] = [];
  /** The delete calls: `tasks <ids> <confirm>`, `orchestrations <ids> <confirm>`. */
  deletes: string[] = [];
  /** Runs going do not end when killed (the server answers 409). */
  stuck = false;

  async getTask(taskId: string): Promise<TaskRecord> {
    const task = this.api.tasks.find(t => t.id === taskId);
    if (!task) {
      throw notFound(`task ${taskId} not found`);
    }
    return { ...task, next_fires: [], schedule_description: null };
  }
  async updateTask(update: ITaskUpdate): Promise<TaskRecord> {
    this.updates.push(update);
    const task = this.api.tasks.find(t => t.id === update.id) as ITask;
    if (update.timeout !== undefined) {
      task.timeout = update.timeout;
    }
    return this.getTask(task.id);
  }
  async taskHistory(): Promise<never[]> {
    return [];
  }
  async rerun(runId: string, json?: JSONObject) {
    this.reruns.push([runId, json]);
    const task = this.api.tasks.find(t =>
      this.api.runs.get(t.id)?.some(r => r.run_id === runId)
    ) as ITask;
    const run = this.api.addRun(task, 'running');
    return { id: task.id, run_id: run.run_id };
  }
  async previewSchedule() {
    return { fires: [], description: '' };
  }
  async logsForRun(runId: string): Promise<string[]> {
    return this.api.logs.get(runId) ?? [];
  }
  /** Like the server: what goes with the orchestrations; deleted with `confirm`. */
  async deleteOrchestrations(
    ids: string[],
    confirm: boolean
  ): Promise<IDeleteResult> {
    this.deletes.push(`orchestrations ${ids.join(' ')} ${confirm}`);
    for (const id of ids) {
      if (!this.api.orchestrations.some(o => o.id === id)) {
        throw notFound(`orchestration ${id} not found`);
      }
    }
    const tasks = this.api.tasks.filter(t => ids.includes(t.orch_id));
    const answer = await this.deleteTasks(
      tasks.map(t => t.id),
      confirm
    );
    if (confirm) {
      this.api.orchestrations = this.api.orchestrations.filter(
        o => !ids.includes(o.id)
      );
    }
    return {
      orchestrations: ids,
      tasks: answer.tasks,
      task_runs: answer.task_runs,
      deleted: confirm
    };
  }

  /**
   * Like the server: 404 for an unknown task; the runs and those going; with `confirm`,
   * the runs going stop (or not: `stuck`, a 409) and the tasks, runs and logs go.
   */
  async deleteTasks(
    ids: string[],
    confirm: boolean
  ): Promise<ITaskDeleteResult> {
    this.deletes.push(`tasks ${ids.join(' ')} ${confirm}`);
    const tasks = ids.map(id => {
      const task = this.api.tasks.find(t => t.id === id);
      if (!task) {
        throw notFound(`task ${id} not found`);
      }
      return task;
    });
    const runsOf = (id: string) => this.api.runs.get(id) ?? [];
    const running = tasks
      .filter(t => runsOf(t.id).some(r => r.status === 'running'))
      .map(t => t.id);
    const answer = {
      tasks: ids,
      task_runs: tasks.reduce((n, t) => n + runsOf(t.id).length, 0),
      running,
      deleted: confirm
    };
    if (!confirm) {
      return answer;
    }
    if (running.length > 0 && this.stuck) {
      throw Object.assign(
        new Error('the runs going did not end in time; nothing was deleted'),
        { status: 409 }
      );
    }
    for (const task of tasks) {
      for (const run of runsOf(task.id)) {
        this.api.live.delete(run.run_id);
        this.api.logs.delete(run.run_id);
      }
      this.api.runs.delete(task.id);
    }
    this.api.tasks = this.api.tasks.filter(t => !ids.includes(t.id));
    return answer;
  }
}
