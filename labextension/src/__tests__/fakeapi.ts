import type { INotebookContent } from '@jupyterlab/nbformat';

import {
  FollowEvent,
  IActivity,
  IFailedTaskRun,
  IOrchApi,
  IOrchestration,
  IRunNowAnswer,
  ITask,
  ITaskQuery,
  ITaskRun,
  IWorkspace,
  NewTask,
  RunStatus
} from '../types';

let counter = 0;

/** A fresh id shaped like the server's. */
export function newId(): string {
  counter += 1;
  return `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`;
}

/** An orchestration record. */
export function makeOrch(
  partial: Partial<IOrchestration> = {}
): IOrchestration {
  return {
    id: newId(),
    name: 'hello',
    file_name: 'hello.zip',
    file_size: 100,
    sha: 'a'.repeat(64),
    status: 'ready',
    owner_id: '',
    workspace_id: 1,
    image_path: 'server',
    task_id: null,
    entrypoint: 'main.py',
    requirements: false,
    error: null,
    build_seconds: null,
    created_at: '2026-01-01T00:00:00+00:00',
    updated_at: '2026-01-01T00:00:00+00:00',
    ...partial
  };
}

/** A run record. */
export function makeRun(
  task: string,
  status: RunStatus,
  partial: Partial<ITaskRun> = {}
): ITaskRun {
  const runId = newId();
  return {
    task,
    run_id: runId,
    pod_id: runId,
    status,
    created_at: '2026-01-01T00:00:00+00:00',
    updated_at: '2026-01-01T00:00:00+00:00',
    started_at: '2026-01-01T00:00:00+00:00',
    ended_at: status === 'running' ? null : '2026-01-01T00:00:01+00:00',
    exit_code: status === 'success' ? 0 : null,
    reason: null,
    trigger: 'once',
    scheduled_for: null,
    executor: 'local',
    worker: null,
    refused_claims: 0,
    ...partial
  };
}

/** An executed notebook of one code cell that printed `text`. */
export function makeNotebook(text: string): INotebookContent {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { jupyter_orch: { status: 'success' } },
    cells: [
      {
        id: 'c1',
        cell_type: 'code',
        source: `print(${JSON.stringify(text)})`,
        metadata: {},
        execution_count: 1,
        outputs: [{ output_type: 'stream', name: 'stdout', text: `${text}\n` }]
      }
    ]
  };
}

/** A log line as the server writes it. */
export function raw(text: string, stream = 'stdout', flag = 'F'): string {
  return `2026-01-01T00:00:00.000000001Z ${stream} ${flag} ${text}`;
}

/** A follow_logs answer still open: the test writes lines and ends it. */
export class LiveFollow {
  constructor(
    readonly from: number,
    private _onEvent: (event: FollowEvent) => void,
    private _done: () => void
  ) {}

  send(event: FollowEvent): void {
    this._onEvent(event);
  }

  close(): void {
    this._done();
  }
}

/** The server, in memory: tasks keep their runs; every call is recorded. */
export class FakeApi implements IOrchApi {
  workspaces: IWorkspace[] = [
    {
      id: 1,
      name: 'default',
      created_at: '2026-01-01T00:00:00+00:00',
      created_by: '',
      archived: false,
      models: [],
      pipelines: [],
      default: true
    }
  ];
  orchestrations: IOrchestration[] = [];
  tasks: ITask[] = [];
  runs = new Map<string, ITaskRun[]>();
  logs = new Map<string, string[]>();
  /** The executed notebooks of runs (`task/get_run_output`), by run id. */
  outputs = new Map<string, INotebookContent>();
  live = new Set<string>();
  follows: LiveFollow[] = [];
  calls: string[] = [];
  failure: Error | null = null;
  private _clock = 0;

