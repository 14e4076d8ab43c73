"""The worker's side of a run on Dask: claim it, prepare it, supervise it, report it.

`run_on_worker` is the function the server submits. On a worker it

1. claims the run from the server (through the run's token): Dask may run one task twice (a
   lost worker, a retired one), and only the first claim starts user code;
2. fetches the orchestration's archive by its content hash and extracts it, both cached in the
   worker's own folder (`JUPYTER_ORCH_WORKER_DIR`, else ``~/.cache/jupyter_orch/worker``);
3. builds or reuses the run's environment there, keyed as on the server (`packaging.env_key`),
   never changing the worker's own environment;
4. starts the same supervisor as a local run, which writes the run's log and exit record in a
   run folder on the worker and stops the run if this worker process dies (its lifeline);
5. sends the log's bytes to the server as they are written, from the offset the server says it
   has (nothing lost, nothing doubled across reconnects), relays a kill asked for on the server,
   and finally sends the exit record.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from ..._proc import runfiles, supervise
from .base import SECRET_VARS, append_note

RUN_DIR_MARK = "{RUN_DIR}"  # in the payload's argv and variables: the run folder, wherever it is
CACHE_VAR = "JUPYTER_ORCH_WORKER_DIR"
PUSH_BYTES = 1 << 20
HEARTBEAT = 0.5  # seconds between reports while the log is quiet (a kill's latency)
POLL = 0.02  # seconds between looks at the log
DELIVER_FOR = 600.0  # how long a finished run's last report is retried while the server is away

_prepare_lock = threading.Lock()


class Refused(Exception):
    """The server refused the claim: the run started elsewhere, or is over."""


class Gone(Exception):
    """The server says the run is not running any more: stop it."""


def cache_dir() -> Path:
    """The worker's own folder for archives, orchestrations, environments and run folders."""
    return Path(os.environ.get(CACHE_VAR) or Path.home() / ".cache" / "jupyter_orch" / "worker")


def worker_name() -> str:
    """This Dask worker's address (and name, when it has one of its own)."""
    from distributed import get_worker

    worker = get_worker()
    name = str(worker.name)
    return worker.address if name == worker.address else f"{worker.address} ({name})"


class Channel:
    """The run's line back to the server: claim, log bytes, end. Retries while unreachable."""

    def __init__(self, url: str, token: str, run_id: str) -> None:
        self.url = url.rstrip("/") + "/v1/api/run/"
        self.run_id = run_id
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def call(self, what: str, deadline: float | None, **kwargs: Any) -> requests.Response:
        """POST to the server, again and again while it cannot be reached (until `deadline`)."""
        params = {"run_id": self.run_id, **kwargs.pop("params", {})}
        wait = 0.05
        while True:
            try:
                answer = self.session.post(self.url + what, params=params, timeout=10, **kwargs)
            except requests.RequestException:
                answer = None
            if answer is not None and answer.status_code == 410:
                raise Gone(answer.json().get("message", "the run is over"))
            if answer is not None and answer.status_code < 500 and answer.status_code != 403:
                return answer
            # Unreachable, restarting (403: it does not know the run's token yet), or failing.
            if deadline is not None and time.monotonic() > deadline:
                raise ConnectionError(f"the server at {self.url} could not be reached")
            time.sleep(wait)
            wait = min(wait * 2, 0.5)

    def claim(self, worker: str) -> int:
        """Claim the run for this worker; how many log bytes the server has (Refused)."""
        answer = self.call("claim", time.monotonic() + 60, json={"worker": worker})
        if answer.status_code != 200:
            raise Refused(answer.json().get("message", answer.reason))
        return int(answer.json()["received"])

    def push(self, offset: int, data: bytes, deadline: float | None) -> tuple[int, bool]:
        """Send log bytes from `offset`; the server's size of the log, and whether to kill."""
        answer = self.call("log", deadline, params={"offset": offset}, data=data)
        answer.raise_for_status()
        body = answer.json()
        return int(body["received"]), bool(body["kill"])

    def end(self, record: dict[str, Any], files: dict[str, str]) -> None:
        """Report the run's end (with the files the server keeps, a notebook's output)."""
        deadline = time.monotonic() + DELIVER_FOR
        self.call("end", deadline, json={"exit": record, "files": files}).raise_for_status()

    def download(self, orch_id: str, dest: Path) -> None:
        """The orchestration's archive, as uploaded."""
        url = self.url.replace("/run/", "/orchestration/download")
        with self.session.get(url, params={"id": orch_id}, stream=True, timeout=60) as answer:
            answer.raise_for_status()
            with open(dest, "wb") as fh:
                for chunk in answer.iter_content(1 << 16):
                    fh.write(chunk)


