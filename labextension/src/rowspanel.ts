import { Message } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { VirtualRows } from './virtualrows';

/**
 * A panel around one list of virtual rows: the rows are measured again whenever the panel
 * is resized or shown, and disposed with it (with every signal connection of the panel).
 */
export abstract class RowsPanel<T> extends Widget {
  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    Signal.disconnectReceiver(this);
    this.rows.dispose();
    super.dispose();
  }

  protected override onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this.rows.update();
  }

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.rows.update();
  }

  /** The list; a subclass creates it in its constructor (its callbacks need `this`). */
  protected abstract readonly rows: VirtualRows<T>;
}
