"""Where the testbed keeps its files, and the state file that records what runs.

`.testbed/state.json` records the endpoints and process ids of a running testbed. It
holds the application password, so it is written owner-only, and always whole
(written to a temporary file, then renamed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chaoskit.kit.files import write_json_atomically

__all__ = ["read_state", "remove_state", "target_lock_path", "testbed_home", "write_state"]


def testbed_home() -> Path:
    """The testbed's folder: `$TESTBED_HOME`, or `.testbed/` in the current directory."""
    return Path(os.environ.get("TESTBED_HOME") or Path.cwd() / ".testbed").resolve()


def target_lock_path(target: str) -> Path:
    """The lock that keeps one run at a time on `target` (`embedded` or `staging`)."""
    return testbed_home() / f"{target}.lock"


def _state_path() -> Path:
    return testbed_home() / "state.json"


def read_state() -> dict[str, Any] | None:
    """The recorded state of the testbed, or None when none is recorded."""
    try:
        return json.loads(_state_path().read_text())
    except FileNotFoundError:
        return None


def write_state(state: dict[str, Any]) -> None:
    write_json_atomically(_state_path(), state, mode=0o600)


def remove_state() -> None:
    _state_path().unlink(missing_ok=True)
