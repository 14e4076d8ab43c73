/** Make an element with a class and, optionally, its text. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A small status badge whose colour follows the status word. */
export function badge(status: string, text: string = status): HTMLElement {
  const node = h('span', 'jp-OrchBadge', text.replace(/_/g, ' '));
  node.dataset.status = status;
  return node;
}

/** A form field: its label above its input (whose id it takes). */
export function field(
  id: string,
  label: string,
  input: HTMLElement
): HTMLElement {
  const wrap = h('div', 'jp-OrchCreateDialog-field');
  const text = h('label', 'jp-OrchCreateDialog-label', label);
  text.htmlFor = id;
  input.id = id;
  wrap.append(text, input);
  return wrap;
}
