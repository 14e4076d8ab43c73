"""`import wallaroo` inside a run, for orchestrations written for Wallaroo.

This folder is on the path of runs only (last), never installed. When the run's environment
has Wallaroo's own package, that one is imported instead; otherwise this is
`jupyter_orch.sdk.wallaroo`: `wallaroo.Client()` is jupyter_orch's client, bound to the run.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module
from importlib.machinery import ModuleSpec, PathFinder
from importlib.util import module_from_spec


def _elsewhere() -> ModuleSpec | None:
    """The spec of a `wallaroo` found on the path outside this folder, if any."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    return PathFinder.find_spec(__name__, rest)


_spec = _elsewhere()
if _spec is not None and _spec.loader is not None:
    _module = module_from_spec(_spec)
    sys.modules[__name__] = _module
    _spec.loader.exec_module(_module)
else:
    sys.modules[__name__] = import_module("jupyter_orch.sdk.wallaroo")
