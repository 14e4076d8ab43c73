"""Notebook orchestrations on the server's side: a notebook entrypoint checked at upload, and a
notebook uploaded as it is made into an archive.

A run executes `main.ipynb` with `jupyter_orch.nbrun`, which reads it as plain JSON for speed:
the checks belong here, once, at upload. nbformat reads and validates the notebook (the same
library JupyterLab saves it with); an invalid one, one of another nbformat than 4, or one whose
kernel is not Python is refused with a 400 naming the problem.

A notebook uploaded as it is (a `file` part whose name ends in `.ipynb`, or whose content is a
JSON object rather than a zip) is zipped as `main.ipynb` by the one builder of
`jupyter_orch.bundle`, as the SDK zips a `.ipynb` path: the same notebook gives the same sha
whichever way it came.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import nbformat

from ..bundle import NOTEBOOK_ENTRYPOINT, ArchiveLimits, BundleError, BundleTooLarge, write_zip
from .errors import ArchiveError, TooLarge

SUFFIX = ".ipynb"
# nbformat's messages quote the offending part of the document (whole cells, outputs): the
# first line says what is wrong, and an answer stays short.
MESSAGE_CHARS = 300
_STEP = re.compile(r"\['([^']*)'\]|\[(\d+)\]")
# jsonschema's messages open with the offending value: a whole cell, say. A long one is named.
_QUOTED = re.compile(r"^([\[{].{40,}?) (is|does|has|should) ")


def is_notebook(entrypoint: str) -> bool:
    """Whether an orchestration's entrypoint is a notebook."""
    return entrypoint.endswith(SUFFIX)


def looks_like_notebook(path: Path, file_name: str) -> bool:
    """Whether an uploaded file is a notebook rather than a zip: its name ends in `.ipynb`,
    or its content is a JSON object (a zip starts with `PK`)."""
    if file_name.lower().endswith(SUFFIX):
        return True
    with path.open("rb") as fh:
        head = fh.read(256)
    return head.lstrip(b" \t\r\n")[:1] == b"{"


def zip_notebook(source: Path, dest: Path, limits: ArchiveLimits) -> None:
    """Write to `dest` the archive holding the notebook at `source` as `main.ipynb`."""
    try:
        with dest.open("wb") as out:
            write_zip({NOTEBOOK_ENTRYPOINT: source}, out, limits)
    except BundleTooLarge as exc:
        raise TooLarge(f"the notebook is too large: {exc}") from exc
    except BundleError as exc:
        raise ArchiveError(str(exc)) from exc


def check_notebook(path: Path, shown: str) -> None:
    """Refuse (ArchiveError) a notebook nbformat does not read as a valid nbformat 4
    document, or whose kernel is not Python; `shown` names it in the message."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"{shown} is not a notebook: not UTF-8 text ({exc.reason})") from exc
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ArchiveError(f"{shown} is not a notebook: not JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ArchiveError(f"{shown} is not a notebook: a JSON {type(raw).__name__}, not an object")
    major = raw.get("nbformat")
    if major != 4:
        raise ArchiveError(
            f"{shown} is nbformat {major!r}: only nbformat 4 notebooks run "
            "(JupyterLab saves a notebook as nbformat 4)"
        )
    if not isinstance(raw.get("cells"), list):  # nbformat's validation would fail on it
        raise ArchiveError(f"{shown} is not a valid notebook: its 'cells' is not a list")
    _validate(raw, shown)
    _check_kernel(raw.get("metadata"), shown)


def _validate(document: dict[str, Any], shown: str) -> None:
    """nbformat's schema validation of an nbformat 4 document."""
    # nbformat.reads(text, as_version=4) reads a version 4 document as its JSON (no conversion)
    # and validates it; validating the JSON here is the same without the error reads would also
    # log in the server's log for every invalid upload.
    try:
        nbformat.validate(_with_cell_ids(document))
    except Exception as exc:  # a library fed a hostile document may raise anything
        raise ArchiveError(f"{shown} is not a valid notebook: {_short(exc)}") from exc


def _with_cell_ids(notebook: Any) -> Any:
    """The notebook with an id on each cell that lacks one (nbformat 4.5 and later).

    nbformat only warns about a missing id, and fixes it when it writes; so does the executor,
    which gives such a cell an id in its copy. The check is about the rest.
    """
    cells = notebook.get("cells")
    if notebook.get("nbformat_minor", 0) < 5 or not isinstance(cells, list):
        return notebook
    if all(not isinstance(cell, dict) or "id" in cell for cell in cells):
        return notebook
    filled = copy.deepcopy(notebook)
    for index, cell in enumerate(filled["cells"]):
        if isinstance(cell, dict):
            cell.setdefault("id", f"cell-{index}")
    return filled


def _check_kernel(metadata: object, shown: str) -> None:
    """A notebook whose kernel (or language) is not Python cannot run here."""
    if not isinstance(metadata, dict):
        return
    kernelspec = metadata.get("kernelspec") or {}
    info = metadata.get("language_info") or {}
    language = kernelspec.get("language") or info.get("name")
    if language and str(language).lower() != "python":
        kernel = kernelspec.get("display_name") or kernelspec.get("name") or str(language)
        raise ArchiveError(
            f"{shown} is a notebook of the {kernel!r} kernel (language {language}): only "
            "Python notebooks run as orchestrations"
        )


def _short(exc: Exception) -> str:
    """The first line of an error's message, and where in the document it applies when the
    message says (`On instance['cells'][0]:`), cut to MESSAGE_CHARS."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = _QUOTED.sub(r"the value \2 ", lines[0]) if lines else type(exc).__name__
    where = next((line for line in lines if line.startswith("On instance[")), None)
    if where is not None:
        text += f" (at {_place(where)})"
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def _place(where: str) -> str:
    """`On instance['cells'][0]['source']:` as `cells[0].source`."""
    place = ""
    for name, index in _STEP.findall(where):
        place += f"[{index}]" if index else f".{name}" if place else name
    return place
