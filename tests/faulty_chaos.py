"""The `chaos` command with one fault injected into the kit, for the fail-closed tests.

    python -m tests.faulty_chaos MODULE:ATTRIBUTE EXCEPTION WHEN [chaos arguments ...]

makes MODULE's ATTRIBUTE (`Class.method` reaches into a class) raise EXCEPTION (the name
of a builtin exception, or `UnforeseenError`, a class nobody catches by name) from the
moment WHEN says: `always`, or `flood` (once a connection flood runs in the process:
during the method), then runs `chaos` with the remaining arguments as a user does.
"""

from __future__ import annotations

import builtins
import importlib
import sys
from typing import Any

from chaoskit.kit import registry


class UnforeseenError(Exception):
    """An exception type no code of the kit names."""


def inject(where: str, exception: str, when: str) -> None:
    module_name, attribute = where.split(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    working = getattr(owner, name)  # it must exist: a fault injected nowhere proves nothing
    kind = UnforeseenError if exception == "UnforeseenError" else getattr(builtins, exception)
    if when not in ("always", "flood"):
        raise SystemExit(f"WHEN: {when!r}: give always or flood")

    def broken(*args: Any, **kwargs: Any) -> Any:
        if when == "flood" and registry.lookup("flood", "flood") is None:
            return working(*args, **kwargs)
        raise kind(f"injected into {attribute}")

    setattr(owner, name, broken)


if __name__ == "__main__":
    where, exception, when, *arguments = sys.argv[1:]
    inject(where, exception, when)
    from chaostoolkit.__main__ import cli

    sys.argv = ["chaos", *arguments]
    sys.exit(cli())
