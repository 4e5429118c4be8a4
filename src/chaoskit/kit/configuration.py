"""An activity's setting: the argument it was given, else the configuration's, else a
one-line refusal saying where to set it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaoskit.kit.errors import KitError

__all__ = ["given_or_configured"]


def given_or_configured(
    given: Any, configuration: Mapping[str, Any] | None, *keys: str, argument: str, hint: str
) -> Any:
    """`given` when it is set, else the first of the configuration's `keys` that is set.

    Raises KitError naming `argument` and the keys, with `hint` saying who fills them in.
    """
    if given not in (None, ""):
        return given
    configuration = configuration or {}
    for key in keys:
        if configuration.get(key) not in (None, ""):
            return configuration[key]
    names = " or ".join(f"`{k}`" for k in keys)
    raise KitError(f"{argument} is not set: pass it, or set {names} in the configuration ({hint})")
