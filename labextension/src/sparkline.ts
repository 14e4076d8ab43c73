import { duration, statusWord } from './format';
import { ITaskRunSummary } from './types';

const SVG = 'http://www.w3.org/2000/svg';

/** How many of a task's newest runs the sidebar's sparkline shows. */
export const SPARK_RUNS = 8;

/** Seconds between a run summary's creation and its last change (until now if running). */
export function summarySeconds(
  run: ITaskRunSummary,
  now: number = Date.now()
): number {
  const from = Date.parse(run.created_at);
  const to = run.status === 'running' ? now : Date.parse(run.updated_at);
  return Number.isNaN(from) || Number.isNaN(to)
    ? 0
    : Math.max(0, (to - from) / 1000);
}

/**
 * A small chart of a task's newest runs (given newest first, drawn oldest on the left):
 * bar height = how long it took, colour = outcome. Null when the task has no run.
 */
export function sparkline(
  runs: readonly ITaskRunSummary[],
  now: number = Date.now()
): SVGSVGElement | null {
  const shown = runs.slice(0, SPARK_RUNS).reverse();
  if (shown.length === 0) {
    return null;
  }
  const seconds = shown.map(r => summarySeconds(r, now));
  const max = Math.max(1, ...seconds);
  const bar = 4;
  const step = bar + 2;
  const height = 14;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'jp-OrchSpark');
  svg.setAttribute('width', String(SPARK_RUNS * step));
  svg.setAttribute('height', String(height));
  svg.setAttribute('role', 'img');
  const words = shown.map(
    (run, i) =>
      `${statusWord(run.status)} ${duration(new Date(0).toISOString(), new Date(seconds[i] * 1000).toISOString())}`
  );
  svg.setAttribute(
    'aria-label',
    `Newest runs, oldest first: ${words.join(', ')}`
  );
  const title = document.createElementNS(SVG, 'title');
  title.textContent = `Newest runs (oldest first): ${words.join(', ')}`;
  svg.appendChild(title);
  shown.forEach((run, i) => {
    const h = Math.max(2, Math.round((seconds[i] / max) * height));
    const rect = document.createElementNS(SVG, 'rect');
    rect.setAttribute('class', 'jp-OrchSpark-bar');
    rect.dataset.status = run.status;
    rect.setAttribute('x', String(i * step));
    rect.setAttribute('y', String(height - h));
    rect.setAttribute('width', String(bar));
    rect.setAttribute('height', String(h));
    svg.appendChild(rect);
  });
  return svg;
}
