"""The IPython shell a notebook's cells run in, inside a task run.

No kernel and no ZeroMQ: the cells run in the run's own process, in an `InteractiveShell` whose
display hook, display publisher and traceback display record nbformat outputs as ipykernel
would send them, while everything a cell writes reaches the run's log at once. Imported by
`nbrun` only, inside a run: IPython is imported here and nowhere else on the run side.
"""

from __future__ import annotations

import base64
import codecs
import io
import json
import os
import re
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from IPython.core.autocall import ExitAutocall
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets import Instance, Type, default
from traitlets.config import Config

Output = dict[str, Any]

#: Magics that would install packages into a running task: refused.
PACKAGE_MAGICS = ("pip", "conda", "mamba", "micromamba", "uv")

#: Mime types whose values nbformat keeps as text; any other bytes are base64-encoded.
_TEXT_MIME = re.compile(r"^text/|^image/svg\+xml$|json$|xml$|javascript$")

#: A `[result] ...` line shows the text/plain form only up to this length.
SHORT_PLAIN = 200


class Recorder:
    """The outputs of the cell being run, as nbformat output dicts, and the run's real streams.

    Threads may print while the main thread runs a cell or serialises the notebook: one
    re-entrant lock covers both, so a written notebook never holds half an output.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.lock = threading.RLock()
        self.out = out
        self.err = err
        self.outputs: list[Output] = []
        self.execution_count: int | None = None
        self._clear_pending = False
        # display_id -> every output shown with it, in any cell (nbclient keeps the same map)
        self._by_display_id: dict[str, list[Output]] = {}

    def start(self, outputs: list[Output], execution_count: int) -> None:
        """Record into `outputs` (a cell's list) from now on."""
        with self.lock:
            self.outputs = outputs
            self.execution_count = execution_count
            self._clear_pending = False

    def stream(self, name: str, text: str) -> None:
        """Append stream text, merged into the last output when it is the same stream."""
        if not text:
            return
        with self.lock:
            self._clear_if_pending()
            last = self.outputs[-1] if self.outputs else None
            if last is not None and last["output_type"] == "stream" and last["name"] == name:
                last["text"] += text
            else:
                self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def add(self, output: Output, display_id: str | None = None) -> None:
        """Append a rich or error output; one with a display id also updates its earlier copies."""
        with self.lock:
            self._clear_if_pending()
            if display_id:
                self.update(display_id, output["data"], output["metadata"])
                self._by_display_id.setdefault(display_id, []).append(output)
            self.outputs.append(output)

    def update(self, display_id: str, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Replace the data of every output shown with `display_id` (`update_display_data`)."""
        with self.lock:
            for output in self._by_display_id.get(display_id, []):
                output["data"] = data
                output["metadata"] = metadata

    def clear(self, wait: bool) -> None:
        """`clear_output`: now, or (`wait`) just before the next output arrives."""
        with self.lock:
            if wait:
                self._clear_pending = True
            else:
                self.outputs.clear()

    def has_error(self) -> bool:
        """Whether the running cell has recorded an error output."""
        with self.lock:
            return any(output["output_type"] == "error" for output in self.outputs)

    def error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        """Record an error output and write its traceback to the run's stderr."""
        self.add({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback})
        self.err.write("\n".join(traceback) + "\n")
        self.err.flush()

    def log(self, line: str) -> None:
        """One line of the executor's own to the run's stdout; not part of any cell's outputs."""
        self.out.write(line + "\n")
        self.out.flush()

    def _clear_if_pending(self) -> None:
        if self._clear_pending:
            self.outputs.clear()
            self._clear_pending = False


class TeeStream(io.TextIOBase):
    """`sys.stdout` or `sys.stderr` during a run: each write goes to the real stream at once,
    so the supervisor logs it as it happens, and into the running cell's outputs."""

    def __init__(self, stream_name: str, real: TextIO, recorder: Recorder) -> None:
        super().__init__()
        self.stream_name = stream_name
        self._real = real
        self._recorder = recorder

    def write(self, text: str) -> int:
        """Write to the run's log and record the text as the cell's stream output."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        # Recorded first: SIGTERM may interrupt a write, and what the log shows of the cell
        # should be in the notebook too.
        try:
            self._recorder.stream(self.stream_name, text)
        finally:
            self._real.write(text)
            self._real.flush()
        return len(text)

    def flush(self) -> None:
        """Flush the real stream (every write already does)."""
        self._real.flush()

    def fileno(self) -> int:
        """The real stream's descriptor: what a child process writes there is logged only."""
        return self._real.fileno()

    def isatty(self) -> bool:
        """Never a terminal: the run's output goes to a log."""
        return False

    def writable(self) -> bool:
        """Always writable."""
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The real stream's encoding."""
        return self._real.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        """The real stream's error handler."""
        return self._real.errors


def jsonable(bundle: dict[str, Any]) -> dict[str, Any]:
    """A mime bundle as nbformat stores it: binary data base64-encoded, text as str."""
    return {mime: _jsonable_value(mime, value) for mime, value in bundle.items()}


def _jsonable_value(mime: str, value: Any) -> Any:
    if not isinstance(value, bytes):
        return value
    if _TEXT_MIME.search(mime):
        return value.decode("utf-8", "replace")
    return base64.b64encode(value).decode("ascii")


def describe(kind: str, bundle: dict[str, Any]) -> str:
    """The log line for a rich output: `[display] image/png (1.2 KiB): <plain text>`."""
    plain = bundle.get("text/plain")
    short = isinstance(plain, str) and "\n" not in plain and len(plain) <= SHORT_PLAIN
    parts = [
        f"{mime} ({_size(mime, value)})"
        for mime, value in bundle.items()
        if not (short and mime == "text/plain")
    ]
    if not short:
        return f"[{kind}] {', '.join(parts)}"
    return f"[{kind}] {', '.join(parts)}: {plain}" if parts else f"[{kind}] {plain}"


def _size(mime: str, value: Any) -> str:
    if isinstance(value, str) and not _TEXT_MIME.search(mime):
        size = len(value) * 3 // 4 - value[-2:].count("=")  # base64: the decoded size
    elif isinstance(value, str):
        size = len(value.encode("utf-8", "replace"))
    else:
        size = len(json.dumps(value, default=repr))
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def _recorder(shell: Any) -> Recorder:
    """The recorder of the shell a display hook or publisher belongs to."""
    recorder: Recorder = shell.recorder
    return recorder


class RecordingDisplayPublisher(DisplayPublisher):
    """`display()` and `clear_output()`: `display_data` outputs of the running cell."""

    def publish(
        self,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        source: Any = None,
        *,
        transient: dict[str, Any] | None = None,
        update: bool = False,
        **kwargs: Any,
    ) -> None:
        """Record `data` as a `display_data` output (or update the outputs of its display id)."""
        recorder = _recorder(self.shell)
        bundle, meta = jsonable(data), dict(metadata or {})
        display_id = (transient or {}).get("display_id")
        if update:
            if display_id:
                recorder.update(display_id, bundle, meta)
            recorder.log(describe("update", bundle))
            return
        output = {"output_type": "display_data", "data": bundle, "metadata": meta}
        recorder.add(output, display_id)
        recorder.log(describe("display", bundle))

    def clear_output(self, wait: bool = False) -> None:
        """Clear the running cell's outputs (with `wait`, when the next one arrives)."""
        _recorder(self.shell).clear(wait)


class RecordingDisplayHook(DisplayHook):
    """The value of a cell's last expression: its `execute_result` output."""

    _format: tuple[dict[str, Any], dict[str, Any]] | None = None

    def start_displayhook(self) -> None:
        """Begin one result."""
        super().start_displayhook()  # type: ignore[no-untyped-call]
        self._format = None

    def write_output_prompt(self) -> None:
        """No `Out[n]:` prompt: the output carries its execution count."""

    def write_format_data(
        self, format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None
    ) -> None:
        """Keep the result's mime bundle for `finish_displayhook`."""
        self._format = (format_dict, md_dict or {})

    def finish_displayhook(self) -> None:
        """Record the result (this IPython's `prompt_count` differs across versions: the
        recorder knows the running cell's count)."""
        self._is_active = False
        if self._format is None:
            return
        recorder = _recorder(self.shell)
        bundle = jsonable(self._format[0])
        recorder.add(
            {
                "output_type": "execute_result",
                "execution_count": recorder.execution_count,
                "data": bundle,
                "metadata": dict(self._format[1]),
            }
        )
        recorder.log(describe("result", bundle))


class ExitCall(ExitAutocall):
    """`exit()` / `quit()` (with an optional code): end the notebook as `sys.exit` ends a
    script, where IPython's own would only set `exit_now`."""

    def __call__(self, code: Any = None) -> None:
        """Raise `SystemExit(code)`."""
        raise SystemExit(code)


def package_magic_refusal(name: str) -> Callable[..., None]:
    """`%pip` and friends in a run: a cell failure that says where packages belong."""

    def refuse(line: str = "", cell: str | None = None) -> None:
        raise UsageError(
            f"%{name} is not available in a task run: put the packages in requirements.txt "
            "(a task's environment is built before it runs)"
        )

    return refuse


class RunShell(InteractiveShell):
    """An `InteractiveShell` whose outputs go to a `Recorder`; no history, no colours."""

    display_pub_class = Type(RecordingDisplayPublisher)
    displayhook_class = Type(RecordingDisplayHook)
    recorder = Instance(Recorder)

    @default("exiter")
    def _exiter_default(self) -> ExitCall:
        return ExitCall(self)  # type: ignore[no-untyped-call]

    def init_virtualenv(self) -> None:
        """Leave `sys.path` alone: a run inherits the server's `VIRTUAL_ENV`, and IPython
        would put that environment's packages before the task's own."""

    def enable_gui(self, gui: str | None = None) -> None:
        """No GUI event loop in a run (`%matplotlib qt` fails the cell); inline figures only."""
        if gui not in (None, "inline"):
            raise UsageError(f"a task run has no display for {gui}: use %matplotlib inline")

    def showtraceback(self, exc_tuple: Any = None, *args: Any, **kwargs: Any) -> None:
        """As IPython, except `SystemExit` (the executor decides what an exit means) and an
        exception raised by a signal handler (its traceback ends in the cell, not in the
        handler: IPython never hides the last frame)."""
        etype, value, tb = exc_tuple or sys.exc_info()
        if isinstance(value, SystemExit):
            return
        if getattr(value, "raised_by_signal_handler", False) and tb is not None:
            tb = _without_last_frame(tb)
        exc: Any = (etype, value, tb)
        super().showtraceback(exc, *args, **kwargs)

    def _showtraceback(self, etype: type[BaseException], evalue: BaseException, stb: Any) -> None:
        """Record the traceback as the cell's `error` output, and write it to the log."""
        text = self.InteractiveTB.stb2text(stb)
        self.recorder.error(etype.__name__, str(evalue), text.splitlines())

    def show_usage_error(self, exc: BaseException) -> None:
        """A `UsageError` (an unknown or refused magic) is an error output too."""
        self.recorder.error("UsageError", str(exc), [f"UsageError: {exc}"])

    def system_piped(self, cmd: str) -> None:
        """`!cmd` through a pipe instead of IPython's pseudo-terminal: lines end as the command
        wrote them (no `\\r\\n`), and commands see no terminal, so they write no colours."""
        if cmd.rstrip().endswith("&"):
            raise OSError("Background processes not supported.")
        command = self.var_expand(cmd, depth=1)  # type: ignore[no-untyped-call]
        proc = subprocess.Popen(
            command,
            shell=True,
            executable=os.environ.get("SHELL") or None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            _copy_output(proc)
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.user_ns["_exit_code"] = -(code - 128) if code > 128 else code
        if self.system_raise_on_error and code != 0:
            raise subprocess.CalledProcessError(code, cmd)

    system = system_piped


def _without_last_frame(tb: TracebackType) -> TracebackType:
    head = tb
    while tb.tb_next is not None and tb.tb_next.tb_next is not None:
        tb = tb.tb_next
    tb.tb_next = None
    return head


def _copy_output(proc: subprocess.Popen[bytes]) -> None:
    """Copy a command's output to `sys.stdout` as it comes (progress without newlines too)."""
    assert proc.stdout is not None
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    fd = proc.stdout.fileno()
    while chunk := os.read(fd, 65536):
        sys.stdout.write(decoder.decode(chunk))
    sys.stdout.write(decoder.decode(b"", final=True))
    proc.stdout.close()


def start_shell(recorder: Recorder) -> RunShell:
    """The process's one shell, with `%pip` and the other package magics refused."""
    config = Config()
    config.HistoryManager.enabled = False  # no SQLite file in the user's home, no thread
    config.InteractiveShell.colors = "nocolor"  # tracebacks are stored and logged as text
    if RunShell.initialized():
        raise RuntimeError("one notebook per process: its cells share the process's shell")
    shell = RunShell.instance(config=config, recorder=recorder)
    for name in PACKAGE_MAGICS:
        for kind in ("line", "cell"):
            shell.magics_manager.register_function(package_magic_refusal(name), kind, name)
    # IPython warns after every `SystemExit` it catches; here exiting is allowed.
    warnings.filterwarnings("ignore", re.escape("To exit: use 'exit', 'quit'"), UserWarning)
    return shell
