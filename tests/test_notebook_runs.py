"""Notebooks as orchestrations, through a real server and real runs: the checks at upload, a
notebook uploaded as it is, runs with parameters and rich outputs, failures, timeouts and kills,
the executed notebook served by `task/get_run_output`, and environments for notebooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Api, make_zip

PYTHON = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def cell(source: str, *tags: str, kind: str = "code") -> dict[str, Any]:
    """A cell of nbformat 4.5 (code cells without outputs)."""
    made: dict[str, Any] = {
        "cell_type": kind,
        "id": f"c{abs(hash((source, tags))) % 10**8}",
        "metadata": {"tags": list(tags)} if tags else {},
        "source": source,
    }
    if kind == "code":
        made.update(execution_count=None, outputs=[])
    return made


def notebook(*cells: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
    """A notebook document of `cells`, as JupyterLab saves one."""
    document = {
        "cells": list(cells),
        "metadata": PYTHON if metadata is None else metadata,
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(document, indent=1)


def assert_nothing_written(data_dir: Path) -> None:
    """No orchestration, archive, scratch folder or temporary upload is left behind."""
    for sub in ("orchestrations", "archives", "tmp"):
        assert list((data_dir / sub).iterdir()) == [], sub


async def refused(api: Api, files: dict[str, str | bytes]) -> str:
    """Upload `files` as a zip, expect a 400; the message."""
    response = await api.upload_raw(make_zip(files))
    assert response.code == 400, response.body
    answer = json.loads(response.body)
    assert answer["reason"] == "Invalid Archive"
    message: str = answer["message"]
    return message


# -- checks at upload ---------------------------------------------------------------------------


async def test_a_notebook_entrypoint_is_accepted(api: Api) -> None:
    orch_id = await api.upload({"app/main.ipynb": notebook(cell("print(1)")), "lib.py": ""})
    orch = await api.ok("orchestration/get_by_id", {"id": orch_id})
    assert orch["entrypoint"] == "app/main.ipynb" and orch["status"] == "ready"


async def test_a_script_and_a_notebook_in_one_place_are_refused(api: Api, data_dir: Path) -> None:
    both = {"main.py": "print(1)\n", "main.ipynb": notebook(cell("print(1)"))}
    message = await refused(api, both)
    assert "both 'main.py' and 'main.ipynb'" in message
    assert_nothing_written(data_dir)
    # At different depths, the shallower wins, as between two main.py.
    orch_id = await api.upload({"main.py": "print(1)\n", "nb/main.ipynb": notebook()})
    orch = await api.ok("orchestration/get_by_id", {"id": orch_id})
    assert orch["entrypoint"] == "main.py"


BROKEN = [
    ("not JSON", "{not json", "main.ipynb is not a notebook: not JSON"),
    ("a JSON list", "[1, 2]", "main.ipynb is not a notebook: a JSON list, not an object"),
    (
        "nbformat 3",
        json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}),
        "main.ipynb is nbformat 3: only nbformat 4 notebooks run",
    ),
    (
        "cells not a list",
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": 3}),
        "main.ipynb is not a valid notebook: its 'cells' is not a list",
    ),
    (
        "a stream output of a number",
        notebook(
            {
                **cell("print(1)"),
                "outputs": [{"output_type": "stream", "name": "stdout", "text": 5}],
            }
        ),
        "main.ipynb is not a valid notebook: 5 is not valid under any of the given schemas "
        "(at cells[0].outputs[0].text)",
    ),
    (
        "a cell of an unknown type",
        notebook({**cell("x"), "cell_type": "bogus"}),
        "main.ipynb is not a valid notebook: the value is not valid under any of the given "
        "schemas (at cells[0])",
    ),
    ("not UTF-8", b"\xff\xfe{}", "main.ipynb is not a notebook: not UTF-8 text"),
]


@pytest.mark.parametrize(("label", "content", "message"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_an_invalid_notebook_is_refused_with_nbformats_reason(
    api: Api, data_dir: Path, label: str, content: str | bytes, message: str
) -> None:
    answer = await refused(api, {"main.ipynb": content})
    assert answer.startswith(message), answer
    assert len(answer) <= 400, answer  # nbformat's long quotes of the document are cut
    assert_nothing_written(data_dir)


async def test_a_notebook_without_cell_ids_or_kernel_is_accepted(api: Api) -> None:
    plain = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": []}
    document = {"cells": [{**plain, "source": "1"}], "metadata": {}, "nbformat": 4}
    for minor in (4, 5):  # 4.5 wants cell ids; nbformat only warns, and the executor adds them
        await api.upload({"main.ipynb": json.dumps({**document, "nbformat_minor": minor})})


async def test_a_notebook_of_another_kernel_is_refused(api: Api, data_dir: Path) -> None:
    r_kernel = {
        "kernelspec": {"display_name": "R 4.3", "language": "R", "name": "ir"},
        "language_info": {"name": "R"},
    }
    message = await refused(api, {"main.ipynb": notebook(cell("1"), metadata=r_kernel)})
    assert message == (
        "main.ipynb is a notebook of the 'R 4.3' kernel (language R): only Python notebooks "
        "run as orchestrations"
    )
    julia = {"language_info": {"name": "julia"}}
    message = await refused(api, {"main.ipynb": notebook(cell("1"), metadata=julia)})
    assert "'julia' kernel" in message
    assert_nothing_written(data_dir)


async def test_a_notebook_uploaded_as_it_is_meets_the_same_checks(api: Api, data_dir: Path) -> None:
    r_kernel = {"kernelspec": {"display_name": "R", "language": "R", "name": "ir"}}
    for content in (notebook(cell("1"), metadata=r_kernel), '{"nbformat": 4, "cells": 3}'):
        response = await api.upload_raw(content.encode())
        assert response.code == 400, response.body
        assert json.loads(response.body)["message"].startswith("main.ipynb is ")
    assert_nothing_written(data_dir)
