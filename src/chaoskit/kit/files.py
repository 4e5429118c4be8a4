"""Files the kit writes whole or not at all (journals, summaries, the testbed's state)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["unwritable", "unwritable_folder", "write_json_atomically"]


def write_json_atomically(path: Path, document: Any, mode: int = 0o644) -> None:
    """Write `document` as JSON to `path` whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        json.dump(document, out, indent=2, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def unwritable(path: Path) -> str | None:
    """Why `path` could not be written (a folder, a read-only or missing place), or None;
    asked before a long run, so that its output is not lost at the end."""
    if path.is_dir():
        return "it is a folder"
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not a folder you may write to"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    return None


def unwritable_folder(path: Path) -> str | None:
    """Why `path` could not be a folder to write into (a file, a read-only or missing
    place), or None; asked before a long run, so that its output is not lost at the end."""
    if path.exists() and not path.is_dir():
        return "it is a file, not a folder"
    folder = path
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not a folder you may write to"
    return None
