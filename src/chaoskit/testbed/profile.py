"""The embedded testbed's compressed time, as a var-file: the values experiments take on
the testbed for every shared key they leave unset (`embedded-profile.json`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["EMBEDDED_PROFILE", "embedded_profile"]

EMBEDDED_PROFILE = Path(__file__).with_name("embedded-profile.json")


def embedded_profile() -> dict[str, Any]:
    """The profile's configuration values, by key."""
    return json.loads(EMBEDDED_PROFILE.read_text())["configuration"]
