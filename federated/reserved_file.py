"""A file whose place is taken before a database commit and whose content is written after it.

``pifed enroll`` stores the device and only then knows what to write (the certificate names the
device id the store assigned), but a certificate or request that cannot be written after the
commit would leave a device enrolled whose token was never shown, and a re-run refused. So the
file is reserved first: a temp file beside the target, with room for the content already
allocated and synced, which fails at once for a folder in the way, a read-only or full disk.
After the commit the content goes into the blocks already held and the temp file is renamed onto
the target. On any error before that, the temp file is removed and the target is untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

RESERVED_BYTES = 4096  # a certificate or request is well under 1 KB


class ReservedFile:
    """``with ReservedFile(target) as slot: <commit>; slot.fill(text)``."""

    def __init__(self, target: str | os.PathLike[str], size: int = RESERVED_BYTES) -> None:
        """Take the place now (raises OSError when the target's folder cannot hold it)."""
        self.target = Path(target)
        self._size = size
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.target.parent, prefix=f".{self.target.name}.")
        self._fd: int | None = fd
        self._tmp = Path(tmp)
        try:
            os.write(fd, b"\0" * size)
            os.fsync(fd)
        except BaseException:
            self._abandon()
            raise

    def fill(self, text: str) -> Path:
        """Write ``text`` into the reserved room and rename it onto the target."""
        data = text.encode("utf-8")
        if len(data) > self._size or self._fd is None:
            raise ValueError(f"{len(data)} bytes do not fit the {self._size} reserved")
        try:
            os.pwrite(self._fd, data, 0)
            os.ftruncate(self._fd, len(data))
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            os.replace(self._tmp, self.target)
        except BaseException:
            self._abandon()
            raise
        return self.target

    def _abandon(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ReservedFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._abandon()  # a no-op after fill(); otherwise the target stays as it was
