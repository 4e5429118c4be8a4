"""Where the kit's commands print: stdout, as wide as a pipe needs."""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["output_console"]


def output_console() -> Console:
    """A console for stdout; piped output gets room for full URLs and paths rather than
    rich's 80-column default."""
    return Console(width=None if sys.stdout.isatty() else 200)
