"""How `chaos gameday` commands exit, by outcome: a module of its own so that the CLI,
which the chaos command loads before any command, need not import the game day."""

from __future__ import annotations

__all__ = ["EXIT_CODES"]

EXIT_CODES = {
    "as-expected": 0,
    "not-as-expected": 1,
    "usage": 2,
    "skipped": 3,
    "locked": 4,
    "interrupted": 130,
}
