/**
 * The shapes of the orchestration API, field for field as jupyter_orch/openapi.json
 * describes them (`__tests__/openapi.spec.ts` checks it), and the interface the models use
 * to reach it.
 */

import type { INotebookContent } from '@jupyterlab/nbformat';

/** Where an orchestration's packaging stands. */
export type OrchestrationStatus =
  'pending_packaging' | 'packaging' | 'ready' | 'error' | 'uninitialized';

/** A task's status word. */
export type TaskStatus =
  | 'pending'
  | 'started'
  | 'success'
  | 'failed'
  | 'timed_out'
  | 'pending_kill'
  | 'killed'
  | 'pending_pause'
  | 'paused'
  | 'pending_resume'
  | 'crash_loop'
  | 'schedule_error'
  | 'resource_contention';

/** A run's status word. */
export type RunStatus =
  'running' | 'success' | 'failure' | 'timed_out' | 'killed' | 'unknown';

/** How a task makes runs: once, on a schedule, continuously. */
export type RunType = 'Oneshot' | 'CronJob' | 'NetworkService';

/** The flavor word matching a `RunType`. */
export type Flavor =
  'exec_orch_oneshot' | 'exec_orch_cron' | 'exec_orch_service';

/** What a scheduled instant does while an earlier run of its task still runs. */
export type ConcurrencyPolicy = 'allow' | 'forbid' | 'replace';

/** A JSON value, as task arguments hold. */
export type JSONValue =
  string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };

/** A JSON object. */
export type JSONObject = { [key: string]: JSONValue };

/** An uploaded archive of code and the environment it runs in. */
export interface IOrchestration {
  id: string;
  name: string;
  file_name: string;
  file_size: number;
  sha: string;
  status: OrchestrationStatus;
  owner_id: string;
  workspace_id: number;
  image_path: string;
  task_id: string | null;
  entrypoint: string;
  requirements: boolean;
  error: string | null;
  build_seconds: number | null;
  created_at: string;
  updated_at: string;
}

/** A run as a task's `last_runs` lists it. */
export interface ITaskRunSummary {
  run_id: string;
  status: RunStatus;
  created_at: string;
  updated_at: string;
}

/** A scheduled instant that did not run. */
export interface ISkip {
  task: string;
  scheduled_for: string;
  reason: string;
  recorded_at: string;
}

/** An order to run an orchestration. */
export interface ITask {
  id: string;
  name: string | null;
  workspace_id: number;
  orch_id: string;
  orch_sha: string;
  owner_id: string;
  status: TaskStatus;
  killed: boolean;
  input_data: JSONObject;
  run_type: RunType;
  flavor: Flavor;
  schedule: string | null;
  timezone: string | null;
  timeout: number | null;
  reap_threshold_secs: number | null;
  extra_env_vars: { [name: string]: string };
  created_at: string;
  updated_at: string;
  last_runs: ITaskRunSummary[];
  next_run_at: string | null;
  concurrency_policy: ConcurrencyPolicy;
  starting_deadline_seconds: number | null;
  keep_runs: number | null;
  keep_days: number | null;
  max_log_bytes: number | null;
  last_skipped: ISkip[];
  /** Where its runs execute (`local`, `dask`). */
  executor: string | null;
  /** Up to three ISO times with the offset of the task's zone ([] when not scheduled). */
  next_fires: string[];
  /** The schedule in words, without the zone (null without a schedule). */
  schedule_description: string | null;
}

/** One execution of a task. */
export interface ITaskRun {
  task: string;
  run_id: string;
  pod_id: string;
  status: RunStatus;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  ended_at: string | null;
  exit_code: number | null;
  reason: string | null;
  trigger: 'once' | 'schedule' | 'catch_up' | 'manual' | 'continuous';
  scheduled_for: string | null;
  /** The executor the run went to. */
  executor: string;
  /** The Dask worker that started it (null for local runs). */
  worker: string | null;
  /** Later attempts to start it that were refused (it starts at most once). */
  refused_claims: number;
}

/** The run `task/run_now` started (`id` is its `run_id`). */
export interface IRunNowAnswer extends ITaskRun {
  id: string;
}

/** A run that failed or timed out, with its task's name (`task/activity`). */
export interface IFailedTaskRun extends ITaskRun {
  task_name: string | null;
}

/** How many tasks have a run going, and the runs that failed after a moment. */
export interface IActivity {
  running: number;
  /** Newest first. */
  failed: IFailedTaskRun[];
  /** The server's time of the answer: where the next look starts. */
  as_of: string;
}

