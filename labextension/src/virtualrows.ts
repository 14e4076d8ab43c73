import { IDisposable } from '@lumino/disposable';

/**
 * A keyboard-navigable list box that only builds the rows in view, so a list of
 * thousands of items costs what a screenful costs. Rows have one fixed height.
 * Not a widget: the list widgets own one each and dispose it.
 */
export class VirtualRows<T> implements IDisposable {
  constructor(options: VirtualRows.IOptions<T>) {
    this._options = options;
    const scroller = (this.node = document.createElement('div'));
    scroller.className = 'jp-OrchRows';
    scroller.tabIndex = 0;
    scroller.setAttribute('role', 'listbox');
    scroller.setAttribute('aria-label', options.label);
    this._spacer = document.createElement('div');
    this._spacer.className = 'jp-OrchRows-spacer';
    scroller.appendChild(this._spacer);
    this._empty = document.createElement('div');
    this._empty.className = 'jp-OrchRows-empty';
    scroller.appendChild(this._empty);
    scroller.addEventListener('scroll', this._onScroll);
    scroller.addEventListener('keydown', this._onKeyDown);
    scroller.addEventListener('click', this._onClick);
    this.setEmptyText(options.emptyText);
  }

  /** The scrolling list box: put it in the owner's DOM. */
  readonly node: HTMLDivElement;

  /** The items, in order. */
  get items(): readonly T[] {
    return this._items;
  }

  /** Whether this is disposed. */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /** What the list says when it has no items. */
  setEmptyText(text: string): void {
    this._empty.textContent = text;
  }

  /** Replace the items and show them. */
  setItems(items: readonly T[]): void {
    this._items = items;
    this._spacer.style.height = `${items.length * this._options.rowHeight}px`;
    this._empty.hidden = items.length > 0;
    this.update();
  }

  /** Build the rows in view again (after a resize, or a change of selection). */
  update(): void {
    if (this._disposed) {
      return;
    }
    const { rowHeight, key, render, isSelected } = this._options;
    const height = this.node.clientHeight || rowHeight * 30;
    const first = Math.max(0, Math.floor(this.node.scrollTop / rowHeight) - 2);
    const last = Math.min(
      this._items.length,
      Math.ceil((this.node.scrollTop + height) / rowHeight) + 2
    );
    const rows = document.createDocumentFragment();
    let active: string | null = null;
    for (let index = first; index < last; index++) {
      const item = this._items[index];
      const row = document.createElement('div');
      const selected = isSelected(item);
      row.className = 'jp-OrchRows-row';
      row.id = `${this._idPrefix}-${index}`;
      row.dataset.index = String(index);
      row.dataset.key = key(item);
      row.setAttribute('role', 'option');
      row.setAttribute('aria-selected', selected ? 'true' : 'false');
      row.setAttribute('aria-setsize', String(this._items.length));
      row.setAttribute('aria-posinset', String(index + 1));
      row.style.top = `${index * rowHeight}px`;
      row.style.height = `${rowHeight}px`;
      if (selected) {
        row.classList.add('jp-mod-selected');
        active = row.id;
      }
      render(item, row);
      rows.appendChild(row);
    }
    this._spacer.replaceChildren(rows);
    if (active) {
      this.node.setAttribute('aria-activedescendant', active);
    } else {
      this.node.removeAttribute('aria-activedescendant');
    }
  }

  /** Scroll so the item with this key is in view. */
  scrollToKey(itemKey: string): void {
    const index = this._items.findIndex(i => this._options.key(i) === itemKey);
    if (index >= 0) {
      this._scrollToIndex(index);
    }
  }

