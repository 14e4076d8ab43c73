import { duration, statusWord, when } from './format';
import { ISkip, ITaskRun } from './types';

const SVG = 'http://www.w3.org/2000/svg';

/** One slot of the chart, oldest first: a run's bar, or the gap of an instant that did not run. */
export type ChartSlot =
  | { kind: 'run'; run: ITaskRun; seconds: number; at: number }
  | { kind: 'skip'; skip: ISkip; at: number };

/** How long a run took (until `now` while it goes on), in seconds. */
export function runSeconds(run: ITaskRun, now: number = Date.now()): number {
  const start = Date.parse(run.started_at ?? run.created_at);
  const end = run.ended_at ? Date.parse(run.ended_at) : now;
  if (Number.isNaN(start) || Number.isNaN(end)) {
    return 0;
  }
  return Math.max(0, (end - start) / 1000);
}

/**
 * The chart's slots, oldest first: the runs, and the skipped or missed instants that fall
 * after the oldest run shown (older ones would stand for runs not shown).
 */
export function chartSlots(
  runs: readonly ITaskRun[],
  skips: readonly ISkip[],
  now: number = Date.now()
): ChartSlot[] {
  const slots: ChartSlot[] = runs.map(run => ({
    kind: 'run',
    run,
    seconds: runSeconds(run, now),
    at: Date.parse(run.scheduled_for ?? run.created_at)
  }));
  const oldest = Math.min(...slots.map(s => s.at));
  for (const skip of skips) {
    const at = Date.parse(skip.scheduled_for);
    if (!Number.isNaN(at) && (slots.length === 0 || at >= oldest)) {
      slots.push({ kind: 'skip', skip, at });
    }
  }
  return slots.sort((a, b) => a.at - b.at);
}

/** What hovering a slot tells. */
export function slotText(slot: ChartSlot, now: number = Date.now()): string {
  if (slot.kind === 'skip') {
    const { skip } = slot;
    return `${when(skip.scheduled_for)}: did not run (${statusWord(skip.reason)})`;
  }
  const { run } = slot;
  const start = run.started_at ?? run.created_at;
  return [
    `${when(start)} · ${statusWord(run.status)}`,
    `took ${duration(start, run.ended_at, now) || '0 s'}${run.ended_at ? '' : ' so far'}`,
    run.exit_code !== null ? `exit code ${run.exit_code}` : '',
    `trigger: ${statusWord(run.trigger)}`,
    'click: show its log'
  ]
    .filter(Boolean)
    .join('\n');
}

/**
 * The run-history chart: one bar per run, oldest on the left, its height the run's
 * duration and its colour the outcome; a skipped or missed instant is a gap with a mark
 * on the base line. Hover tells the details; a click (or Enter on a focused bar) selects
 * the run. Drawn as SVG with the theme's colours (CSS variables), so it follows the theme.
 */
export class RunChart {
  constructor(options: RunChart.IOptions) {
    this._onSelect = options.onSelect;
    this.node = document.createElement('div');
    this.node.className = 'jp-OrchChart';
    this._svg = document.createElementNS(SVG, 'svg');
    this._svg.setAttribute('role', 'group');
    this._svg.setAttribute('aria-label', 'Run history: duration and outcome');
    this._tip = document.createElement('div');
    this._tip.className = 'jp-OrchChart-tip';
    this._tip.hidden = true;
    this._scale = document.createElement('div');
    this._scale.className = 'jp-OrchChart-scale';
    this.node.append(this._scale, this._svg, this._tip);
    this._svg.addEventListener('click', this._onClick);
    this._svg.addEventListener('keydown', this._onKey);
    this._svg.addEventListener('mouseover', this._onHover);
    this._svg.addEventListener('focusin', this._onHover);
    this._svg.addEventListener('mouseleave', this._onLeave);
    this._svg.addEventListener('focusout', this._onLeave);
  }

  /** The chart's element. */
  readonly node: HTMLDivElement;

