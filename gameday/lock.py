"""One game day at a time on a target: an exclusive lock file, released by the kernel
when the holder exits, however it exits."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaoskit.kit.errors import KitError

__all__ = ["LockHeld", "gameday_lock"]


class LockHeld(KitError):
    """Another game day holds the target."""


@contextmanager
def gameday_lock(path: Path, holder: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another game day"
            raise LockHeld(
                f"{other} is running on this target (lock {path}); wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"game day {holder} (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
