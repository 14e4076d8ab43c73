import { h } from './dom';
import { clockTime, ILogLine } from './logline';
import { ILogChange, LogModel } from './logmodel';

/**
 * The scrolling list of a run's log lines, shared by the sidebar's log and the task view's:
 * each line its time and text, a note when earlier lines were dropped, and keeping to the
 * newest line (`stick`) unless the user scrolled up. Class names start with `prefix`
 * (`<prefix>-body`, `-line`, `-time`, `-text`, and `noteClass` for notes).
 */
export class LogBody {
  constructor(options: LogBody.IOptions) {
    this._options = options;
    this.node = h('div', `${options.prefix}-body`);
    this.node.tabIndex = 0;
    this.node.setAttribute('role', 'log');
    this.node.setAttribute('aria-label', 'Run log');
    this.node.addEventListener('scroll', this._onScroll);
  }

  /** The element that scrolls. */
  readonly node: HTMLDivElement;

  /** Whether the list keeps to the newest line. */
  stick = true;

  /** Show a change of the log: every line again after a reset, else the lines added. */
  show(log: LogModel, change: ILogChange): void {
    if (change.reset) {
      this.node.replaceChildren();
      this.stick = true;
      if (log.dropped > 0) {
        this.note(this._options.dropped(log.dropped));
      }
      this._append(log.lines);
    } else {
      this._append(change.added);
    }
  }

  /** Put a note line under the lines. */
  note(text: string): void {
    this.node.appendChild(h('div', this._options.noteClass, text));
  }

  /** Scroll to the newest line if the list keeps to it (or always, with `force`). */
  toEnd(force = false): void {
    if (force) {
      this.stick = true;
    }
    if (this.stick) {
      this.node.scrollTop = this.node.scrollHeight;
    }
  }

  dispose(): void {
    this.node.removeEventListener('scroll', this._onScroll);
  }

  private _append(lines: readonly ILogLine[]): void {
    if (lines.length === 0) {
      return;
    }
    const { prefix, renderText } = this._options;
    const fragment = document.createDocumentFragment();
    for (const line of lines) {
      const node = h('div', `${prefix}-line`);
      node.dataset.stream = line.stream;
      node.dataset.n = String(line.n);
      const text = h('span', `${prefix}-text`);
      if (renderText) {
        renderText(text, line.text);
      } else {
        text.textContent = line.text;
      }
      node.append(h('span', `${prefix}-time`, clockTime(line.time)), text);
      fragment.appendChild(node);
    }
    this.node.appendChild(fragment);
  }

  private _onScroll = (): void => {
    const body = this.node;
    this.stick = body.scrollTop + body.clientHeight >= body.scrollHeight - 8;
    this._options.onScroll?.();
  };

  private _options: LogBody.IOptions;
}

export namespace LogBody {
  export interface IOptions {
    /** The class names' start, e.g. `jp-OrchLogView`. */
    prefix: string;
    /** The class of note lines (dropped lines, no output). */
    noteClass: string;
    /** The note saying `count` earlier lines are not shown. */
    dropped: (count: number) => string;
    /** Fill a line's text element (default: the text as it is). */
    renderText?: (node: HTMLElement, text: string) => void;
    /** Called after each scroll, once `stick` is updated. */
    onScroll?: () => void;
  }
}
