/**
 * A readable preview of a cron schedule, for the common patterns the server accepts: five
 * fields (minute hour day month weekday), six with the seconds first, or an `@macro`.
 * Anything else is answered with its own text.
 */

const DAYS = [
  'Sunday',
  'Monday',
  'Tuesday',
  'Wednesday',
  'Thursday',
  'Friday',
  'Saturday'
];

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December'
];

const DAY_NAMES: Record<string, number> = {
  sun: 0,
  mon: 1,
  tue: 2,
  wed: 3,
  thu: 4,
  fri: 5,
  sat: 6
};

const MACROS: Record<string, string> = {
  '@yearly': 'every year on January 1 at 00:00',
  '@annually': 'every year on January 1 at 00:00',
  '@monthly': 'on day 1 of every month at 00:00',
  '@weekly': 'every Sunday at 00:00',
  '@daily': 'every day at 00:00',
  '@midnight': 'every day at 00:00',
  '@hourly': 'every hour'
};

/** What is wrong with a schedule's shape, or null if it looks like cron. */
export function cronProblem(expr: string): string | null {
  const text = expr.trim();
  if (!text) {
    return 'a schedule is needed';
  }
  if (text.startsWith('@')) {
    return text.toLowerCase() in MACROS ? null : `unknown macro ${text}`;
  }
  const fields = text.split(/\s+/);
  const count = fields.length;
  if (count !== 5 && count !== 6) {
    return `5 fields (6 with seconds first) are needed, not ${count}`;
  }
  const specs = count === 6 ? [SECOND, ...FIELDS] : FIELDS;
  for (let i = 0; i < count; i++) {
    const problem = fieldProblem(fields[i], specs[i]);
    if (problem) {
      return `${specs[i].name}${problem}`;
    }
  }
  return null;
}

/** A cron field's name, its range, and the names it takes for numbers. */
interface IFieldSpec {
  name: string;
  min: number;
  max: number;
  names?: Record<string, number>;
}

const MONTH_NAMES: Record<string, number> = Object.fromEntries(
  MONTHS.map((m, i) => [m.slice(0, 3).toLowerCase(), i + 1])
);

const SECOND: IFieldSpec = { name: 'second', min: 0, max: 59 };

/** The five fields: minute hour day month weekday. */
const FIELDS: IFieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES },
  { name: 'day of week', min: 0, max: 7, names: DAY_NAMES }
];

/**
 * What is wrong with one field's numbers (`61` as a minute), or null. Only plain forms are
 * checked (`*`, `N`, `N-M`, `/step`, lists, names); the extensions the server also takes
 * (`L`, `W`, `#`, `?`, `H`) are left for it to judge.
 */
function fieldProblem(field: string, spec: IFieldSpec): string | null {
  if (/[LW#?H]/.test(field.replace(/[a-z]{3}/gi, ''))) {
    return null;
  }
  for (const part of field.split(',')) {
    const match = /^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:\/(\d+))?$/i.exec(part);
    if (!match) {
      return `: "${part}" is not a value, a range or a step`;
    }
    const [, range, step] = match;
    if (step !== undefined && Number(step) < 1) {
      return `: the step of "${part}" must be 1 or more`;
    }
    if (range === '*') {
      continue;
    }
    const bounds = range.split('-').map(v => valueOf(v, spec));
    for (const [i, value] of bounds.entries()) {
      if (value === null) {
        const text = range.split('-')[i];
        return `: "${text}" is not between ${spec.min} and ${spec.max}`;
      }
    }
    if (bounds.length === 2 && (bounds[0] as number) > (bounds[1] as number)) {
      return `: the range "${range}" goes backwards`;
    }
  }
  return null;
}

/** A field's value as a number in its range, or null. */
function valueOf(text: string, spec: IFieldSpec): number | null {
  const named = spec.names?.[text.toLowerCase()];
  const value = named ?? (/^\d+$/.test(text) ? Number(text) : NaN);
  return value >= spec.min && value <= spec.max ? value : null;
}

/** A readable description of a cron schedule, or the schedule itself. */
export function describeCron(expr: string): string {
  const text = expr.trim().replace(/\s+/g, ' ');
  if (text.startsWith('@')) {
    return MACROS[text.toLowerCase()] ?? text;
  }
  const fields = text.split(' ');
  if (fields.length === 6) {
    const [second, ...rest] = fields;
    if (rest.every(f => f === '*')) {
      const every = stepOf(second);
      if (every === 1) {
        return 'every second';
      }
      if (every !== null) {
        return `every ${every} seconds`;
      }
    }
    if (second !== '0') {
      return text;
    }
    return describeFive(rest) ?? text;
  }
  if (fields.length === 5) {
    return describeFive(fields) ?? text;
  }
  return text;
}

