import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ActivityModel } from './activitymodel';
import { h } from './dom';
import { orchIcon } from './icons';

/** The status bar's count of tasks with a run going; activating it opens the sidebar. */
export class RunningStatus extends Widget {
  constructor(activity: ActivityModel, onOpen: () => void) {
    super();
    this._onOpen = onOpen;
    this.addClass('jp-OrchRunningStatus');
    this.node.tabIndex = 0;
    this.node.setAttribute('role', 'button');
    const icon = h('span', 'jp-OrchRunningStatus-icon');
    orchIcon.element({ container: icon, tag: 'span', elementSize: 'small' });
    this._text = h('span', 'jp-OrchRunningStatus-text');
    this.node.append(icon, this._text);
    this.node.addEventListener('click', this._onClick);
    this.node.addEventListener('keydown', this._onKeyDown);
    activity.runningCountChanged.connect(this._render, this);
    this._render(activity, activity.runningCount);
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    Signal.disconnectReceiver(this);
    this.node.removeEventListener('click', this._onClick);
    this.node.removeEventListener('keydown', this._onKeyDown);
    super.dispose();
  }

  private _render(_: ActivityModel, count: number): void {
    const text = `${count} running`;
    this._text.textContent = text;
    this.node.title = `${count} task${count === 1 ? '' : 's'} with a run going: open Orchestrations`;
    this.node.setAttribute('aria-label', `Orchestrations: ${text}`);
    this.node.classList.toggle('jp-mod-active', count > 0);
  }

  private _onClick = (): void => {
    this._onOpen();
  };

  private _onKeyDown = (event: KeyboardEvent): void => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      this._onOpen();
    }
  };

  private _onOpen: () => void;
  private _text: HTMLSpanElement;
}
