import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { field, h } from './dom';
import { messageOf } from './errors';
import { OrchModel } from './model';
import { ISchedulePreview, TaskApiClient } from './panelapi';
import { ScheduleField } from './schedulefield';
import {
  defaultForm,
  formProblems,
  ITaskForm,
  ITaskTarget,
  notebookNote,
  parseArgs,
  parseTimeout,
  taskFromForm
} from './taskform';
import { TaskKind } from './types';

/** The next fire times of a schedule in a zone, and the schedule in words. */
export type SchedulePreviewer = (
  schedule: string,
  timezone: string
) => Promise<ISchedulePreview>;

/** `schedule/preview` on the server. */
const previewSchedule: SchedulePreviewer = (schedule, timezone) =>
  new TaskApiClient().previewSchedule(schedule, timezone);

const KINDS: { kind: TaskKind; label: string }[] = [
  { kind: 'once', label: 'Once, now' },
  { kind: 'scheduled', label: 'On a schedule' },
  { kind: 'continuous', label: 'Continuously' }
];

/**
 * The new-task form: how to run, schedule with its preview, arguments, timeout, executor;
 * first, for a notebook, what its runs do with it (`note`).
 */
export class CreateTaskBody
  extends Widget
  implements Dialog.IBodyWidget<ITaskForm>
{
  constructor(
    form: ITaskForm,
    error: string | null = null,
    note: string | null = null,
    preview: SchedulePreviewer = previewSchedule
  ) {
    super();
    this.addClass('jp-OrchCreateDialog');
    const id = `jp-OrchCreate-${Private.nextId++}`;

    if (note) {
      this.node.appendChild(h('p', 'jp-OrchCreateDialog-note', note));
    }

    if (error) {
      const alert = h('div', 'jp-OrchCreateDialog-error', error);
      alert.setAttribute('role', 'alert');
      this.node.appendChild(alert);
    }

    this._name = h('input', 'jp-mod-styled');
    this._name.name = 'name';
    this._name.value = form.name;
    this.node.appendChild(field(`${id}-name`, 'Task name', this._name));

    const kinds = h('fieldset', 'jp-OrchCreateDialog-kinds');
    kinds.appendChild(h('legend', '', 'Run'));
    for (const { kind, label } of KINDS) {
      const radio = h('input', '');
      radio.type = 'radio';
      radio.name = `${id}-kind`;
      radio.value = kind;
      radio.checked = form.kind === kind;
      radio.addEventListener('change', this._onChange);
      this._kinds.push(radio);
      const wrap = h('label', 'jp-OrchCreateDialog-kind');
      wrap.append(radio, label);
      kinds.appendChild(wrap);
    }
    this.node.appendChild(kinds);

    this._scheduleBox = h('div', 'jp-OrchCreateDialog-schedule');
    this._scheduleField = new ScheduleField({
      id,
      schedule: form.schedule,
      timezone: form.timezone,
      preview
    });
    this._scheduleBox.append(this._scheduleField.node);
    this.node.appendChild(this._scheduleBox);

    this._args = h('textarea', 'jp-mod-styled jp-OrchCreateDialog-args');
    this._args.name = 'args';
    this._args.value = form.args;
    this._args.rows = 4;
    this._args.spellcheck = false;
    this._args.addEventListener('input', this._onChange);
    this._argsProblem = h('div', 'jp-OrchCreateDialog-problem');
    this._argsProblem.setAttribute('aria-live', 'polite');
    this.node.append(
      field(`${id}-args`, 'Arguments (JSON object)', this._args),
      this._argsProblem
    );

    this._timeout = h('input', 'jp-mod-styled');
    this._timeout.name = 'timeout';
    this._timeout.inputMode = 'numeric';
    this._timeout.placeholder = 'none';
    this._timeout.value = form.timeout;
    this._timeout.addEventListener('input', this._onChange);
    this._timeoutProblem = h('div', 'jp-OrchCreateDialog-problem');
    this._timeoutProblem.setAttribute('aria-live', 'polite');
    this.node.append(
      field(`${id}-timeout`, 'Timeout (seconds)', this._timeout),
      this._timeoutProblem
    );

    this._executor = h('input', 'jp-mod-styled');
    this._executor.name = 'executor';
    this._executor.placeholder = 'server default (local, or dask)';
    this._executor.value = form.executor;
    this._executor.spellcheck = false;
    this.node.appendChild(field(`${id}-executor`, 'Executor', this._executor));
    this._onChange();
  }

  /** The form as typed. */
  getValue(): ITaskForm {
    const checked = this._kinds.find(r => r.checked);
    return {
      kind: (checked?.value as TaskKind | undefined) ?? 'once',
      name: this._name.value,
      schedule: this._scheduleField.schedule,
      timezone: this._scheduleField.timezone,
      args: this._args.value,
      timeout: this._timeout.value,
      executor: this._executor.value
    };
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    for (const radio of this._kinds) {
      radio.removeEventListener('change', this._onChange);
    }
    this._scheduleField.dispose();
    this._args.removeEventListener('input', this._onChange);
    this._timeout.removeEventListener('input', this._onChange);
    super.dispose();
  }

  /** Show the schedule fields for a scheduled task, and what is wrong as it is typed. */
  private _onChange = (): void => {
    const form = this.getValue();
    this._scheduleBox.hidden = form.kind !== 'scheduled';
    const args = parseArgs(form.args);
    this._argsProblem.textContent = typeof args === 'string' ? args : '';
    const timeout = parseTimeout(form.timeout);
    this._timeoutProblem.textContent =
      typeof timeout === 'string' ? timeout : '';
  };

  private _name: HTMLInputElement;
  private _kinds: HTMLInputElement[] = [];
  private _scheduleBox: HTMLDivElement;
  private _scheduleField: ScheduleField;
  private _args: HTMLTextAreaElement;
  private _argsProblem: HTMLDivElement;
  private _timeout: HTMLInputElement;
  private _timeoutProblem: HTMLDivElement;
  private _executor: HTMLInputElement;
}

/**
 * Ask how to run an orchestration and create the task; ask again, keeping what was
 * typed, while the form or the server finds a problem. The new task's id, or null.
 */
export async function askForTask(
  target: ITaskTarget,
  model: OrchModel
): Promise<string | null> {
  let form = defaultForm(target.name);
  let error: string | null = null;
  const note = notebookNote(target);
  for (;;) {
    const result = await showDialog<ITaskForm>({
      title: `Run ${target.name}`,
      body: new CreateTaskBody(form, error, note),
      buttons: [
        Dialog.cancelButton({ label: 'Not now' }),
        Dialog.okButton({ label: 'Create task' })
      ],
      focusNodeSelector: 'input[type="radio"]:checked'
    });
    if (!result.button.accept || result.value === null) {
      return null;
    }
    form = result.value;
    const problems = formProblems(form);
    if (problems.length > 0) {
      error = problems.join('\n');
      continue;
    }
    try {
      return await model.createTask(taskFromForm(form, target));
    } catch (reason) {
      error = messageOf(reason);
    }
  }
}

namespace Private {
  export let nextId = 0;
}
