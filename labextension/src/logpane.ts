import { Clipboard } from '@jupyterlab/apputils';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { messageOf } from './errors';
import { LogBody } from './logbody';
import { findMatches, logText } from './logtext';
import { ILogChange, LogModel } from './logmodel';

/**
 * A run's log at full width with a toolbar: search (matches highlighted, Enter for the
 * next), wrap on or off, copy, download the whole log as a file, jump to the first stderr
 * line and to the end. It keeps to the newest line while the run goes on, unless scrolled up.
 */
export class LogPane extends Widget {
  constructor(options: LogPane.IOptions) {
    super();
    this._log = options.log;
    this._download = options.download;
    this.addClass('jp-OrchLogPane');

    const bar = h('div', 'jp-OrchLogPane-toolbar');
    bar.setAttribute('role', 'toolbar');
    bar.setAttribute('aria-label', 'Log');
    this._search = h('input', 'jp-mod-styled jp-OrchLogPane-search');
    this._search.type = 'search';
    this._search.placeholder = 'Search the log';
    this._search.setAttribute('aria-label', 'Search the log');
    this._search.addEventListener('input', this._onSearch);
    this._search.addEventListener('keydown', this._onSearchKey);
    this._count = h('span', 'jp-OrchLogPane-count');
    this._count.setAttribute('aria-live', 'polite');
    this._wrap = this._button('Wrap', 'Wrap long lines (on/off)', () => {
      const on = !this.node.classList.contains('jp-mod-wrap');
      this.node.classList.toggle('jp-mod-wrap', on);
      this._wrap.setAttribute('aria-pressed', String(on));
    });
    this._wrap.setAttribute('aria-pressed', 'false');
    const copy = this._button('Copy', 'Copy the log shown', () => {
      Clipboard.copyToSystem(logText(this._log.lines));
      this._say('Copied.');
    });
    const save = this._button('Download', 'Download the whole log', () => {
      void this._onDownload();
    });
    this._stderr = this._button(
      'First stderr',
      'Jump to the first line written to stderr',
      () => this._jumpToStderr()
    );
    const end = this._button('End ↓', 'Jump to the end and follow', () =>
      this._lines.toEnd(true)
    );
    this._note = h('span', 'jp-OrchLogPane-note');
    this._note.setAttribute('aria-live', 'polite');
    bar.append(
      this._search,
      this._count,
      this._wrap,
      copy,
      save,
      this._stderr,
      end,
      this._note
    );
    this._lines = new LogBody({
      prefix: 'jp-OrchLogPane',
      noteClass: 'jp-OrchLogPane-dropped',
      dropped: count =>
        `${count} earlier lines are not shown (Download has them all).`,
      renderText: (node, text) => highlight(node, text, this._search.value)
    });
    this._body = this._lines.node;
    this.node.append(bar, this._body);
    this._log.changed.connect(this._onLog, this);
    this._onLog(this._log, { reset: true, added: [] });
  }

  /** The search text. */
  get query(): string {
    return this._search.value;
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    Signal.disconnectReceiver(this);
    this._lines.dispose();
    this._search.removeEventListener('input', this._onSearch);
    this._search.removeEventListener('keydown', this._onSearchKey);
    super.dispose();
  }

  private _button(
    label: string,
    title: string,
    onClick: () => void
  ): HTMLButtonElement {
    const button = h('button', 'jp-mod-styled jp-OrchLogPane-button', label);
    button.type = 'button';
    button.title = title;
    button.addEventListener('click', onClick);
    return button;
  }

  private _onLog(log: LogModel, change: ILogChange): void {
    this._lines.show(log, change);
    if (log.state === 'ended' && log.lines.length === 0) {
      this._body.replaceChildren();
      this._lines.note('(no output)');
    }
    if (log.state === 'error') {
      this._say(`log unavailable: ${log.error}`);
    }
    this._stderr.disabled = !log.lines.some(l => l.stream === 'stderr');
    this._countMatches();
    this._lines.toEnd();
  }

  /** Highlight the matches again in every line. */
  private _onSearch = (): void => {
    const query = this._search.value;
    const texts = this._body.querySelectorAll<HTMLElement>(
      '.jp-OrchLogPane-text'
    );
    const lines = this._log.lines;
    texts.forEach((node, index) => {
      const line = lines[index];
      if (line) {
        highlight(node, line.text, query);
      }
    });
    this._current = -1;
    this._countMatches();
    if (query) {
      this._next(1);
    }
  };

  private _onSearchKey = (event: KeyboardEvent): void => {
    if (event.key === 'Enter') {
      event.preventDefault();
      this._next(event.shiftKey ? -1 : 1);
    }
  };

  /** Scroll to the next (or previous) match and mark it as the current one. */
  private _next(step: number): void {
    const marks = [...this._body.querySelectorAll<HTMLElement>('mark')];
    if (marks.length === 0) {
      return;
    }
    marks[this._current]?.classList.remove('jp-mod-current');
    this._current = (this._current + step + marks.length) % marks.length;
    const mark = marks[this._current];
    mark.classList.add('jp-mod-current');
    this._lines.stick = false;
    mark.scrollIntoView({ block: 'center' });
    this._count.textContent = `${this._current + 1} of ${marks.length}`;
  }

  private _countMatches(): void {
    const query = this._search.value;
    if (!query) {
      this._count.textContent = '';
      return;
    }
    const count = this._body.querySelectorAll('mark').length;
    this._count.textContent = count === 0 ? 'no match' : `${count} matches`;
  }

  private _jumpToStderr(): void {
    const first = this._body.querySelector<HTMLElement>(
      '.jp-OrchLogPane-line[data-stream="stderr"]'
    );
    if (first) {
      this._lines.stick = false;
      first.scrollIntoView({ block: 'center' });
      first.classList.add('jp-mod-flash');
      setTimeout(() => first.classList.remove('jp-mod-flash'), 1500);
    }
  }

  private async _onDownload(): Promise<void> {
    try {
      this._say('Downloading…');
      const { name, text } = await this._download();
      const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
      const link = document.createElement('a');
      link.href = url;
      link.download = name;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      this._say(`Saved as ${name}.`);
    } catch (error) {
      this._say(`Download failed: ${messageOf(error)}`);
    }
  }

  private _say(text: string): void {
    this._note.textContent = text;
  }

  private _log: LogModel;
  private _download: () => Promise<{ name: string; text: string }>;
  private _search: HTMLInputElement;
  private _count: HTMLSpanElement;
  private _wrap: HTMLButtonElement;
  private _stderr: HTMLButtonElement;
  private _note: HTMLSpanElement;
  private _lines: LogBody;
  private _body: HTMLDivElement;
  private _current = -1;
}

/** Put `text` in `node` with each match of `query` in a `<mark>`. */
function highlight(node: HTMLElement, text: string, query: string): void {
  const matches = findMatches(text, query);
  if (matches.length === 0) {
    node.textContent = text;
    return;
  }
  node.replaceChildren();
  let at = 0;
  for (const [start, end] of matches) {
    node.append(text.slice(at, start), h('mark', '', text.slice(start, end)));
    at = end;
  }
  node.append(text.slice(at));
}

/** The log pane's options. */
export namespace LogPane {
  export interface IOptions {
    /** The log shown. */
    log: LogModel;
    /** The whole log of the run shown, and a file name for it. */
    download: () => Promise<{ name: string; text: string }>;
  }
}
