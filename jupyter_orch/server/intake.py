"""Orchestrations in: an upload checked and unpacked, packaged in the background, made from the
Jupyter root's files (deleting them is `deletion.py`'s).

An upload is all or nothing: the archive is checked before anything is written, extracted to a
scratch folder (a notebook entrypoint is validated there), moved into place, and only then is its
row written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from .._proc import runfiles
from .archive import ArchiveLimits, extract_archive
from .background import Background
from .datadir import DataDir
from .errors import WrongState
from .models import Orchestration, OrchestrationStatus, new_id, now
from .notebook import check_notebook, is_notebook, looks_like_notebook, zip_notebook
from .packaging import Packager
from .removal import remove_or_log
from .requirements import check_requirements, normalise_requirements
from .store import Store
from .tasks import TaskManager
from .upload import bundle_path, resolve_inside

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """A received file to make an orchestration of, and for whom."""

    path: Path
    file_name: str
    sha: str
    size: int
    workspace_id: int
    name: str | None
    owner: str


class Intake:
    """Uploads and packaging of the orchestrations of one data directory."""

    def __init__(
        self,
        data: DataDir,
        store: Store,
        packager: Packager,
        tasks: TaskManager,
        *,
        limits: ArchiveLimits,
        allow_requirement_options: bool = False,
        root_dir: Path | None = None,
    ) -> None:
        self.data = data
        self.store = store
        self.packager = packager
        self.tasks = tasks
        self.limits = limits
        self.allow_requirement_options = allow_requirement_options
        self.root_dir = root_dir
        self._background = Background("packaging")

    async def start(self, stack: AsyncExitStack) -> None:
        """Tidy what a stopped server left half done; packaging stops when `stack` closes."""
        await asyncio.to_thread(self._clean_scratch)
        stack.push_async_callback(self._background.stop)

    def _clean_scratch(self) -> None:
        """Remove what a stopped server left half done; what cannot be removed is logged and
        left (the API answers all the same)."""
        for entry in list(self.data.tmp.iterdir()) if self.data.tmp.is_dir() else ():
            remove_or_log(entry, "scratch file")
        self.data.tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self.data.unpacking_leftovers():
            remove_or_log(leftover, "half-extracted archive")
        try:
            self.packager.clean_incomplete()
        except (OSError, RecursionError) as exc:
            log.warning("jupyter_orch: could not remove incomplete environments: %s", exc)

    async def resume(self) -> None:
        """Package what a stopped server left unpackaged; begin tasks of ready orchestrations
        that still wait (the scheduler holder, at take-over)."""
        for status in (OrchestrationStatus.PENDING_PACKAGING, OrchestrationStatus.PACKAGING):
            for orch in await self.store.call(self.store.list_orchestrations, (), status):
                self._background.spawn(self._package(orch))
        ready = await self.store.call(self.store.list_orchestrations, (), OrchestrationStatus.READY)
        for orch in ready:
            for task in await self.store.call(self.store.tasks_waiting_for, orch.id):
                self._background.spawn(self.tasks.begin(task.id))

    # -- in ---------------------------------------------------------------------------------

    async def upload(self, upload: Upload) -> Orchestration:
        """Check and store an uploaded zip, or a notebook uploaded as it is (zipped as
        `main.ipynb` first); packaging goes on in the background."""
        if not await asyncio.to_thread(looks_like_notebook, upload.path, upload.file_name):
            return await self._store(upload)
        stem = Path(upload.file_name).stem
        async with self._scratch_zip() as zipped:
            await asyncio.to_thread(zip_notebook, upload.path, zipped, self.limits)
            return await self._store_zip(upload, zipped, f"{stem}.zip", upload.name or stem)

    async def _store_zip(
        self, upload: Upload, zipped: Path, file_name: str, name: str | None
    ) -> Orchestration:
        """Store a zip built here (from a notebook or the Jupyter root) for an upload."""
        sha, size = await asyncio.to_thread(_digest, zipped)
        return await self._store(
            replace(upload, path=zipped, file_name=file_name, sha=sha, size=size, name=name)
        )

    async def _store(self, upload: Upload) -> Orchestration:
        """Unpack a zip and write the orchestration's row; start packaging if it needs it."""
        zip_path, file_name, sha, size = upload.path, upload.file_name, upload.sha, upload.size
        workspace_id, name, owner = upload.workspace_id, upload.name, upload.owner
        orch_id = new_id()
        info, requirements = await asyncio.to_thread(self._unpack, zip_path, orch_id, sha)
        stamp = now()
        orch = Orchestration(
            id=orch_id,
            name=name or Path(file_name).stem or orch_id,
            file_name=file_name,
            file_size=size,
            sha=sha,
            status=(
                OrchestrationStatus.PENDING_PACKAGING
                if requirements is not None
                else OrchestrationStatus.READY
            ),
            owner_id=owner,
            workspace_id=workspace_id,
            entrypoint=info,
            requirements=requirements,
            image_path="" if requirements is not None else "server",
            created_at=stamp,
            updated_at=stamp,
        )
        try:
            await self.store.call(self.store.insert_orchestration, orch)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, self.data.orchestration(orch_id), True)
            raise
        if requirements is not None:
            self._background.spawn(self._package(orch))
        return orch

    async def create_from_path(
        self, relative: str, workspace_id: int, name: str | None, owner: str
    ) -> Orchestration:
        """An orchestration from a folder, a `.py` or a `.ipynb` file under the Jupyter root."""
        if self.root_dir is None:
            raise WrongState("this server has no Jupyter root to take files from")
        target = resolve_inside(self.root_dir, relative)
        async with self._scratch_zip() as zipped:
            file_name = await asyncio.to_thread(bundle_path, target, zipped, self.limits)
            upload = Upload(zipped, file_name, "", 0, workspace_id, name, owner)
            return await self._store_zip(upload, zipped, file_name, name or target.name)

    @contextlib.asynccontextmanager
    async def _scratch_zip(self) -> AsyncIterator[Path]:
        """A new file in the scratch folder for a zip being built; removed afterwards."""
        fd, tmp = tempfile.mkstemp(prefix="bundle-", suffix=".zip", dir=self.data.tmp)
        os.close(fd)
        try:
            yield Path(tmp)
        finally:
            await asyncio.to_thread(Path(tmp).unlink, True)

    def _unpack(self, zip_path: Path, orch_id: str, sha: str) -> tuple[str, str | None]:
        """Validate, extract to a scratch folder, then move into place (all or nothing)."""
        scratch = self.data.unpacking(orch_id)
        part = self.data.archive(sha).with_suffix(f".{orch_id}.part")  # this upload's own
        info = extract_archive(zip_path, scratch, self.limits)
        try:
            if is_notebook(info.entrypoint):  # read by nbformat once, here, not at each run
                check_notebook(scratch / info.entrypoint, info.entrypoint)
            requirements = None
            if info.requirements is not None:
                requirements = (scratch / info.requirements).read_text("utf-8", "replace")
                check_requirements(requirements, self.allow_requirement_options)
                if not normalise_requirements(requirements):
                    requirements = None  # blanks and comments: no requirements at all
            archive = self.data.archive(sha)
            if not archive.exists():
                shutil.copyfile(zip_path, part)
                os.replace(part, archive)
            os.replace(scratch, self.data.orchestration(orch_id))
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            part.unlink(missing_ok=True)
            raise
        return info.entrypoint, requirements

    async def _package(self, orch: Orchestration) -> None:
        """Build (or reuse) the orchestration's environment, then start waiting tasks."""
        orch.status = OrchestrationStatus.PACKAGING
        await self.store.call(self.store.update_orchestration, orch)
        lines = normalise_requirements(orch.requirements or "")
        result = await self.packager.prepare(lines, is_notebook(orch.entrypoint))
        if await self.store.call(self.store.get_orchestration, orch.id) is None:
            return  # deleted while it was packaged: nothing of it is written again
        build_log = self.data.build_log(orch.id)  # the server's alone (0600): envs/ is open
        files = {build_log.name: result.log}
        await asyncio.to_thread(runfiles.write_files, str(build_log.parent), files)
        orch.env_key, orch.build_seconds, orch.error = result.key, result.seconds, result.error
        if result.error is None:
            orch.status, orch.image_path = OrchestrationStatus.READY, f"env:{result.key}"
        else:
            orch.status = OrchestrationStatus.ERROR
        await self.store.call(self.store.update_orchestration, orch)
        for task in await self.store.call(self.store.tasks_waiting_for, orch.id):
            await self.tasks.begin(task.id)


def _digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