/** Five fields described, or null for a pattern this does not know. */
function describeFive(fields: string[]): string | null {
  const [minute, hour, day, month, weekday] = fields;
  const everyDay = day === '*' && month === '*' && weekday === '*';
  if (everyDay && hour === '*') {
    const every = stepOf(minute);
    if (every === 1) {
      return 'every minute';
    }
    if (every !== null) {
      return `every ${every} minutes`;
    }
    const at = numberOf(minute, 59);
    if (at !== null) {
      return at === 0 ? 'every hour' : `every hour at minute ${at}`;
    }
    return null;
  }
  const at = numberOf(minute, 59);
  if (at === null) {
    return null;
  }
  if (everyDay) {
    const every = stepOf(hour);
    if (every !== null) {
      const hours = every === 1 ? 'every hour' : `every ${every} hours`;
      return at === 0 ? hours : `${hours} at minute ${at}`;
    }
  }
  const hours = listOf(hour, 23);
  if (hours === null) {
    return null;
  }
  const times = joinWords(hours.map(h => clock(h, at)));
  const when = dayPhrase(day, month, weekday);
  return when === null ? null : `${when} at ${times}`;
}

/** "every day", "weekdays", "every Monday", "on day 1 of every month"… or null. */
function dayPhrase(day: string, month: string, weekday: string): string | null {
  if (day === '*' && month === '*') {
    if (weekday === '*') {
      return 'every day';
    }
    const days = weekdaysOf(weekday);
    if (days === null) {
      return null;
    }
    const key = days.join(',');
    if (key === '1,2,3,4,5') {
      return 'weekdays';
    }
    if (key === '0,6') {
      return 'weekends';
    }
    return `every ${joinWords(days.map(d => DAYS[d]))}`;
  }
  if (weekday !== '*') {
    return null;
  }
  const dates = listOf(day, 31, 1);
  if (dates === null) {
    return null;
  }
  const onDays = `on day ${joinWords(dates.map(String))}`;
  if (month === '*') {
    return `${onDays} of every month`;
  }
  const months = listOf(month, 12, 1);
  if (months === null) {
    return null;
  }
  return `${onDays} of ${joinWords(months.map(m => MONTHS[m - 1]))}`;
}

/** `*` is 1, `*\/N` is N; anything else null. */
function stepOf(field: string): number | null {
  if (field === '*') {
    return 1;
  }
  const match = /^(?:\*|0)\/(\d+)$/.exec(field);
  if (!match) {
    return null;
  }
  const step = Number(match[1]);
  return step > 0 ? step : null;
}

function numberOf(field: string, max: number, min = 0): number | null {
  if (!/^\d+$/.test(field)) {
    return null;
  }
  const value = Number(field);
  return value >= min && value <= max ? value : null;
}

/** `1,3,5` or `1-5` or a single number, sorted; null otherwise. */
function listOf(field: string, max: number, min = 0): number[] | null {
  const values = new Set<number>();
  for (const part of field.split(',')) {
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (range) {
      const from = numberOf(range[1], max, min);
      const to = numberOf(range[2], max, min);
      if (from === null || to === null || from > to) {
        return null;
      }
      for (let v = from; v <= to; v++) {
        values.add(v);
      }
      continue;
    }
    const value = numberOf(part, max, min);
    if (value === null) {
      return null;
    }
    values.add(value);
  }
  return [...values].sort((a, b) => a - b);
}

/** Weekdays by number (0 or 7 Sunday) or name (`mon`), in order from Sunday. */
function weekdaysOf(field: string): number[] | null {
  const named = field
    .toLowerCase()
    .replace(/[a-z]{3}/g, name =>
      name in DAY_NAMES ? String(DAY_NAMES[name]) : name
    );
  const days = listOf(named, 7);
  if (days === null) {
    return null;
  }
  return [...new Set(days.map(d => d % 7))].sort((a, b) => a - b);
}

function clock(hour: number, minute: number): string {
  return `${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}`;
}

/** "a", "a and b", "a, b and c". */
function joinWords(words: string[]): string {
  if (words.length <= 1) {
    return words.join('');
  }
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}
