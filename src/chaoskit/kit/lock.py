"""One run at a time on a target: an exclusive lock file that a game day holds for its
whole length and a plain `chaos run` for its own, released by the kernel when the holder
exits, however it exits.

A game day runs its experiments in its own process: the kit's control sees from the lock
file that this very process holds it, and goes on.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from chaoskit.kit.errors import KitError

__all__ = ["LockHeld", "TargetLock"]


class LockHeld(KitError):
    """Another run holds the target."""


class TargetLock:
    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        self._fd: int | None = None

    def _holder_pid(self, fd: int) -> int | None:
        text = os.pread(fd, 200, 0).decode(errors="replace")
        marker = "(pid "
        if marker not in text:
            return None
        try:
            return int(text.split(marker, 1)[1].split(")", 1)[0])
        except ValueError:
            return None

    def acquire(self) -> bool:
        """Take the lock; False when this process holds it already (a game day's run).
        LockHeld says which run holds it, when another does."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = self._holder_pid(fd)
            other = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another run"
            os.close(fd)
            if pid == os.getpid():
                return False
            raise LockHeld(
                f"{other} is running on this target (lock {self.path}); wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.holder} (pid {os.getpid()})".encode(), 0)
        self._fd = fd
        return True

    def held_by(self) -> str | None:
        """Who holds the lock now, without taking it (nor creating its file): None when
        nobody does."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another run"
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def __enter__(self) -> TargetLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
