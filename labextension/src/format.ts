/** Words and small pieces of text the widgets show. */

import { describeCron } from './cron';
import type { TaskRecord } from './panelapi';
import { ITask, RunType } from './types';

const KINDS: Record<RunType, string> = {
  Oneshot: 'once',
  CronJob: 'scheduled',
  NetworkService: 'continuous'
};

/** "once", "scheduled" or "continuous". */
export function kindOf(task: ITask): string {
  return KINDS[task.run_type] ?? task.run_type;
}

/** A task's name, or a short form of its id. */
export function taskName(task: Pick<ITask, 'id' | 'name'>): string {
  return task.name || `task ${task.id.slice(0, 8)}`;
}

/** A status word for people: `timed_out` is "timed out". */
export function statusWord(status: string): string {
  return status.replace(/_/g, ' ');
}

/** What a task's schedule says: "every 5 minutes (Europe/Paris)", "continuous"… */
export function scheduleOf(task: ITask): string {
  if (task.run_type === 'CronJob' && task.schedule) {
    const zone =
      task.timezone && task.timezone !== 'UTC' ? ` (${task.timezone})` : '';
    return `${describeCron(task.schedule)}${zone}`;
  }
  return task.run_type === 'NetworkService' ? 'continuously' : 'once';
}

/** "5 s ago", "3 min ago", "2 h ago", else a date, for a time in the past. */
export function ago(iso: string | null, now: number = Date.now()): string {
  if (!iso) {
    return '';
  }
  const then = Date.parse(iso);
  if (Number.isNaN(then)) {
    return '';
  }
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 60) {
    return `${seconds} s ago`;
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)} min ago`;
  }
  if (seconds < 86400) {
    return `${Math.floor(seconds / 3600)} h ago`;
  }
  return new Date(then).toLocaleDateString();
}

/** "1.2 s", "3 min 4 s": how long between two times (until now if `end` is null). */
export function duration(
  start: string | null,
  end: string | null,
  now: number = Date.now()
): string {
  if (!start) {
    return '';
  }
  const from = Date.parse(start);
  const to = end ? Date.parse(end) : now;
  if (Number.isNaN(from) || Number.isNaN(to)) {
    return '';
  }
  const seconds = Math.max(0, (to - from) / 1000);
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${Math.floor(seconds % 60)} s`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A local time, with its date unless it is today. */
export function shortWhen(iso: string | null, now: Date = new Date()): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return '';
  }
  const time = date.toLocaleTimeString([], { hour12: false });
  return date.toDateString() === now.toDateString() ? time : when(iso);
}

/** A short local date and time. */
export function when(iso: string | null): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ''
    : date.toLocaleString([], {
        month: 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hour12: false
      });
}

/**
 * A fire time (ISO with its offset) as the wall clock of `zone` reads it, with the
 * weekday: "Thu 3 Dec 09:00"; the ISO text itself if it does not parse.
 */
export function fireTime(iso: string, zone: string | null): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  const options: Intl.DateTimeFormatOptions = {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false
  };
  try {
    return date.toLocaleString([], { ...options, timeZone: zone || 'UTC' });
  } catch {
    return date.toLocaleString([], options);
  }
}

/** A scheduled task's schedule in words with its zone: "At 09:00, Monday through Friday (Europe/Paris)". */
export function scheduleWords(task: TaskRecord): string {
  const words = task.schedule_description ?? describeCron(task.schedule ?? '');
  return `${words} (${task.timezone || 'UTC'})`;
}
