"""Check a profile's service before any run: start one instance of it against an idle
testbed and show how its startup log reads the instance's real lines.

`chaos testbed check-service PROFILE` prints, line by line, which pattern each line of
the instance's output matched and what was read from it (phase, elapsed, cause,
timestamp), whether it became ready (and what its readiness check answered), and what
the profile's startup log can never say of a failed startup: an expectation on that is
inconclusive in every run.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoskit.kit.redaction import redact_secrets
from chaoskit.kit.settings import RunSettings
from chaoskit.testbed.instances import launch_instance
from chaoskit.testbed.lifecycle import is_up, testbed_down, testbed_endpoints, testbed_up
from chaoskit.testbed.startup_log import LineRead
from chaoskit.testbed.state import read_state, testbed_home
from chaoskit.testbed.system import check_startable, system_under_test

__all__ = ["ServiceCheck", "check_service"]

_INSTANCE = "check-service"


@dataclass
class ServiceCheck:
    """What one instance of the service did, and how its startup log read it."""

    command: str
    folder: str
    lines: list[LineRead]
    report: dict[str, Any]
    cannot_report: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Ready, and (unless its log says nothing of phases) some line was read."""
        read = any(line.matched for line in self.lines) or "phases" in self.cannot_report
        return bool(self.report["ready"]) and read


def check_service(configuration: Mapping[str, Any]) -> ServiceCheck:
    """Start one instance of the configuration's `service` against the testbed (brought
    up for the check, and down after, when it is not running), observe its startup,
    stop it, and read its lines; KitError says what cannot be started."""
    settings = RunSettings.of(configuration)
    values = settings.values()
    system = system_under_test(settings.service or None)
    check_startable(system, values)
    started = not is_up(read_state())
    # an idle testbed, its long-running instance the reference service: the check is
    # of this one instance alone
    state = testbed_up(started_by="check-service") if started else read_state()
    try:
        instance = launch_instance(
            _INSTANCE,
            system,
            {**values, **testbed_endpoints(state)},
            testbed_home() / "instances",
        )
        try:
            report = instance.observe_startup(settings.startup_observe_timeout_s)
        finally:
            instance.stop()
        output = instance.log_path.read_text(errors="replace").splitlines()
    finally:
        if started:
            testbed_down()
    return ServiceCheck(
        command=redact_secrets(shlex.join(instance.process.args)),
        folder=str(Path(system.cwd or ".").resolve()),
        lines=system.startup_log.trace(output, instance.started_at),
        report=report,
        cannot_report=system.startup_log.cannot_report(),
    )
