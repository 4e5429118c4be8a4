"""How much history a journals folder keeps: `chaos gameday run --keep N` keeps the N
newest game days under `--journals` (the one about to run among them), so that nights
remember each other without the folder growing for ever.

Only game-day folders (`gd-<UTC time>-<suffix>`, as the runner names them) are removed;
breaking-point sweeps (`limit-*`), verifications (`verify-*`) and anything else a user
keeps there are left alone.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

__all__ = ["GAMEDAY_FOLDER", "prune_gamedays"]

GAMEDAY_FOLDER = re.compile(r"^gd-\d{8}T\d{6}Z-[0-9a-f]{4}$")


def prune_gamedays(journals: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` newest game-day folders under `journals`; return those
    removed (oldest first). Their names sort by the time they started."""
    if keep < 0:
        raise ValueError(f"keep={keep}: give 0 or more game days")
    if not journals.is_dir():
        return []
    folders = sorted(p for p in journals.iterdir() if p.is_dir() and GAMEDAY_FOLDER.match(p.name))
    removed = folders[: max(0, len(folders) - keep)]
    for folder in removed:
        shutil.rmtree(folder)
    return removed
