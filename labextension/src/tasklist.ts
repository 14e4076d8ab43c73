import { badge, h } from './dom';
import { kindOf, scheduleOf, statusWord, taskName, when } from './format';
import { OrchModel } from './model';
import { ITask } from './types';
import { RowsPanel } from './rowspanel';
import { sparkline } from './sparkline';
import { VirtualRows } from './virtualrows';

/**
 * Tasks: name, kind, schedule, status and newest run, filtered by text. The newest page
 * is loaded first; scrolling to the end, or "Load more" below the list, loads the next.
 */
export class TaskList extends RowsPanel<ITask> {
  constructor(model: OrchModel, onOpen?: (taskId: string) => void) {
    super();
    this._model = model;
    this._onOpen = onOpen ?? null;
    this.addClass('jp-OrchTaskList');
    this.title.label = 'Tasks';

    const filters = h('div', 'jp-OrchTaskList-filters');
    this._search = h('input', 'jp-OrchTaskList-search jp-mod-styled');
    this._search.type = 'search';
    this._search.placeholder = 'Filter tasks';
    this._search.setAttribute('aria-label', 'Filter tasks by name or status');
    this._search.addEventListener('input', this._onFilterInput);
    const hide = h('label', 'jp-OrchTaskList-hideKilled');
    this._hideKilled = h('input', '');
    this._hideKilled.type = 'checkbox';
    // killed tasks make no run any more: out of the way unless asked for
    this._hideKilled.checked = true;
    this._hideKilled.addEventListener('change', this._onFilterInput);
    hide.append(this._hideKilled, ' Hide killed');
    filters.append(this._search, hide);

    this._orchBar = h('div', 'jp-OrchTaskList-orchFilter');
    this._orchLabel = h('span', 'jp-OrchTaskList-orchLabel');
    const clear = h(
      'button',
      'jp-OrchTaskList-clear jp-mod-styled',
      'All tasks'
    );
    clear.type = 'button';
    clear.addEventListener('click', this._onClearOrch);
    this._orchBar.append(this._orchLabel, clear);

    this.rows = new VirtualRows<ITask>({
      rowHeight: 46,
      label: 'Tasks',
      emptyText: 'No tasks. Right-click a folder or a .py file to create one.',
      key: task => task.id,
      render: (task, row) => this._renderRow(task, row),
      isSelected: task => task.id === model.selectedTaskId,
      onActivate: task => void model.selectTask(task.id),
      onEndReached: () => this._loadMore()
    });

    // below the list while older tasks are not loaded
    this._moreBar = h('div', 'jp-OrchTaskList-filters jp-OrchTaskList-more');
    this._moreLabel = h('span', 'jp-OrchTaskList-orchLabel');
    this._moreButton = h(
      'button',
      'jp-OrchTaskList-loadMore jp-mod-styled',
      'Load more'
    );
    this._moreButton.type = 'button';
    this._moreButton.title = 'Load the next page of older tasks';
    // the label gives way to the button, whose words stay on one line
    this._moreButton.style.flex = '0 0 auto';
    this._moreButton.style.whiteSpace = 'nowrap';
    this._moreButton.addEventListener('click', this._onMoreClick);
    this._moreBar.append(this._moreLabel, this._moreButton);
    this.node.append(filters, this._orchBar, this.rows.node, this._moreBar);
    this.rows.node.addEventListener('click', this._onDoubleClick);

    model.tasks.changed.connect(this._refilter, this);
    model.tasks.filterChanged.connect(this._refilter, this);
    model.orchestrations.changed.connect(this._refilter, this);
    model.selectionChanged.connect(this._onSelection, this);
    this._refilter();
  }

  /** The tasks shown, after the filters. */
  get shown(): readonly ITask[] {
    return this.rows.items;
  }

  override dispose(): void {
    if (!this.isDisposed) {
      this._search.removeEventListener('input', this._onFilterInput);
      this._hideKilled.removeEventListener('change', this._onFilterInput);
      this._moreButton.removeEventListener('click', this._onMoreClick);
      this.rows.node.removeEventListener('click', this._onDoubleClick);
    }
    super.dispose();
  }

