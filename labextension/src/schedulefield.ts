import { cronProblem, describeCron } from './cron';
import { h } from './dom';
import { isNotFound, messageOf } from './errors';
import { fireTime } from './format';
import { ISchedulePreview } from './panelapi';
import { localZone } from './taskform';

/** A schedule preset: its label and its cron text for a time of day ("09:30"). */
interface IPreset {
  id: string;
  label: string;
  cron?: (hour: number, minute: number) => string;
  /** Whether it takes a time of day. */
  timed: boolean;
}

/** The presets of the schedule field. */
export const PRESETS: IPreset[] = [
  { id: 'custom', label: 'Custom (cron)', timed: false },
  { id: 'hourly', label: 'Every hour', cron: () => '0 * * * *', timed: false },
  {
    id: 'daily',
    label: 'Daily at…',
    cron: (hour, minute) => `${minute} ${hour} * * *`,
    timed: true
  },
  {
    id: 'weekdays',
    label: 'Weekdays at…',
    cron: (hour, minute) => `${minute} ${hour} * * 1-5`,
    timed: true
  }
];

/** Which preset a cron text is, with its time of day ("HH:MM"); custom otherwise. */
export function presetOf(cron: string): { id: string; time: string | null } {
  const text = cron.trim().replace(/\s+/g, ' ');
  if (text === '0 * * * *' || text === '@hourly') {
    return { id: 'hourly', time: null };
  }
  const match = /^(\d{1,2}) (\d{1,2}) \* \* (\*|1-5)$/.exec(text);
  if (match && Number(match[1]) < 60 && Number(match[2]) < 24) {
    const time = `${match[2].padStart(2, '0')}:${match[1].padStart(2, '0')}`;
    return { id: match[3] === '*' ? 'daily' : 'weekdays', time };
  }
  return { id: 'custom', time: null };
}

/** The cron text of a preset at a time of day ("09:30"); null for custom. */
export function presetCron(id: string, time: string): string | null {
  const preset = PRESETS.find(p => p.id === id);
  const [hour, minute] = (time || '09:00').split(':').map(Number);
  return preset?.cron ? preset.cron(hour || 0, minute || 0) : null;
}

/** The IANA time zones the browser knows ([] if it cannot list them). */
export function timeZones(): string[] {
  const intl = Intl as unknown as {
    supportedValuesOf?: (k: string) => string[];
  };
  try {
    return intl.supportedValuesOf?.('timeZone') ?? [];
  } catch {
    return [];
  }
}

/** What is wrong with a time zone name, or null (UTC and the browser's zones are fine). */
export function zoneProblem(
  zone: string,
  known: readonly string[]
): string | null {
  const name = zone.trim();
  if (!name || name === 'UTC' || known.length === 0 || known.includes(name)) {
    return null;
  }
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return null;
  } catch {
    return `unknown time zone "${name}"`;
  }
}

/**
 * A schedule with its time zone: presets (every hour, daily at…, weekdays at…) or cron
 * text, checked field by field as it is typed (`61 * * * *` is refused here), a time-zone
 * picker (the browser's zone by default), the schedule in words and its next three fire
 * times (`schedule/preview`).
 */
export class ScheduleField {
  constructor(options: ScheduleField.IOptions) {
    this._preview = options.preview;
    const id = options.id;
    this.node = h('div', 'jp-OrchSchedule');

    this._preset = h('select', 'jp-mod-styled jp-OrchSchedule-preset');
    this._preset.setAttribute('aria-label', 'Schedule preset');
    for (const preset of PRESETS) {
      const option = h('option', '', preset.label);
      option.value = preset.id;
      this._preset.appendChild(option);
    }
    this._time = h('input', 'jp-mod-styled jp-OrchSchedule-time');
    this._time.type = 'time';
    this._time.setAttribute('aria-label', 'Time of day');
    this._time.value = '09:00';
    this._cron = h('input', 'jp-mod-styled jp-OrchSchedule-cron');
    this._cron.name = 'schedule';
    this._cron.id = `${id}-schedule`;
    this._cron.spellcheck = false;
    this._cron.value = options.schedule;
    this._cron.setAttribute('aria-describedby', `${id}-preview`);
    const cronLabel = h('label', 'jp-OrchCreateDialog-label', 'Cron schedule');
    cronLabel.htmlFor = this._cron.id;
    const row = h('div', 'jp-OrchSchedule-row');
    row.append(this._preset, this._time);

    this._zones = timeZones();
    this._zone = h('input', 'jp-mod-styled jp-OrchSchedule-zone');
    this._zone.name = 'timezone';
    this._zone.id = `${id}-timezone`;
    this._zone.value = options.timezone || localZone();
    this._zone.placeholder = 'UTC';
    const list = h('datalist', '');
    list.id = `${id}-zones`;
    for (const zone of this._zones) {
      const option = h('option', '');
      option.value = zone;
      list.appendChild(option);
    }
    this._zone.setAttribute('list', list.id);
    const zoneLabel = h('label', 'jp-OrchCreateDialog-label', 'Time zone');
    zoneLabel.htmlFor = this._zone.id;

    this._words = h('div', 'jp-OrchCreateDialog-preview jp-OrchSchedule-words');
    this._words.id = `${id}-preview`;
    this._words.setAttribute('aria-live', 'polite');
    this._fires = h('ul', 'jp-OrchSchedule-fires');
    this._fires.setAttribute('aria-label', 'Next fire times');
    this.node.append(
      row,
      cronLabel,
      this._cron,
      this._words,
      zoneLabel,
      this._zone,
      list,
      this._fires
    );
    const found = presetOf(options.schedule);
    this._preset.value = found.id;
    if (found.time) {
      this._time.value = found.time;
    }
    this._preset.addEventListener('change', this._onPreset);
    this._time.addEventListener('change', this._onPreset);
    this._cron.addEventListener('input', this._onInput);
    this._zone.addEventListener('input', this._onInput);
    this._onInput();
  }

