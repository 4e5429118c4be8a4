"""Where the testbed keeps its files, and the state file that records what runs.

`.testbed/state.json` records the endpoints and process ids of a running testbed. It
holds the application password, so it is written owner-only, and always whole
(written to a temporary file, then renamed). A `TESTBED_HOME` that is not a folder, or
a state file that is not one the kit wrote (corrupt, cut short), is one line naming it
and the fix.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from chaoskit.kit.errors import KitError, shown
from chaoskit.kit.files import write_json_atomically

__all__ = [
    "StateError",
    "read_state",
    "remove_state",
    "target_lock_path",
    "testbed_home",
    "write_state",
]

# a target's name becomes a file name: a plain name only, never a path
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class StateError(KitError):
    """The testbed's folder or its state file cannot be used; the message says which."""


def testbed_home() -> Path:
    """The testbed's folder: `$TESTBED_HOME`, or `.testbed/` in the current directory."""
    home = Path(os.environ.get("TESTBED_HOME") or Path.cwd() / ".testbed").resolve()
    if home.exists() and not home.is_dir():
        raise StateError(
            f"TESTBED_HOME={home} is not a folder: point it at a folder (or unset it for "
            ".testbed/ in the current one)"
        )
    return home


def target_lock_path(target: str) -> Path:
    """The lock that keeps one run at a time on `target` (`embedded` or `staging`)."""
    if not isinstance(target, str) or not _PLAIN_NAME.fullmatch(target):
        raise StateError(f"target {shown(target)} is not a plain name: use embedded or staging")
    return testbed_home() / f"{target}.lock"


def _state_path() -> Path:
    return testbed_home() / "state.json"


def read_state() -> dict[str, Any] | None:
    """The recorded state of the testbed, or None when none is recorded."""
    path = _state_path()
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        why = getattr(error, "strerror", None) or type(error).__name__
        raise StateError(
            f"{path} is not a testbed's state ({why}: corrupt or cut short): if no testbed "
            "runs, remove it; if one does, stop its processes first"
        ) from None
    # the service's part comes last: a testbed killed while it started has none
    if (
        not isinstance(state, dict)
        or not all(isinstance(state.get(part), dict) for part in ("postgres", "connector"))
        or not isinstance(state.get("service", {}), dict)
    ):
        raise StateError(
            f"{path} is not a testbed's state (not the object the kit writes): if no testbed "
            "runs, remove it; if one does, stop its processes first"
        )
    return state


def write_state(state: dict[str, Any]) -> None:
    write_json_atomically(_state_path(), state, mode=0o600)


def remove_state() -> None:
    _state_path().unlink(missing_ok=True)