  /** Add a task of an orchestration, with runs given newest first. */
  addTask(orch: IOrchestration, partial: Partial<ITask> = {}): ITask {
    const id = newId();
    const task: ITask = {
      id,
      name: 'task',
      workspace_id: 1,
      orch_id: orch.id,
      orch_sha: orch.sha,
      owner_id: '',
      status: 'started',
      killed: false,
      input_data: {},
      run_type: 'Oneshot',
      flavor: 'exec_orch_oneshot',
      schedule: null,
      timezone: null,
      timeout: null,
      reap_threshold_secs: null,
      extra_env_vars: { ORCH_OWNER_ID: '', ORCH_SHA: orch.sha, TASK_ID: id },
      created_at: '2026-01-01T00:00:00+00:00',
      updated_at: '2026-01-01T00:00:00+00:00',
      last_runs: [],
      next_run_at: null,
      concurrency_policy: 'allow',
      starting_deadline_seconds: null,
      keep_runs: null,
      keep_days: null,
      max_log_bytes: null,
      last_skipped: [],
      executor: 'local',
      next_fires: [],
      schedule_description: null,
      ...partial
    };
    this.tasks.unshift(task);
    this.runs.set(task.id, []);
    return task;
  }

  /** The server's clock: every change and answer gets a later time than the one before. */
  stamp(): string {
    this._clock = Math.max(this._clock + 1, Date.now());
    return new Date(this._clock).toISOString();
  }

  /** Start a run of a task (it becomes the newest). */
  addRun(task: ITask, status: RunStatus, log: string[] = []): ITaskRun {
    const at = this.stamp();
    const run = makeRun(task.id, status, { created_at: at, updated_at: at });
    this.runs.get(task.id)?.unshift(run);
    this.logs.set(run.run_id, log);
    if (status === 'running') {
      this.live.add(run.run_id);
    }
    return run;
  }

  /** Change a run's status. */
  setRun(run: ITaskRun, status: RunStatus): void {
    run.status = status;
    run.updated_at = this.stamp();
    if (status !== 'running') {
      this.live.delete(run.run_id);
    }
  }

  async listWorkspaces(): Promise<IWorkspace[]> {
    this._call('workspaces');
    return this.workspaces;
  }

  async listOrchestrations(workspaceId: number): Promise<IOrchestration[]> {
    this._call(`orchestrations ${workspaceId}`);
    return this.orchestrations.filter(o => o.workspace_id === workspaceId);
  }

  /** Like the server: newest first, `limit` of them, after task `after` (404 if unknown). */
  async listTasks(query: ITaskQuery): Promise<ITask[]> {
    const { runLimit, limit, after, orchId } = query;
    const words = [`tasks ${runLimit}`, `limit=${limit}`];
    if (after !== undefined) {
      words.push(`after=${after}`);
    }
    if (orchId !== undefined) {
      words.push(`orch=${orchId}`);
    }
    this._call(words.join(' '));
    let tasks = this.tasks.filter(
      t => orchId === undefined || t.orch_id === orchId
    );
    if (after !== undefined) {
      const start = this.tasks.findIndex(t => t.id === after);
      if (start < 0) {
        throw notFound(`task ${after} not found`);
      }
      const older = new Set(this.tasks.slice(start + 1).map(t => t.id));
      tasks = tasks.filter(t => older.has(t.id));
    }
    return tasks.slice(0, limit).map(task => this._withRuns(task, runLimit));
  }

  async getTask(taskId: string, runLimit: number): Promise<ITask> {
    this._call(`task ${taskId}`);
    return this._withRuns(this._task(taskId), runLimit);
  }

  async listRuns(taskId: string, limit: number): Promise<ITaskRun[]> {
    this._call(`runs ${taskId}`);
    return (this.runs.get(taskId) ?? []).slice(0, limit).map(r => ({ ...r }));
  }