  /** The field's element. */
  readonly node: HTMLDivElement;

  /** The cron text. */
  get schedule(): string {
    return this._cron.value;
  }

  /** The time zone. */
  get timezone(): string {
    return this._zone.value;
  }

  /** What is wrong with the schedule or the zone (null: nothing). */
  get problem(): string | null {
    const cron = cronProblem(this._cron.value);
    if (cron) {
      return `schedule: ${cron}`;
    }
    const zone = zoneProblem(this._zone.value, this._zones);
    return zone ? `time zone: ${zone}` : null;
  }

  dispose(): void {
    clearTimeout(this._timer);
    this._preset.removeEventListener('change', this._onPreset);
    this._time.removeEventListener('change', this._onPreset);
    this._cron.removeEventListener('input', this._onInput);
    this._zone.removeEventListener('input', this._onInput);
  }

  private _onPreset = (): void => {
    const id = this._preset.value;
    this._time.hidden = !PRESETS.find(p => p.id === id)?.timed;
    const cron = presetCron(id, this._time.value);
    if (cron !== null) {
      this._cron.value = cron;
    }
    this._onInput();
  };

  /** Check as typed; ask the server for the fire times a moment after typing stops. */
  private _onInput = (): void => {
    const found = presetOf(this._cron.value);
    if (found.id !== this._preset.value) {
      this._preset.value = found.id;
      if (found.time) {
        this._time.value = found.time;
      }
    }
    this._time.hidden = !PRESETS.find(p => p.id === this._preset.value)?.timed;
    const problem = this.problem;
    this._words.textContent = problem ?? describeCron(this._cron.value);
    this._words.classList.toggle('jp-mod-error', problem !== null);
    this._cron.setAttribute('aria-invalid', String(problem !== null));
    this._fires.replaceChildren();
    clearTimeout(this._timer);
    if (problem === null) {
      this._timer = setTimeout(() => void this._loadFires(), 250);
    }
  };

  private async _loadFires(): Promise<void> {
    const schedule = this._cron.value;
    const zone = this._zone.value.trim() || 'UTC';
    const asked = ++this._asked;
    let answer: ISchedulePreview;
    try {
      answer = await this._preview(schedule, zone);
    } catch (error) {
      if (asked === this._asked && !isNotFound(error)) {
        this._words.textContent = messageOf(error);
        this._words.classList.add('jp-mod-error');
      }
      return;
    }
    if (asked !== this._asked) {
      return;
    }
    // the words stay the form's own (at once as typed); the server adds the fire times
    this._fires.replaceChildren(
      h('li', 'jp-OrchSchedule-firesHead', `Next runs (${zone}):`),
      ...answer.fires.map(iso =>
        h('li', 'jp-OrchSchedule-fire', fireTime(iso, zone))
      )
    );
  }

  private _preview: ScheduleField.IOptions['preview'];
  private _preset: HTMLSelectElement;
  private _time: HTMLInputElement;
  private _cron: HTMLInputElement;
  private _zone: HTMLInputElement;
  private _zones: string[];
  private _words: HTMLDivElement;
  private _fires: HTMLUListElement;
  private _timer: ReturnType<typeof setTimeout> | undefined;
  private _asked = 0;
}

/** The schedule field's options. */
export namespace ScheduleField {
  export interface IOptions {
    /** A unique prefix for the inputs' ids. */
    id: string;
    schedule: string;
    timezone: string;
    /** The next fire times and the schedule in words (`schedule/preview`). */
    preview: (schedule: string, timezone: string) => Promise<ISchedulePreview>;
  }
}
