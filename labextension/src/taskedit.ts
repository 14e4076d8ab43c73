import { field, h } from './dom';
import { messageOf } from './errors';
import {
  ISchedulePreview,
  ITaskChange,
  ITaskUpdate,
  TaskRecord
} from './panelapi';
import { ScheduleField } from './schedulefield';
import { parseArgs, parseTimeout } from './taskform';
import { ConcurrencyPolicy } from './types';

/** The edit form's values, as typed. */
export interface IEditValues {
  name: string;
  schedule: string;
  timezone: string;
  args: string;
  timeout: string;
  concurrency_policy: ConcurrencyPolicy;
  keep_runs: string;
  keep_days: string;
}

/** The form's values for a task as it is. */
export function editValues(task: TaskRecord): IEditValues {
  return {
    name: task.name ?? '',
    schedule: task.schedule ?? '',
    timezone: task.timezone ?? 'UTC',
    args: JSON.stringify(task.input_data ?? {}, null, 2),
    timeout: task.timeout === null ? '' : String(task.timeout),
    concurrency_policy: task.concurrency_policy,
    keep_runs: task.keep_runs === null ? '' : String(task.keep_runs),
    keep_days: task.keep_days === null ? '' : String(task.keep_days)
  };
}

/** A whole number ≥ 1, a number ≥ 0 (`decimal`), or null for empty; else a message. */
function parseCount(
  label: string,
  text: string,
  decimal = false
): number | null | string {
  const value = text.trim();
  if (!value) {
    return null;
  }
  const ok = decimal ? /^\d+(\.\d+)?$/.test(value) : /^\d+$/.test(value);
  if (!ok || (!decimal && Number(value) < 1)) {
    return `${label}: ${decimal ? 'a number of days, 0 or more' : 'a whole number, 1 or more'} (empty: the server's setting)`;
  }
  return Number(value);
}

/**
 * The fields of `task/update` that differ from the task, or the problems of the form.
 * Schedule, zone and policy are sent only for a scheduled task.
 */
export function changesOf(
  task: TaskRecord,
  values: IEditValues
): { changes: Omit<ITaskUpdate, 'id'> } | { problems: string[] } {
  const problems: string[] = [];
  const changes: Omit<ITaskUpdate, 'id'> = {};
  const name = values.name.trim();
  if (name !== (task.name ?? '')) {
    changes.name = name || null;
  }
  /** Record what a parse found: a problem, or the field if it differs from the task. */
  const follow = <K extends keyof typeof changes>(
    key: K,
    parsed: NonNullable<(typeof changes)[K]> | null | string,
    current: unknown,
    same: (a: unknown, b: unknown) => boolean = (a, b) => a === b
  ): void => {
    if (typeof parsed === 'string') {
      problems.push(parsed);
    } else if (!same(parsed, current)) {
      changes[key] = parsed as (typeof changes)[K];
    }
  };
  const sameJson = (a: unknown, b: unknown): boolean =>
    JSON.stringify(a) === JSON.stringify(b);
  follow('json', parseArgs(values.args), task.input_data ?? {}, sameJson);
  follow('timeout', parseTimeout(values.timeout), task.timeout);
  follow(
    'keep_runs',
    parseCount('runs kept', values.keep_runs),
    task.keep_runs
  );
  follow(
    'keep_days',
    parseCount('days kept', values.keep_days, true),
    task.keep_days
  );
  if (task.run_type === 'CronJob') {
    const schedule = values.schedule.trim().replace(/\s+/g, ' ');
    if (schedule !== task.schedule) {
      changes.schedule = schedule;
    }
    const zone = values.timezone.trim() || 'UTC';
    if (zone !== (task.timezone ?? 'UTC')) {
      changes.timezone = zone;
    }
    if (values.concurrency_policy !== task.concurrency_policy) {
      changes.concurrency_policy = values.concurrency_policy;
    }
  }
  return problems.length > 0 ? { problems } : { changes };
}

/** One change of the history in words: "timeout: 60 → 120". */
export function changeText(change: ITaskChange): string[] {
  return Object.entries(change.changes).map(([field, [before, after]]) => {
    const show = (v: unknown): string =>
      v === null || v === undefined
        ? 'none'
        : typeof v === 'string'
          ? v
          : JSON.stringify(v);
    return `${field}: ${show(before)} → ${show(after)}`;
  });
}

/**
 * The edit-in-place form of a task: name, arguments, timeout, retention and, for a
 * scheduled task, the schedule (with presets and fire times), zone and concurrency policy.
 * Save sends only what changed (`task/update`); a refusal is shown in the form, which
 * keeps what was typed.
 */
