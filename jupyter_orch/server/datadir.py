"""The data directory: every path under it, named once.

```
orch.db                    SQLite (WAL): workspaces, orchestrations, tasks, runs
scheduler.lock             held (flock) by the server that makes timed runs
archives/<sha256>.zip      uploads by content (two uploads of one zip share a file)
orchestrations/<id>/       the extracted archive (`.tmp-<id>/` while it is extracted)
envs/<key>/                environments (the packager's); envs/<orch id>.build.log
runs/<run id>/             a run's folder: its files are `_proc/runfiles.py`'s
tmp/                       uploads being received, zips being built (emptied at start)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .._proc import runfiles

UNPACKING = ".tmp-"  # the prefix of an archive being extracted under orchestrations/
BUILD_LOG = ".build.log"  # the suffix of an environment's build log under envs/


@dataclass(frozen=True)
class DataDir:
    """The folders and files of one data directory (`OrchApp.data_dir`)."""

    root: Path

    def create(self) -> None:
        """Make the folders (blocking; at server start)."""
        for folder in (self.archives, self.orchestrations, self.runs, self.envs, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)

    def close_to_others(self) -> None:
        """For runs as their owners (blocking; at server start): other accounts may pass
        through the data directory and `runs/` (each run's folder is closed by its
        supervisor, its files are private to their owner) and use `envs/` (whose build logs
        are the server's alone), but read nothing else. Files an older server left readable
        are closed here."""
        self.create()
        self.root.chmod(0o711)
        self.runs.chmod(0o711)
        self.envs.chmod(0o755)
        for folder in (self.archives, self.orchestrations, self.tmp):
            folder.chmod(0o700)
        for path in self.root.glob(f"{self.database.name}*"):
            path.chmod(0o600)
        for build_log in self.envs.glob(f"*{BUILD_LOG}"):
            build_log.chmod(0o600)
        for run in self.runs.iterdir():
            if run.is_dir() and not run.is_symlink():
                run.chmod(0o711)
                runfiles.close_files(str(run))

    @property
    def database(self) -> Path:
        """The SQLite database."""
        return self.root / "orch.db"

    @property
    def scheduler_lock(self) -> Path:
        """The file whose lock the scheduling server holds."""
        return self.root / "scheduler.lock"

    @property
    def archives(self) -> Path:
        """Uploaded zips."""
        return self.root / "archives"

    def archive(self, sha: str) -> Path:
        """Where an uploaded zip is kept, by content."""
        return self.archives / f"{sha}.zip"

    @property
    def orchestrations(self) -> Path:
        """Extracted orchestrations."""
        return self.root / "orchestrations"

    def orchestration(self, orch_id: str) -> Path:
        """The extracted files of an orchestration."""
        return self.orchestrations / orch_id

    def unpacking(self, orch_id: str) -> Path:
        """Where an archive is extracted before it is moved into place."""
        return self.orchestrations / f"{UNPACKING}{orch_id}"

    def unpacking_leftovers(self) -> list[Path]:
        """Extractions a stopped server left half done."""
        return sorted(self.orchestrations.glob(f"{UNPACKING}*"))

    @property
    def envs(self) -> Path:
        """Python environments (the packager's folder)."""
        return self.root / "envs"

    def build_log(self, orch_id: str) -> Path:
        """The installer's output for an orchestration's environment."""
        return self.envs / f"{orch_id}{BUILD_LOG}"

    @property
    def runs(self) -> Path:
        """Runs' folders."""
        return self.root / "runs"

    def run(self, run_id: str) -> Path:
        """A run's log, records and working directory."""
        return self.runs / run_id

    def run_log(self, run_id: str) -> Path:
        """A run's log."""
        return self.run(run_id) / runfiles.LOG

    def run_exit(self, run_id: str) -> Path:
        """A run's exit record (there once it has ended)."""
        return self.run(run_id) / runfiles.EXIT

    def run_args(self, run_id: str) -> Path:
        """A run's arguments, as the run reads them."""
        return self.run(run_id) / runfiles.ARGS

    def run_output(self, run_id: str) -> Path:
        """A notebook run's executed copy (absolute: the run writes it from its own folder)."""
        return (self.run(run_id) / runfiles.OUTPUT_NOTEBOOK).absolute()

    @property
    def tmp(self) -> Path:
        """Scratch space on the data directory's file system (renames stay atomic)."""
        return self.root / "tmp"
