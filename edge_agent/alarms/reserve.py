"""Disk space kept back for alarms: a file made in the data folder at start and deleted when the
disk fills, so that the events raised while it is full can still be written (each is a few kB).

Media already make room for alarms by being dropped oldest first (the outbox and the local
store do that); the reserve is for when nothing is left to drop and another program, a log or
a core dump, took the rest. It is made again once the disk has room for it twice over.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
# Thousands of event JSONs, and more than the outbox's WAL (at most 1 MiB, publish/outbox.py): a
# checkpoint copies the WAL into the file, growing it, before a new row fits. A quarter of a
# filesystem too small for that much (a test's tmpfs).
RESERVE_BYTES = 4 * 1024 * 1024
NAME = ".edge-agent-reserve"


def reserve_for(sink: object) -> SpaceReserve | None:
    """The reserve beside a sink's files (its `data_dir`); None for a sink that keeps none."""
    folder = getattr(sink, "data_dir", None)
    return SpaceReserve(folder) if folder is not None else None


class SpaceReserve:
    def __init__(self, folder: str | Path, size: int = RESERVE_BYTES) -> None:
        self.folder = Path(folder)
        self.path = self.folder / NAME
        self.size = size
        self.released = 0  # times the reserve was given to the disk

    def _want(self) -> int:
        return min(self.size, shutil.disk_usage(self.folder).total // 4)

    def ensure(self) -> bool:
        """Make the reserve unless it is there; only when the disk has room for it twice over.
        True when it is in place."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            want = self._want()
            if self.path.is_file() and self.path.stat().st_size >= want:
                return True
            if shutil.disk_usage(self.folder).free < 2 * want:
                return False
            with open(self.path, "wb") as f:
                os.posix_fallocate(f.fileno(), 0, want)  # real blocks: a sparse file would reserve nothing
        except OSError as exc:
            log.warning("no disk reserve in %s: %s", self.folder, exc)
            self.path.unlink(missing_ok=True)
            return False
        return True

    def release(self) -> int:
        """Give the reserve's space back to the disk; the bytes freed (0 when there was none)."""
        try:
            size = self.path.stat().st_size
            self.path.unlink()
        except OSError:
            return 0
        self.released += 1
        return size
