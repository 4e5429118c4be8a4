"""The knobs an experiment declares for breaking-point sweeps (`chaos gameday limit`).

In the kit's extension, `"knobs": {"flood_connections": {"pressure": "up", "range": [1,
200], "unit": "connections"}}`: a configuration key, which way more pressure lies (`up`:
a larger value, `down`: a smaller one), the range worth sweeping, its unit, and
optionally the `resolution` the breaking point is found to (default 1 for a range of
whole numbers, 0.1 otherwise). The first knob is the one a sweep takes by default.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from chaoskit.kit.errors import KitError, shown

__all__ = ["Knob", "KnobError", "read_knobs"]

_FIELDS = ("pressure", "range", "unit", "resolution")


class KnobError(KitError):
    """A knob declaration cannot be used; the message names the field."""


@dataclass(frozen=True)
class Knob:
    name: str
    pressure: str  # "up": more pressure is a larger value; "down": a smaller one
    low: float
    high: float
    unit: str
    resolution: float
    whole: bool

    def value(self, number: float) -> int | float:
        """`number` as the knob takes it: whole, or rounded to the resolution's digits."""
        if self.whole:
            return round(number)
        digits = max(0, -math.floor(math.log10(self.resolution)))
        return round(number, digits)

    def least_and_most_pressure(self, low: float, high: float) -> tuple[float, float]:
        return (low, high) if self.pressure == "up" else (high, low)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_knobs(declared: Any, configuration_keys: Collection[str], where: str) -> dict[str, Knob]:
    """The knobs of one experiment, checked; KnobError names the first fault."""
    if not isinstance(declared, Mapping):
        raise KnobError(f"{where}: give an object of knob name to its declaration")
    knobs = {}
    for name, spec in declared.items():
        at = f"{where}.{name}"
        if name not in configuration_keys:
            raise KnobError(f"{at}: not a configuration key of the experiment: declare it")
        if not isinstance(spec, Mapping):
            raise KnobError(f'{at}: give {{"pressure": "up", "range": [low, high], "unit": ...}}')
        unknown = sorted(set(spec) - set(_FIELDS))
        if unknown:
            raise KnobError(f"{at}: unknown {', '.join(unknown)}; give {', '.join(_FIELDS)}")
        if spec.get("pressure") not in ("up", "down"):
            raise KnobError(f"{at}.pressure: {shown(spec.get('pressure'))}: give up or down")
        bounds = spec.get("range")
        if not (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(map(_number, bounds))
            and bounds[0] < bounds[1]
        ):
            raise KnobError(f"{at}.range: {shown(bounds)}: give [low, high], numbers, low < high")
        whole = all(isinstance(b, int) for b in bounds)
        resolution = spec.get("resolution", 1 if whole else 0.1)
        if not _number(resolution) or resolution <= 0:
            raise KnobError(f"{at}.resolution: {shown(resolution)}: give a number > 0")
        unit = spec.get("unit", "")
        if not isinstance(unit, str):
            raise KnobError(f"{at}.unit: give text, e.g. connections or s")
        knobs[name] = Knob(
            name,
            spec["pressure"],
            float(bounds[0]),
            float(bounds[1]),
            unit,
            float(resolution),
            whole,
        )
    return knobs