def run_on_worker(payload: dict[str, Any]) -> dict[str, Any]:
    """Submitted by the server's Dask executor: run one run here, at most once overall."""
    worker = worker_name()
    channel = Channel(payload["url"], payload["token"], payload["run_id"])
    try:
        received = channel.claim(worker)
    except (Refused, Gone, ConnectionError) as exc:
        return {"started": False, "worker": worker, "reason": str(exc)}
    run_dir = cache_dir() / "runs" / payload["run_id"]
    runfiles.make_run_dir(str(run_dir))
    log = run_dir / runfiles.LOG
    if received and not log.exists():
        # a claim answered twice (a retried request): nothing to resend
        runfiles.write_files(str(run_dir), {runfiles.LOG: ""})
    try:
        spec = _prepare(payload, run_dir, channel)
    except Exception as exc:  # whatever failed, the run ends with the reason in its log
        append_note(run_dir, f"jupyter_orch: could not prepare the run on {worker}: {exc}")
        record = {"status": "failure", "exit_code": None, "reason": f"could not start: {exc}"}
        return _report(channel, run_dir, received, None, record, worker)
    proc = _start(run_dir, spec)
    return _report(channel, run_dir, received, proc, None, worker)


# -- preparing ---------------------------------------------------------------------------------


def _prepare(payload: dict[str, Any], run_dir: Path, channel: Channel) -> dict[str, Any]:
    """The supervisor's spec: files fetched, environment ready, paths made local."""
    source = _orchestration(payload["orch_id"], payload["orch_sha"], channel)
    python = sys.executable
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    env.update(_local(payload["env"], run_dir))
    if payload.get("requirements") is not None:
        python = _environment(payload["requirements"], bool(payload.get("notebook")), run_dir)
        env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    spec = dict(payload["spec"])
    spec.update(
        argv=[python, *(a.replace(RUN_DIR_MARK, str(run_dir)) for a in spec["argv"][1:])],
        env=env,
        source=str(source),
    )
    return spec


def _local(env: dict[str, str], run_dir: Path) -> dict[str, str]:
    return {k: v.replace(RUN_DIR_MARK, str(run_dir)) for k, v in env.items()}


def _orchestration(orch_id: str, sha: str, channel: Channel) -> Path:
    """The orchestration's files, extracted once per content hash on this worker."""
    from ..archive import ArchiveLimits, extract_archive

    root = cache_dir()
    target = root / "orchestrations" / sha
    if target.is_dir():
        return target
    with _file_lock(root / "locks" / f"orch-{sha}"):
        if target.is_dir():
            return target
        archive = root / "archives" / f"{sha}.zip"
        if not archive.exists() or _sha256(archive) != sha:
            archive.parent.mkdir(parents=True, exist_ok=True)
            part = archive.with_suffix(f".{uuid.uuid4().hex}.part")
            channel.download(orch_id, part)
            if _sha256(part) != sha:
                part.unlink()
                raise OSError(f"the archive fetched for {sha} has another content hash")
            os.replace(part, archive)
        scratch = target.with_name(f".tmp-{uuid.uuid4().hex}")
        limits = ArchiveLimits(max_files=10**6, max_bytes=1 << 40)
        extract_archive(archive, scratch, limits)
        os.replace(scratch, target)
    return target


def _environment(lines: list[str], notebook: bool, run_dir: Path) -> str:
    """The interpreter of the run's environment, built in this worker's cache if missing."""
    from ..packaging import Packager, env_key

    envs = cache_dir() / "envs"
    envs.mkdir(parents=True, exist_ok=True)
    packager = Packager(envs, max_parallel=1)
    # One build of a key at a time, also across worker processes sharing the folder.
    with _file_lock(cache_dir() / "locks" / f"env-{env_key(lines)}"), _prepare_lock:
        packager.clean_incomplete()
        built = asyncio.run(packager.ensure(lines, notebook))
    if built.python is None:
        append_note(run_dir, f"jupyter_orch: {built.log.strip()}")
        raise OSError(f"packaging failed: {built.error}")
    return built.python