/** The answer of `engine/info`: which engine answers the API. */
export interface IEngineInfo {
  /** `server`: this Jupyter server's own; `hub-service`: a JupyterHub service. */
  kind: 'server' | 'hub-service';
  /** The JupyterHub service's name (empty for `server`). */
  name: string;
  /** A short text naming the engine, for people. */
  label: string;
  version: string;
  /** Who the engine takes the caller for. */
  user: string;
}

/** A named group of orchestrations and tasks, and of the users who share them. */
export interface IWorkspace {
  id: number;
  name: string;
  created_at: string;
  /** Empty for the `default` workspace. */
  created_by: string;
  /** Always false (Wallaroo's field). */
  archived: boolean;
  /** Always empty (Wallaroo's field). */
  models: never[];
  /** Always empty (Wallaroo's field). */
  pipelines: never[];
  /** Whether it is the caller's default workspace (the one workspace id 1 names). */
  default: boolean;
}

/** The answer of `workspaces/list`. */
export interface IWorkspaceList {
  workspaces: IWorkspace[];
}

/** The answer of the requests that create something: its id. */
export interface IIdAnswer {
  id: string;
}

/** One JSON line of `task/follow_logs`. */
export type FollowEvent =
  | { n: number; line: string }
  | { heartbeat: true }
  | { end: true; status: RunStatus; next: number };

/** What every task kind takes (`task/run_once`, `task/run_continuously`). */
export interface ITaskRequest {
  orch_id: string;
  workspace_id: number;
  /** The task's arguments ({} if absent). */
  json?: JSONObject;
  name?: string;
  timeout?: number;
  /** Accepted for compatibility; no effect. */
  debug?: boolean;
  keep_runs?: number;
  keep_days?: number;
  /** Where runs execute (`local`, `dask`); the server's default if absent. */
  executor?: string;
  /** The cap on each run's log, in bytes (default: the server's setting). */
  max_log_bytes?: number;
}

/** A scheduled task's extra fields (`task/run_scheduled`). */
export interface IScheduledRequest extends ITaskRequest {
  schedule: string;
  timezone?: string;
  concurrency_policy?: ConcurrencyPolicy;
  starting_deadline_seconds?: number;
}

/** How a new task runs. */
export type TaskKind = 'once' | 'scheduled' | 'continuous';

/** A new task: its kind and its request. */
export type NewTask =
  | { kind: 'once'; request: ITaskRequest }
  | { kind: 'continuous'; request: ITaskRequest }
  | { kind: 'scheduled'; request: IScheduledRequest };

/** A page of `task/list`: the newest `limit` tasks, or the `limit` after task `after`. */
export interface ITaskQuery {
  /** How many of each task's newest runs come with it. */
  runLimit: number;
  /** At most this many tasks. */
  limit: number;
  /** The id of the last task of the previous page. */
  after?: string;
  /** Only this orchestration's tasks. */
  orchId?: string;
}

/** The calls the model makes; `OrchClient` implements them over HTTP. */
export interface IOrchApi {
  listWorkspaces(): Promise<IWorkspace[]>;
  listOrchestrations(workspaceId: number): Promise<IOrchestration[]>;
  /** A page of tasks, newest first (an empty one past the end). */
  listTasks(query: ITaskQuery): Promise<ITask[]>;
  /** One task with its newest runs; rejects with `status` 404 once it is gone. */
  getTask(taskId: string, runLimit: number): Promise<ITask>;
  listRuns(taskId: string, limit: number): Promise<ITaskRun[]>;
  /**
   * How many tasks have a run going, and the newest runs of any task that failed or timed
   * out (after `since`, unless it is null).
   */
  activity(since: string | null): Promise<IActivity>;
  kill(taskId: string): Promise<ITask>;
  pause(taskId: string, pause: boolean): Promise<ITask>;
  runNow(taskId: string): Promise<IRunNowAnswer>;
  createFromPath(path: string, name?: string): Promise<string>;
  createTask(task: NewTask): Promise<string>;
  /**
   * The executed notebook of a run of a notebook orchestration (while the run goes on, the
   * copy so far); rejects with `status` 404 for an unknown run or one without such output.
   */
  getRunOutput(runId: string): Promise<INotebookContent>;
  /**
   * Follow a run's log from line `from`: `onEvent` gets every JSON line; resolves when
   * the answer ends (after an `end` line, or early if the connection broke).
   */
  followLogs(
    runId: string,
    from: number,
    onEvent: (event: FollowEvent) => void,
    signal: AbortSignal
  ): Promise<void>;
}