  private _refilter(): void {
    const { tasks, orchestrations } = this._model;
    const text = this._search.value.trim().toLowerCase();
    const hideKilled = this._hideKilled.checked;
    const orch = tasks.orchFilter ? orchestrations.get(tasks.orchFilter) : null;
    this._orchBar.hidden = orch === null;
    this._orchLabel.textContent = orch ? `Tasks of ${orch.name}` : '';
    const shown = tasks.items.filter(task => {
      if (orch && task.orch_id !== orch.id) {
        return false;
      }
      if (hideKilled && task.killed) {
        return false;
      }
      if (!text) {
        return true;
      }
      const last = task.last_runs[0]?.status ?? '';
      const haystack = `${taskName(task)} ${task.status} ${kindOf(task)} ${last}`;
      return haystack.toLowerCase().includes(text);
    });
    const more = tasks.hasMore;
    this.rows.setEmptyText(
      tasks.items.length === 0
        ? more
          ? 'Loading tasks…'
          : 'No tasks. Right-click a folder or a .py file to create one.'
        : more
          ? 'No loaded task matches the filters: load more to look further.'
          : 'No task matches the filters.'
    );
    this.rows.setItems(shown);
    this._renderMore(text !== '' || hideKilled);
  }

  /** The bar under the list: how many tasks are loaded, and a button for more. */
  private _renderMore(filtered: boolean): void {
    const tasks = this._model.tasks;
    const loading = tasks.loadingMore;
    const hidden = !tasks.hasMore;
    this._moreBar.hidden = hidden;
    // the bar's class lays it out as a flex row, which `hidden` alone would not hide
    this._moreBar.style.display = hidden ? 'none' : '';
    const count = tasks.items.length;
    const newest = `newest ${count.toLocaleString()} task${count === 1 ? '' : 's'}`;
    const label = filtered ? `Filters apply to the ${newest}` : `The ${newest}`;
    this._moreLabel.textContent = label;
    this._moreLabel.title = `${label}: older tasks are loaded on scrolling to the end, or by "Load more"`;
    this._moreButton.disabled = loading;
    this._moreButton.textContent = loading ? 'Loading…' : 'Load more';
  }

  private _loadMore(): void {
    // a failure is shown by the sidebar (the model's error); the button tries again
    this._model.tasks.loadMore().catch(() => undefined);
  }

  private _onSelection(): void {
    this.rows.update();
    const id = this._model.selectedTaskId;
    if (id) {
      this.rows.scrollToKey(id);
    }
  }

  private _renderRow(task: ITask, row: HTMLElement): void {
    const last = task.last_runs[0];
    const lastStatus = last?.status ?? 'none';
    row.classList.add('jp-OrchTaskList-row');
    row.dataset.status = task.status;
    row.title = [
      `${taskName(task)} (${kindOf(task)})`,
      `status: ${statusWord(task.status)}`,
      `schedule: ${scheduleOf(task)}`,
      last
        ? `last run: ${statusWord(last.status)}, ${when(last.created_at)}`
        : 'no run yet',
      task.next_run_at ? `next run: ${when(task.next_run_at)}` : ''
    ]
      .filter(Boolean)
      .join('\n');

    const top = h('div', 'jp-OrchTaskList-line');
    const dot = h('span', 'jp-OrchDot');
    dot.dataset.status = lastStatus;
    top.append(
      dot,
      h('span', 'jp-OrchTaskList-name', taskName(task)),
      h('span', 'jp-OrchTaskList-kind', kindOf(task))
    );
    const spark = sparkline(task.last_runs);
    if (spark) {
      top.append(spark);
    }
    const bottom = h('div', 'jp-OrchTaskList-line jp-OrchTaskList-details');
    bottom.append(
      h('span', 'jp-OrchTaskList-schedule', scheduleOf(task)),
      badge(task.status),
      h('span', 'jp-OrchTaskList-last', 'last:'),
      badge(lastStatus, last ? last.status : 'no run')
    );
    row.append(top, bottom);
  }

  /**
   * A double-click on a row opens the task's view (the second click of a pair: the first
   * one's selection builds the row again, so no `dblclick` would come).
   */
  private _onDoubleClick = (event: MouseEvent): void => {
    if (event.detail !== 2) {
      return;
    }
    const row = (event.target as HTMLElement).closest<HTMLElement>(
      '.jp-OrchTaskList-row'
    );
    // the first click selected the row, which may have been built again since
    const id = row?.dataset.key ?? this._model.selectedTaskId;
    if (id && this._onOpen) {
      this._onOpen(id);
    }
  };

  private _onFilterInput = (): void => {
    this._refilter();
  };

  private _onClearOrch = (): void => {
    this._model.tasks.setOrchFilter(null);
  };

  private _onMoreClick = (): void => {
    this._loadMore();
  };

  private _model: OrchModel;
  private _onOpen: ((taskId: string) => void) | null;
  protected readonly rows: VirtualRows<ITask>;
  private _search: HTMLInputElement;
  private _hideKilled: HTMLInputElement;
  private _orchBar: HTMLDivElement;
  private _orchLabel: HTMLSpanElement;
  private _moreBar: HTMLDivElement;
  private _moreLabel: HTMLSpanElement;
  private _moreButton: HTMLButtonElement;
}
