"""A Pi's ``--state`` directory: the deployed model, the one before it, and a blob cache.

Layout::

    state/
      cache/<sha256>          blobs fetched from the coordinator (verified by name)
      versions/v<N>/          manifest.json + the artifacts of model version N
      current -> versions/vN  the deployed version: what `pifed predict --state` uses
      previous -> versions/vM the version before it (kept for rollback)
      work/<tag>-<key>/       the train program in use and the candidate last evaluated
      inflight.json           the task being worked on, if any: after a native crash the
                              supervisor reports exactly that task as failed (edge.supervisor)

A deployment writes the new version into a temporary folder, fsyncs it, renames it into place,
then swaps the ``current`` symlink with ``os.replace`` (atomic on POSIX). A crash at any point
leaves ``current`` pointing at a complete version.

At start ``repair`` checks ``current`` and ``previous`` against their manifests' sha256 and drops
a damaged one (``current`` falls back to a good ``previous``, or to nothing), so the coordinator,
which pushes its deployed version to any Pi that reports another, sends it again. ``prune``
keeps the folder bounded: only the two versions, the work folders in use and the blobs they
hold survive it (the owner of a Pi with a small SD card should not have to clean up).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from model.manifest import MANIFEST_NAME, ManifestError, ModelManifest, sha256_file, write_atomic

LINKS = ("current", "previous")


class StateError(RuntimeError):
    """The state directory is unusable or a file in it is not what it claims to be."""


def version_problem(folder: Path) -> str | None:
    """What is wrong with an installed version folder (None when it is whole), checked against
    its own manifest so a bad SD card or an interrupted copy is never served."""
    if not (folder / MANIFEST_NAME).is_file():
        return f"{MANIFEST_NAME} is missing"
    try:
        manifest = ModelManifest.load(folder)
    except (ManifestError, OSError, UnicodeDecodeError) as e:
        return f"{MANIFEST_NAME} does not parse ({type(e).__name__})"
    present = {k: i for k, i in manifest.artifacts.items() if (folder / str(i["file"])).exists()}
    if not any(k != "train" for k in present):
        return "its model file (model_*.tflite) is missing"
    for info in present.values():
        path = folder / str(info["file"])
        if not path.is_file() or sha256_file(path) != info["sha256"]:
            return f"{path.name} is corrupted (its sha256 differs from the manifest's)"
    return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


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
        if final.is_dir() and version_problem(final) is not None:
            shutil.rmtree(final)  # a damaged copy from before: install it afresh
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

    # -- verification and clean-up ---------------------------------------------------------------
    def link_problem(self, link: str) -> str | None:
        """What is wrong with the version ``link`` (current or previous) names, or None when it
        is whole or absent."""
        path = self.root / link
        if not path.is_symlink():
            return None if not path.exists() else f"{link} is not a symlink"
        target = path.resolve()
        if not target.is_dir():
            return f"{link} -> {os.readlink(path)} is a broken symlink"
        return version_problem(target)

    def repair(self) -> list[str]:
        """Check both versions against their manifests and drop a damaged one, so nothing
        broken is served and the coordinator re-sends it; returns what was wrong, one line
        per version."""
        found = []
        for link in ("previous", "current"):
            problem = self.link_problem(link)
            if problem is None:
                continue
            path = self.root / link
            name = Path(os.readlink(path)).name if path.is_symlink() else link
            found.append(f"{link} version {name} is damaged: {problem}")
            target = path.resolve()
            if path.is_symlink() and target.parent == self.versions.resolve():
                _remove(target)
            _remove(path)  # the link (or whatever stands in its place)
        prev = self.root / "previous"
        if found and self.deployed_dir() is None and prev.is_symlink():
            self._point("current", prev.resolve())  # serve the good previous one meanwhile
            prev.unlink()
        return found

    def prune(self, keep_work: Iterable[Path] = ()) -> int:
        """Remove old versions, work folders and cached blobs that neither the deployed nor the
        previous version nor ``keep_work`` needs, so the folder stays bounded; returns the
        number of entries removed."""
        versions = {(self.root / ln).resolve() for ln in LINKS if (self.root / ln).is_symlink()}
        work = {Path(p).resolve() for p in keep_work}
        removed = 0
        work_root = self.root / "work"
        for parent, kept in ((self.versions, versions), (work_root, work)):
            for entry in parent.iterdir() if parent.is_dir() else ():
                if entry.resolve() not in kept:
                    _remove(entry)
                    removed += 1
        needed = {
            sha256_file(f)
            for d in versions | work
            if d.is_dir()
            for f in d.iterdir()
            if f.is_file()
        }
        for blob in self.cache.iterdir():
            if blob.name not in needed:
                _remove(blob)
                removed += 1
        return removed
