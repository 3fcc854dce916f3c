"""A Pi's ``--state`` directory: the deployed model, the one before it, and a blob cache.

Layout::

    state/
      cache/<sha256>          blobs fetched from the coordinator (verified by name)
      versions/v<N>/          manifest.json + the artifacts of model version N
      current -> versions/vN  the deployed version: what `pifed predict --state` uses
      previous -> versions/vM the version before it (kept for rollback)
      inflight.json           the task being worked on, if any: after a native crash the
                              supervisor reports exactly that task as failed (edge.supervisor)

A deployment writes the new version into a temporary folder, fsyncs it, renames it into place,
then swaps the ``current`` symlink with ``os.replace`` (atomic on POSIX). A crash at any point
leaves ``current`` pointing at a complete version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from model.manifest import MANIFEST_NAME, ModelManifest, write_atomic


class StateError(RuntimeError):
    """The state directory is unusable or a file in it is not what it claims to be."""


class DeviceState:
    """The on-disk state of one Pi."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.cache = self.root / "cache"
        self.versions = self.root / "versions"
        for d in (self.cache, self.versions):
            d.mkdir(parents=True, exist_ok=True)

    # -- blob cache ----------------------------------------------------------------------------
    def cached(self, digest: str) -> bytes | None:
        """A cached blob, or None when absent or corrupted (it is then refetched)."""
        path = self.cache / digest
        if not path.is_file():
            return None
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            path.unlink()
            return None
        return data

    def cache_put(self, digest: str, data: bytes) -> None:
        """Store a verified blob."""
        if hashlib.sha256(data).hexdigest() != digest:
            raise StateError(f"blob does not hash to {digest[:12]}…; refusing to cache it")
        write_atomic(self.cache / digest, data)

    def materialise(self, folder: Path, files: dict[str, bytes]) -> Path:
        """Write a model folder (manifest + artifacts) for evaluation or deployment."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            if "/" in name or name.startswith(".") or not name:
                raise StateError(f"refusing file name {name!r} from the coordinator")
            write_atomic(folder / name, data)
        ModelManifest.load(folder)  # must parse before anything uses it
        return folder

    # -- the task in flight ----------------------------------------------------------------------
    @property
    def inflight_path(self) -> Path:
        """Where the task being worked on is noted."""
        return self.root / "inflight.json"

    def mark_inflight(self, task_id: str, kind: str) -> None:
        """Note the task about to run (atomically), so a crash inside it can be reported."""
        write_atomic(self.inflight_path, json.dumps({"task": task_id, "kind": kind}).encode())

    def clear_inflight(self) -> None:
        """The task was answered: nothing to report if the process dies now."""
        self.inflight_path.unlink(missing_ok=True)

    def take_inflight(self) -> tuple[str, str] | None:
        """The (task id, kind) a dead process was working on, forgotten once read."""
        try:
            note = json.loads(self.inflight_path.read_text(encoding="utf-8"))
            task, kind = note["task"], note["kind"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        finally:
            self.clear_inflight()
        return (task, kind) if isinstance(task, str) and isinstance(kind, str) else None

    # -- deployment ----------------------------------------------------------------------------
    def deployed_dir(self) -> Path | None:
        """The folder of the deployed version, or None before the first deployment."""
        cur = self.root / "current"
        return cur.resolve() if cur.is_symlink() and cur.resolve().is_dir() else None

    def deployed_version(self) -> int | None:
        """The deployed version number, or None."""
        d = self.deployed_dir()
        return int(d.name[1:]) if d is not None else None

    def install(self, version: int, files: dict[str, bytes]) -> Path:
        """Install version N and make it current atomically; the old current becomes previous."""
        if MANIFEST_NAME not in files:
            raise StateError("a deployment must include manifest.json")
        final = self.versions / f"v{version}"
        if not final.is_dir():
            staging = self.versions / f".staging-v{version}"
            shutil.rmtree(staging, ignore_errors=True)
            self.materialise(staging, files)
            manifest = ModelManifest.load(staging)
            for kind, info in manifest.artifacts.items():
                if info["file"] in files:
                    manifest.verify(staging / info["file"], kind)
            fd = os.open(staging, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(staging, final)
        old = self.deployed_dir()
        self._point("current", final)
        if old is not None and old != final.resolve():
            self._point("previous", old)
        return final

    def _point(self, link: str, target: Path) -> None:
        tmp = self.root / f".{link}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(target, self.root), tmp)
        os.replace(tmp, self.root / link)
