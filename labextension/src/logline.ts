/**
 * Run log lines: `<RFC 3339 UTC time with nanoseconds>Z <stdout|stderr> <F|P> <text>`
 * (the container runtime's format). `P` lines are pieces of one long line, ended by the
 * next `F` line of the same stream.
 */

/** Which pipe a line came from. */
export type LogStream = 'stdout' | 'stderr';

/** A log line as read from the server. */
export interface IRawLine {
  time: string;
  stream: LogStream;
  partial: boolean;
  text: string;
}

/** A whole line, as shown: its first piece's index, time and stream, and its text. */
export interface ILogLine {
  n: number;
  time: string;
  stream: LogStream;
  text: string;
}

const LINE = /^(\S+) (stdout|stderr) ([FP]) ?(.*)$/s;

/** Split a raw log line; a line of another shape is kept whole as stdout text. */
export function parseLogLine(raw: string): IRawLine {
  const match = LINE.exec(raw);
  if (!match) {
    return { time: '', stream: 'stdout', partial: false, text: raw };
  }
  return {
    time: match[1],
    stream: match[2] as LogStream,
    partial: match[3] === 'P',
    text: match[4]
  };
}

/** Joins `P` pieces into whole lines, one stream at a time. */
export class LineJoiner {
  /**
   * Take raw line `n`; answer the whole line it completes, or null while a long line is
   * still coming in pieces.
   */
  push(n: number, raw: string): ILogLine | null {
    const line = parseLogLine(raw);
    const head = this._pieces.get(line.stream);
    if (line.partial) {
      if (head) {
        head.text += line.text;
      } else {
        this._pieces.set(line.stream, {
          n,
          time: line.time,
          stream: line.stream,
          text: line.text
        });
      }
      return null;
    }
    if (head) {
      this._pieces.delete(line.stream);
      head.text += line.text;
      return head;
    }
    return { n, time: line.time, stream: line.stream, text: line.text };
  }

  /** Lines left unfinished (a run that ended in the middle of a long line). */
  flush(): ILogLine[] {
    const rest = [...this._pieces.values()].sort((a, b) => a.n - b.n);
    this._pieces.clear();
    return rest;
  }

  private _pieces = new Map<LogStream, ILogLine>();
}

/** `HH:MM:SS` of a log time, on the browser's clock (empty if it does not parse). */
export function clockTime(time: string): string {
  const date = new Date(time.replace(/(\.\d{3})\d*Z$/, '$1Z'));
  if (Number.isNaN(date.getTime())) {
    return '';
  }
  return date.toLocaleTimeString([], { hour12: false });
}
