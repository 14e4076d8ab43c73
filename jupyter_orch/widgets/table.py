"""The panels' table: rendered HTML whose rows a click selects.

ipywidgets' `HTML` shows the table but cannot tell the kernel which row was clicked, so the
table is an anywidget: a few lines of JavaScript paint the same HTML and send
`{"select": <row id>}` when a row (`<tr data-id>`) is clicked. A message, rather than a synced
value, so that clicking the row that was selected before (chosen since in the picker) selects
it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

_ESM = """
function render({ model, el }) {
  const paint = () => { el.innerHTML = model.get("value"); };
  el.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (row && el.contains(row)) {
      model.send({ select: row.dataset.id });
    }
  });
  model.on("change:value", paint);
  paint();
}
export default { render };
"""


class RowTable(anywidget.AnyWidget):
    """An HTML table (`value`) whose clicked rows are reported to `on_select(row_id)`."""

    _esm = _ESM
    value = traitlets.Unicode("").tag(sync=True)

    def __init__(self, value: str = "", **kwargs: Any) -> None:
        super().__init__(value=value, **kwargs)
        self._select: list[Callable[[str], None]] = []
        self.on_msg(self._on_message)

    def on_select(self, callback: Callable[[str], None]) -> None:
        """Call `callback(row_id)` when a row is clicked."""
        self._select.append(callback)

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        row = content.get("select") if isinstance(content, dict) else None
        if isinstance(row, str) and row:
            for callback in self._select:
                callback(row)
