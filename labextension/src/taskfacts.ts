/**
 * The facts of a task view's header, as text: what the view shows under each label. Kept
 * apart from the DOM so that what the header says can be checked without a browser.
 */

import { fireTime, kindOf, scheduleWords, statusWord, when } from './format';
import type { TaskRecord } from './panelapi';
import { IOrchestration } from './types';

/** One row of the header: a label and its value (a list, code, or plain text). */
export interface ITaskFact {
  term: string;
  value: string;
  /** `list`: `items` as an ordered list; `code`: `value` as code. */
  shape?: 'list' | 'code';
  items?: string[];
}

/** Where runs of a task go: its executor, or the server's default when it names none. */
export function executorName(task: Pick<TaskRecord, 'executor'>): string {
  return task.executor || "the server's default";
}

/** What runs an orchestration's code: a notebook or a Python file, and which. */
export function entrypointOf(orch: IOrchestration): string {
  return orch.entrypoint.toLowerCase().endsWith('.ipynb')
    ? `notebook (${orch.entrypoint})`
    : `python (${orch.entrypoint})`;
}

/**
 * The header's facts: orchestration, type, schedule with its next fire times and policy,
 * arguments, timeout, executor, what runs, retention, status. `orch` is null while the
 * orchestration is not known yet.
 */
export function taskFacts(
  task: TaskRecord,
  orch: IOrchestration | null
): ITaskFact[] {
  const facts: ITaskFact[] = [
    {
      term: 'Orchestration',
      value: orch ? orch.name : task.orch_id.slice(0, 8)
    },
    { term: 'Type', value: kindOf(task) }
  ];
  if (task.run_type === 'CronJob') {
    facts.push({ term: 'Schedule', value: scheduleWords(task) });
    const fires = task.next_fires ?? [];
    const term = `Next runs (${task.timezone || 'UTC'})`;
    facts.push(
      fires.length
        ? {
            term,
            value: '',
            shape: 'list',
            items: fires.map(iso => fireTime(iso, task.timezone))
          }
        : { term, value: task.next_run_at ? when(task.next_run_at) : 'none' },
      { term: 'While a run goes on', value: task.concurrency_policy }
    );
  }
  const kept = [
    task.keep_runs === null ? '' : `${task.keep_runs} runs`,
    task.keep_days === null ? '' : `${task.keep_days} days`
  ].filter(Boolean);
  facts.push(
    {
      term: 'Arguments',
      value: JSON.stringify(task.input_data),
      shape: 'code'
    },
    {
      term: 'Timeout',
      value: task.timeout === null ? 'none' : `${task.timeout} s`
    },
    { term: 'Executor', value: executorName(task) },
    { term: 'Runs', value: orch ? entrypointOf(orch) : '…' },
    {
      term: 'Kept',
      value: kept.length ? kept.join(', ') : "the server's setting"
    },
    { term: 'Status', value: statusWord(task.status) }
  );
  return facts;
}
