/** A run log's text: search matches, whole lines, the text of a downloaded file. */

import { ILogLine, LineJoiner } from './logline';

/** Where `query` occurs in `text`, case-insensitively: [start, end) pairs. */
export function findMatches(text: string, query: string): [number, number][] {
  const found: [number, number][] = [];
  if (!query) {
    return found;
  }
  const haystack = text.toLowerCase();
  const needle = query.toLowerCase();
  for (
    let at = haystack.indexOf(needle);
    at >= 0;
    at = haystack.indexOf(needle, at + needle.length)
  ) {
    found.push([at, at + needle.length]);
  }
  return found;
}

/** A log as a downloadable text: one line each, `time stream text`. */
export function logText(lines: readonly ILogLine[]): string {
  return lines.map(l => `${l.time} ${l.stream} ${l.text}`).join('\n') + '\n';
}

/** The whole lines of a run's raw log lines (pieces of long lines joined). */
export function joinRawLines(raw: readonly string[]): ILogLine[] {
  const joiner = new LineJoiner();
  const lines: ILogLine[] = [];
  raw.forEach((text, n) => {
    const line = joiner.push(n, text);
    if (line) {
      lines.push(line);
    }
  });
  return [...lines, ...joiner.flush()];
}
