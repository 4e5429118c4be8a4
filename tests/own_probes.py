"""A team's own tolerance, as a user writes one to judge chaostoolkit-google-cloud-
platform's `get_slo_burn_rate`, whose output is Monitoring's time series as dictionaries
(newest point first)."""

from __future__ import annotations

from typing import Any


def burn_rate_at_most(threshold: float, value: list[dict[str, Any]] | None = None) -> bool:
    """Within while the newest burn rate is at most `threshold` (or none is shown).
    `value` has a default: chaoslib validates a tolerance before it has a value."""
    points = [point for series in value or [] for point in series.get("points") or []]
    return not points or points[0]["value"]["double_value"] <= threshold
