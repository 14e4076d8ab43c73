/** The new-task form's values, their checks, and the request they make. */

import { cronProblem } from './cron';
import { JSONObject, NewTask, TaskKind } from './types';

/** What the user typed, as text. */
export interface ITaskForm {
  kind: TaskKind;
  name: string;
  schedule: string;
  timezone: string;
  args: string;
  timeout: string;
  /** An executor's name (`local`, `dask`); empty: the server's default. */
  executor: string;
}

/** Whether an entrypoint is a notebook (`main.ipynb`, `any/path.ipynb`). */
export function isNotebook(entrypoint: string): boolean {
  return entrypoint.toLowerCase().endsWith('.ipynb');
}

/** The orchestration a task is for. */
export interface ITaskTarget {
  id: string;
  name: string;
  workspace_id: number;
  /** What its runs run: `main.py`, `main.ipynb`… (unknown: not said). */
  entrypoint?: string;
  /** The file or folder of the Jupyter root it was just packaged from. */
  source?: string;
}

/**
 * What the new-task dialog says first about an orchestration that runs a notebook: what
 * became of the notebook, where each run's executed copy is, and where the arguments go;
 * null for one that runs code.
 */
export function notebookNote(target: ITaskTarget): string | null {
  const { entrypoint, source } = target;
  const fromNotebook = source !== undefined && isNotebook(source);
  if (!fromNotebook && !(entrypoint && isNotebook(entrypoint))) {
    return null;
  }
  const name = entrypoint && isNotebook(entrypoint) ? entrypoint : 'main.ipynb';
  const intro = fromNotebook
    ? `The notebook ${source} becomes ${name} of the orchestration, and each run executes it`
    : `Each run executes the notebook ${name}`;
  return (
    `${intro} and keeps the executed copy: select the run and choose Open output. ` +
    'The arguments are set as variables in a cell after the one tagged "parameters".'
  );
}

/** A fresh form for an orchestration. */
export function defaultForm(name: string, timezone = localZone()): ITaskForm {
  return {
    kind: 'once',
    name,
    schedule: '*/5 * * * *',
    timezone,
    args: '{}',
    timeout: '',
    executor: ''
  };
}

/** The browser's IANA time zone, else UTC. */
export function localZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** The arguments as a JSON object, or what is wrong with them. */
export function parseArgs(text: string): JSONObject | string {
  if (!text.trim()) {
    return {};
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `arguments: ${error instanceof Error ? error.message : 'not JSON'}`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return 'arguments: a JSON object is needed, such as {"name": "world"}';
  }
  return value as JSONObject;
}

/** The timeout in seconds (null: none), or what is wrong with it. */
export function parseTimeout(text: string): number | null | string {
  const value = text.trim();
  if (!value) {
    return null;
  }
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    return 'timeout: a whole number of seconds, 1 or more (empty: none)';
  }
  return Number(value);
}

/** Everything wrong with the form, one message per field (empty when it is fine). */
export function formProblems(form: ITaskForm): string[] {
  const problems: string[] = [];
  const args = parseArgs(form.args);
  if (typeof args === 'string') {
    problems.push(args);
  }
  const timeout = parseTimeout(form.timeout);
  if (typeof timeout === 'string') {
    problems.push(timeout);
  }
  if (form.kind === 'scheduled') {
    const cron = cronProblem(form.schedule);
    if (cron) {
      problems.push(`schedule: ${cron}`);
    }
  }
  return problems;
}

/** The request a valid form makes (throws if it is not valid). */
export function taskFromForm(form: ITaskForm, target: ITaskTarget): NewTask {
  const problems = formProblems(form);
  if (problems.length > 0) {
    throw new Error(problems.join('; '));
  }
  const request = {
    orch_id: target.id,
    workspace_id: target.workspace_id,
    json: parseArgs(form.args) as JSONObject,
    ...(form.name.trim() ? { name: form.name.trim() } : {}),
    ...(form.timeout.trim() ? { timeout: Number(form.timeout.trim()) } : {}),
    ...(form.executor.trim() ? { executor: form.executor.trim() } : {})
  };
  if (form.kind === 'scheduled') {
    const timezone = form.timezone.trim();
    return {
      kind: 'scheduled',
      request: {
        ...request,
        schedule: form.schedule.trim(),
        ...(timezone ? { timezone } : {})
      }
    };
  }
  return { kind: form.kind, request };
}