  /** Remove the listeners. */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    if (this._frame !== null) {
      cancelAnimationFrame(this._frame);
    }
    this.node.removeEventListener('scroll', this._onScroll);
    this.node.removeEventListener('keydown', this._onKeyDown);
    this.node.removeEventListener('click', this._onClick);
    this.node.remove();
  }

  private _scrollToIndex(index: number): void {
    const { rowHeight } = this._options;
    const top = index * rowHeight;
    const height = this.node.clientHeight;
    if (top < this.node.scrollTop) {
      this.node.scrollTop = top;
    } else if (top + rowHeight > this.node.scrollTop + height) {
      this.node.scrollTop = top + rowHeight - height;
    }
  }

  private _selectedIndex(): number {
    return this._items.findIndex(i => this._options.isSelected(i));
  }

  private _activate(index: number): void {
    const item = this._items[index];
    if (item === undefined) {
      return;
    }
    this._scrollToIndex(index);
    this._options.onActivate(item);
    this.update();
  }

  private _onScroll = (): void => {
    if (this._frame === null) {
      this._frame = requestAnimationFrame(() => {
        this._frame = null;
        this.update();
        this._checkEnd();
      });
    }
  };

  /** Scrolled (by the user) to the last row: say so, once per length of the list. */
  private _checkEnd(): void {
    const { onEndReached, rowHeight } = this._options;
    const node = this.node;
    const count = this._items.length;
    if (
      onEndReached &&
      count > 0 &&
      count !== this._endReachedAt &&
      node.scrollTop + node.clientHeight >= count * rowHeight - rowHeight
    ) {
      this._endReachedAt = count;
      onEndReached();
    }
  }

  private _onClick = (event: MouseEvent): void => {
    const row = (event.target as HTMLElement).closest<HTMLElement>(
      '.jp-OrchRows-row'
    );
    if (row?.dataset.index !== undefined) {
      this._activate(Number(row.dataset.index));
    }
  };

  private _onKeyDown = (event: KeyboardEvent): void => {
    const count = this._items.length;
    if (count === 0) {
      return;
    }
    const page = Math.max(
      1,
      Math.floor(this.node.clientHeight / this._options.rowHeight) - 1
    );
    const current = this._selectedIndex();
    let next: number;
    switch (event.key) {
      case 'ArrowDown':
        next = current < 0 ? 0 : Math.min(count - 1, current + 1);
        break;
      case 'ArrowUp':
        next = current < 0 ? 0 : Math.max(0, current - 1);
        break;
      case 'PageDown':
        next = Math.min(count - 1, Math.max(0, current) + page);
        break;
      case 'PageUp':
        next = Math.max(0, current - page);
        break;
      case 'Home':
        next = 0;
        break;
      case 'End':
        next = count - 1;
        break;
      case 'Enter':
      case ' ':
        next = Math.max(0, current);
        break;
      default:
        return;
    }
    event.preventDefault();
    event.stopPropagation();
    this._activate(next);
  };

  private _options: VirtualRows.IOptions<T>;
  private _spacer: HTMLDivElement;
  private _empty: HTMLDivElement;
  private _items: readonly T[] = [];
  private _frame: number | null = null;
  private _endReachedAt = -1;
  private _disposed = false;
  private _idPrefix = `jp-OrchRows-${Private.nextId++}`;
}

/** The options of a `VirtualRows`. */
export namespace VirtualRows {
  export interface IOptions<T> {
    /** Each row's height in pixels. */
    rowHeight: number;
    /** The list box's accessible name. */
    label: string;
    /** What the list says when it has no items. */
    emptyText: string;
    /** An item's stable key. */
    key: (item: T) => string;
    /** Fill a row element for an item. */
    render: (item: T, row: HTMLElement) => void;
    /** Whether an item is the selected one. */
    isSelected: (item: T) => boolean;
    /** The user chose an item (click, arrows, Enter). */
    onActivate: (item: T) => void;
    /**
     * The user scrolled to the last row (called once until the list's length changes);
     * never for a list that has no scrolling, nor when items are set.
     */
    onEndReached?: () => void;
  }
}

namespace Private {
  export let nextId = 0;
}
