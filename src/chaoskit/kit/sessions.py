"""How the kit's database sessions are named: every one carries an application_name
starting with `chaos-`, so that the timeline can tell them apart and a cleanup can find
what a killed run left."""

from __future__ import annotations

__all__ = ["KIT_PREFIX", "OBSERVER_APPLICATION"]

KIT_PREFIX = "chaos-"
# a run's one observing session: never a leftover, it ends with its process
OBSERVER_APPLICATION = f"{KIT_PREFIX}observer"