  /** Like the server: tasks with a run going; the newest 20 failures, after `since`. */
  async activity(since: string | null): Promise<IActivity> {
    this._call(since === null ? 'activity' : 'activity since');
    const after = since === null ? -Infinity : Date.parse(since);
    const tasks = new Map(this.tasks.map(t => [t.id, t]));
    let running = 0;
    const failed: IFailedTaskRun[] = [];
    for (const [taskId, runs] of this.runs) {
      running += runs.some(r => r.status === 'running') ? 1 : 0;
      for (const run of runs) {
        const bad = run.status === 'failure' || run.status === 'timed_out';
        if (bad && Date.parse(run.updated_at) > after) {
          failed.push({ ...run, task_name: tasks.get(taskId)?.name ?? null });
        }
      }
    }
    failed.sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at));
    return { running, failed: failed.slice(0, 20), as_of: this.stamp() };
  }

  async kill(taskId: string): Promise<ITask> {
    this._call(`kill ${taskId}`);
    const task = this._task(taskId);
    if (task.killed) {
      throw new Error(`task ${taskId} is already killed`);
    }
    task.killed = true;
    task.status = 'killed';
    return task;
  }

  async pause(taskId: string, pause: boolean): Promise<ITask> {
    this._call(`pause ${taskId} ${pause}`);
    const task = this._task(taskId);
    task.status = pause ? 'paused' : 'started';
    return task;
  }

  async runNow(taskId: string): Promise<IRunNowAnswer> {
    this._call(`run_now ${taskId}`);
    const run = this.addRun(this._task(taskId), 'running');
    return { ...run, id: run.run_id };
  }

  /** Like the server: a notebook is packaged as main.ipynb. */
  async createFromPath(path: string): Promise<string> {
    this._call(`create_from_path ${path}`);
    const entrypoint = path.endsWith('.ipynb') ? 'main.ipynb' : 'main.py';
    const orch = makeOrch({ name: path.split('/').pop(), entrypoint });
    this.orchestrations.unshift(orch);
    return orch.id;
  }

  async createTask(task: NewTask): Promise<string> {
    this._call(`create ${task.kind}`);
    const orch = this.orchestrations.find(o => o.id === task.request.orch_id);
    if (!orch) {
      throw new Error(`orchestration ${task.request.orch_id} not found`);
    }
    return this.addTask(orch, { name: task.request.name ?? null }).id;
  }

  /** Like the server: 404 for an unknown run or a run without a notebook (yet). */
  async getRunOutput(runId: string): Promise<INotebookContent> {
    this._call(`output ${runId}`);
    const output = this.outputs.get(runId);
    if (!output) {
      const known = this._runStatus(runId) !== 'unknown';
      throw notFound(
        known ? `run ${runId} has no notebook output` : `run ${runId} not found`
      );
    }
    return JSON.parse(JSON.stringify(output)) as INotebookContent;
  }

  followLogs(
    runId: string,
    from: number,
    onEvent: (event: FollowEvent) => void,
    signal: AbortSignal
  ): Promise<void> {
    this._call(`follow ${runId} ${from}`);
    const lines = this.logs.get(runId) ?? [];
    for (let n = from; n < lines.length; n++) {
      onEvent({ n, line: lines[n] });
    }
    if (!this.live.has(runId)) {
      const status = this._runStatus(runId);
      onEvent({ end: true, status, next: lines.length });
      return Promise.resolve();
    }
    return new Promise(resolve => {
      const follow = new LiveFollow(from, onEvent, resolve);
      this.follows.push(follow);
      signal.addEventListener('abort', () => resolve());
    });
  }

  private _runStatus(runId: string): RunStatus {
    for (const runs of this.runs.values()) {
      const run = runs.find(r => r.run_id === runId);
      if (run) {
        return run.status;
      }
    }
    return 'unknown';
  }

  private _task(taskId: string): ITask {
    const task = this.tasks.find(t => t.id === taskId);
    if (!task) {
      throw notFound(`task ${taskId} not found`);
    }
    return task;
  }

  /** A copy of a task with its newest runs, as `task/list` answers it. */
  private _withRuns(task: ITask, runLimit: number): ITask {
    return {
      ...task,
      last_runs: (this.runs.get(task.id) ?? []).slice(0, runLimit).map(r => ({
        run_id: r.run_id,
        status: r.status,
        created_at: r.created_at,
        updated_at: r.updated_at
      }))
    };
  }

  private _call(name: string): void {
    this.calls.push(name);
    if (this.failure) {
      throw this.failure;
    }
  }
}

/** Add `count` tasks named `${prefix}0`, `${prefix}1` …, the last one the newest. */
export function addTasks(
  api: FakeApi,
  orch: IOrchestration,
  count: number,
  prefix = 't'
): ITask[] {
  const made: ITask[] = [];
  for (let i = 0; i < count; i++) {
    made.push(api.addTask(orch, { name: `${prefix}${i}` }));
  }
  return made;
}

/** The names of tasks. */
export function names(tasks: readonly ITask[]): (string | null)[] {
  return tasks.map(t => t.name);
}

/** The server's 404, as the client throws it (an error with a `status`). */
export function notFound(message: string): Error {
  return Object.assign(new Error(message), { status: 404 });
}

/** Wait until a condition holds (real timers), or fail after a second. */
export async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 1000;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error('condition not met in time');
    }
    await new Promise(resolve => setTimeout(resolve, 5));
  }
}