  /** Draw the runs (newest first, as listed) and the skipped instants. */
  render(
    runs: readonly ITaskRun[],
    skips: readonly ISkip[],
    selectedRunId: string | null,
    now: number = Date.now()
  ): void {
    const slots = chartSlots(runs, skips, now);
    this._slots = slots;
    const width = 24;
    const gap = 4;
    const height = 96;
    const max = Math.max(
      1,
      ...slots.map(s => (s.kind === 'run' ? s.seconds : 0))
    );
    this._scale.textContent = slots.length
      ? `${slots.filter(s => s.kind === 'run').length} runs · longest ${formatSeconds(max)}`
      : 'No run yet.';
    const total = Math.max(1, slots.length) * (width + gap);
    this._svg.setAttribute('viewBox', `0 0 ${total} ${height + 2}`);
    this._svg.setAttribute('width', String(total));
    this._svg.setAttribute('height', String(height + 2));
    this._svg.replaceChildren();
    const base = document.createElementNS(SVG, 'line');
    base.setAttribute('class', 'jp-OrchChart-base');
    base.setAttribute('x1', '0');
    base.setAttribute('x2', String(total));
    base.setAttribute('y1', String(height + 1));
    base.setAttribute('y2', String(height + 1));
    this._svg.appendChild(base);
    slots.forEach((slot, index) => {
      const x = index * (width + gap) + gap / 2;
      const node = document.createElementNS(SVG, 'rect');
      node.dataset.index = String(index);
      node.setAttribute('x', String(x));
      node.setAttribute('width', String(width));
      node.setAttribute('tabindex', '0');
      node.setAttribute('aria-label', slotText(slot, now).split('\n')[0]);
      if (slot.kind === 'run') {
        const h = Math.max(3, Math.round((slot.seconds / max) * height));
        node.setAttribute('class', 'jp-OrchChart-bar');
        node.dataset.status = slot.run.status;
        node.dataset.runId = slot.run.run_id;
        node.setAttribute('role', 'button');
        node.setAttribute('y', String(height - h));
        node.setAttribute('height', String(h));
        if (slot.run.run_id === selectedRunId) {
          node.classList.add('jp-mod-selected');
          node.setAttribute('aria-pressed', 'true');
        }
      } else {
        node.setAttribute('class', 'jp-OrchChart-gap');
        node.dataset.reason = slot.skip.reason;
        node.setAttribute('y', String(height - 3));
        node.setAttribute('height', '4');
      }
      this._svg.appendChild(node);
    });
  }

  dispose(): void {
    this._svg.removeEventListener('click', this._onClick);
    this._svg.removeEventListener('keydown', this._onKey);
    this._svg.removeEventListener('mouseover', this._onHover);
    this._svg.removeEventListener('focusin', this._onHover);
    this._svg.removeEventListener('mouseleave', this._onLeave);
    this._svg.removeEventListener('focusout', this._onLeave);
  }

  private _slotOf(target: EventTarget | null): ChartSlot | null {
    const index = (target as SVGElement | null)?.dataset?.index;
    return index === undefined ? null : (this._slots[Number(index)] ?? null);
  }

  private _onClick = (event: MouseEvent): void => {
    const slot = this._slotOf(event.target);
    if (slot?.kind === 'run') {
      this._onSelect(slot.run.run_id);
    }
  };

  private _onKey = (event: KeyboardEvent): void => {
    if (event.key !== 'Enter' && event.key !== ' ') {
      return;
    }
    const slot = this._slotOf(event.target);
    if (slot?.kind === 'run') {
      event.preventDefault();
      this._onSelect(slot.run.run_id);
    }
  };

  private _onHover = (event: Event): void => {
    const slot = this._slotOf(event.target);
    if (!slot) {
      return;
    }
    const target = event.target as SVGGraphicsElement;
    this._tip.textContent = slotText(slot);
    this._tip.hidden = false;
    const box = target.getBoundingClientRect();
    const host = this.node.getBoundingClientRect();
    this._tip.style.left = `${Math.max(0, box.left - host.left)}px`;
  };

  private _onLeave = (): void => {
    this._tip.hidden = true;
  };

  private _onSelect: (runId: string) => void;
  private _svg: SVGSVGElement;
  private _tip: HTMLDivElement;
  private _scale: HTMLDivElement;
  private _slots: ChartSlot[] = [];
}

/** "42 s", "3 min 4 s", "2 h 5 min". */
export function formatSeconds(seconds: number): string {
  return duration(
    new Date(0).toISOString(),
    new Date(seconds * 1000).toISOString()
  );
}

/** The chart's options. */
export namespace RunChart {
  export interface IOptions {
    /** A run's bar was chosen. */
    onSelect: (runId: string) => void;
  }
}