@contextlib.contextmanager
def _file_lock(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -- running -----------------------------------------------------------------------------------


def _start(run_dir: Path, spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start the run's supervisor with a lifeline: when this process dies, the run is stopped."""
    life_r, life_w = os.pipe()
    spec["lifeline"] = life_r
    runfiles.write_spec(str(run_dir), spec)
    try:
        err_path = run_dir / runfiles.SUPERVISOR_ERR
        with open(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as err:
            proc = subprocess.Popen(
                supervise.command(sys.executable, str(run_dir)),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                pass_fds=(life_r,),
                start_new_session=True,
                # The run's secrets (its token) reach it here, never through its files; the
                # rest of its environment is in its spec.
                env=dict(spec.get(runfiles.SECRETS) or {}),
            )
    except BaseException:
        os.close(life_w)
        raise
    finally:
        os.close(life_r)
    _LIFELINES[proc.pid] = life_w  # held open for as long as this process lives
    return proc


_LIFELINES: dict[int, int] = {}


def _report(
    channel: Channel,
    run_dir: Path,
    offset: int,
    proc: subprocess.Popen[bytes] | None,
    record: dict[str, Any] | None,
    worker: str,
) -> dict[str, Any]:
    """Send the log as it grows, relay kills, then send the end; what happened."""
    log = run_dir / runfiles.LOG
    stopper = _Stopper(proc, run_dir)
    last = 0.0
    deadline: float | None = None  # while the run goes on, the server is waited for
    try:
        while True:
            ended = proc is None or proc.poll() is not None
            if ended and deadline is None:
                deadline = time.monotonic() + DELIVER_FOR
            data = _read_from(log, offset)
            if data or time.monotonic() - last >= HEARTBEAT:
                offset, kill = channel.push(offset, data, deadline)
                last = time.monotonic()
                if kill:
                    stopper.stop()
            stopper.check()
            if ended and not data and offset >= _size(log):
                break
            if not data:
                time.sleep(POLL)
    except Gone as exc:
        stopper.stop()
        if proc is not None:
            proc.wait()
        return {"started": True, "worker": worker, "gone": str(exc)}
    except ConnectionError as exc:  # the run ended, and the server stayed away
        record = record or _exit_record(run_dir)
        return {"started": True, "worker": worker, "exit": record, "undelivered": str(exc)}
    finally:
        if proc is not None:
            with contextlib.suppress(OSError):
                os.close(_LIFELINES.pop(proc.pid))
    record = record or _exit_record(run_dir)
    files = _output_files(run_dir)
    with contextlib.suppress(Gone, ConnectionError):  # else the server reads the task's result
        channel.end(record, files)
    shutil.rmtree(run_dir / runfiles.WORK, ignore_errors=True)
    return {"started": True, "worker": worker, "exit": record}


def _read_from(log: Path, offset: int) -> bytes:
    """Whole lines of the log from `offset` (a line being written waits for its end)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            data = fh.read(PUSH_BYTES)
    except FileNotFoundError:
        return b""
    cut = data.rfind(b"\n")
    return data[: cut + 1] if cut >= 0 else b""


def _size(log: Path) -> int:
    try:
        return log.stat().st_size
    except FileNotFoundError:
        return 0


def _exit_record(run_dir: Path) -> dict[str, Any]:
    import json

    try:
        data: dict[str, Any] = json.loads((run_dir / runfiles.EXIT).read_text("utf-8"))
    except (OSError, ValueError):
        reason = "the run's supervisor on the worker vanished before recording an exit status"
        data = {"status": "failure", "exit_code": None, "reason": reason}
    return data


def _output_files(run_dir: Path) -> dict[str, str]:
    path = run_dir / runfiles.OUTPUT_NOTEBOOK
    return {runfiles.OUTPUT_NOTEBOOK: path.read_text("utf-8")} if path.exists() else {}


class _Stopper:
    """A kill asked for on the server: SIGTERM to the supervisor (which stops the run's
    process group, with its grace period); the group and the supervisor SIGKILLed if the
    supervisor has not ended a while after that."""

    def __init__(self, proc: subprocess.Popen[bytes] | None, run_dir: Path) -> None:
        self.proc = proc
        self.run_dir = run_dir
        self.force_at: float | None = None

    def stop(self) -> None:
        if self.proc is None or self.force_at is not None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        grace = float(runfiles.read_spec(str(self.run_dir)).get("grace", 10.0))
        self.force_at = time.monotonic() + grace + 5.0

    def check(self) -> None:
        if self.force_at is None or self.proc is None or time.monotonic() < self.force_at:
            return
        if self.proc.poll() is None:
            child = _exit_child(self.run_dir)
            if child:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child, signal.SIGKILL)
            self.proc.kill()
        self.force_at = None


def _exit_child(run_dir: Path) -> int | None:
    import json

    try:
        pid = json.loads((run_dir / runfiles.CHILD).read_text("utf-8")).get("pid")
    except (OSError, ValueError):
        return None
    return pid if isinstance(pid, int) else None