export class TaskEditForm {
  constructor(options: TaskEditForm.IOptions) {
    const { task } = options;
    this._task = task;
    this._save = options.save;
    this._close = options.close;
    const values = editValues(task);
    const id = `jp-OrchEdit-${Private.nextId++}`;
    this.node = h('form', 'jp-OrchEdit');
    this.node.setAttribute('aria-label', 'Change the task');
    this._error = h('div', 'jp-OrchCreateDialog-error');
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    this.node.appendChild(this._error);

    this._name = this._input(id, 'name', 'Task name', values.name);
    if (task.run_type === 'CronJob') {
      this._schedule = new ScheduleField({
        id,
        schedule: values.schedule,
        timezone: values.timezone,
        preview: options.preview
      });
      this.node.appendChild(this._schedule.node);
      this._policy = h('select', 'jp-mod-styled');
      for (const policy of ['allow', 'forbid', 'replace']) {
        const option = h('option', '', policy);
        option.value = policy;
        this._policy.appendChild(option);
      }
      this._policy.value = values.concurrency_policy;
      this.node.appendChild(
        field(`${id}-policy`, 'While a run goes on (concurrency)', this._policy)
      );
    }
    this._args = h('textarea', 'jp-mod-styled jp-OrchCreateDialog-args');
    this._args.rows = 4;
    this._args.spellcheck = false;
    this._args.value = values.args;
    this.node.appendChild(
      field(`${id}-args`, 'Arguments (JSON object)', this._args)
    );
    const unset = "server's setting";
    this._timeout = this._input(
      id,
      'timeout',
      'Timeout (seconds)',
      values.timeout,
      'none'
    );
    this._keepRuns = this._input(
      id,
      'keep_runs',
      'Runs kept',
      values.keep_runs,
      unset
    );
    this._keepDays = this._input(
      id,
      'keep_days',
      'Days kept',
      values.keep_days,
      unset
    );

    const buttons = h('div', 'jp-OrchEdit-buttons');
    const cancel = h('button', 'jp-mod-styled jp-mod-reject', 'Cancel');
    cancel.type = 'button';
    cancel.addEventListener('click', () => this._close());
    this._submit = h('button', 'jp-mod-styled jp-mod-accept', 'Save');
    this._submit.type = 'submit';
    buttons.append(cancel, this._submit);
    this.node.appendChild(buttons);
    this.node.addEventListener('submit', this._onSubmit);
  }

  /** The form's element. */
  readonly node: HTMLFormElement;

  /** The values as typed. */
  get values(): IEditValues {
    return {
      name: this._name.value,
      schedule: this._schedule?.schedule ?? '',
      timezone: this._schedule?.timezone ?? '',
      args: this._args.value,
      timeout: this._timeout.value,
      concurrency_policy: (this._policy?.value ??
        this._task.concurrency_policy) as ConcurrencyPolicy,
      keep_runs: this._keepRuns.value,
      keep_days: this._keepDays.value
    };
  }

  dispose(): void {
    this._schedule?.dispose();
    this.node.removeEventListener('submit', this._onSubmit);
  }

  private _input(
    id: string,
    name: string,
    label: string,
    value: string,
    placeholder = ''
  ): HTMLInputElement {
    const input = h('input', 'jp-mod-styled');
    input.name = name;
    input.value = value;
    input.placeholder = placeholder;
    this.node.appendChild(field(`${id}-${name}`, label, input));
    return input;
  }

  private _onSubmit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const problems = [this._schedule?.problem ?? null].filter(
      (p): p is string => p !== null
    );
    const result = changesOf(this._task, this.values);
    if ('problems' in result) {
      problems.push(...result.problems);
    }
    if (problems.length > 0 || !('changes' in result)) {
      this._showError(problems.join('\n'));
      return;
    }
    if (Object.keys(result.changes).length === 0) {
      this._close();
      return;
    }
    this._submit.disabled = true;
    try {
      await this._save(result.changes);
      this._close();
    } catch (error) {
      this._showError(messageOf(error));
    } finally {
      this._submit.disabled = false;
    }
  };

  private _showError(text: string): void {
    this._error.hidden = false;
    this._error.textContent = text;
  }

  private _task: TaskRecord;
  private _save: TaskEditForm.IOptions['save'];
  private _close: () => void;
  private _error: HTMLDivElement;
  private _name: HTMLInputElement;
  private _schedule: ScheduleField | null = null;
  private _policy: HTMLSelectElement | null = null;
  private _args: HTMLTextAreaElement;
  private _timeout: HTMLInputElement;
  private _keepRuns: HTMLInputElement;
  private _keepDays: HTMLInputElement;
  private _submit: HTMLButtonElement;
}

/** The edit form's options. */
export namespace TaskEditForm {
  export interface IOptions {
    task: TaskRecord;
    save: (changes: Omit<ITaskUpdate, 'id'>) => Promise<unknown>;
    close: () => void;
    preview: (schedule: string, timezone: string) => Promise<ISchedulePreview>;
  }
}

namespace Private {
  export let nextId = 0;
}
