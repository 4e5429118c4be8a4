"""Fail closed: a failure inside the kit's controls, of any exception type, at any hook,
stops the run; never a run that goes on unguarded while the console looks normal
(Chaos Toolkit logs a control's exception at DEBUG and goes on). And interruptions at
the run's edges: pressure released first, rollbacks never cut short (slow).

Each fault is injected into a real `chaos run` (`tests/faulty_chaos.py`) of a small
flood held under every safety net of the kit, on a testbed kept up for the module; the
exception type is drawn at random for each hook (the seed is in every message).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Testbed, eventually, kept_testbed, leftovers, sessions
from tests.test_testbed import chaos_in_background

pytestmark = pytest.mark.slow
EXPERIMENT = "tests/experiments/guarded-flood.json"
SEED = random.randrange(1_000_000)
EXCEPTIONS = (
    "TypeError",
    "KeyError",
    "ValueError",
    "AttributeError",
    "ZeroDivisionError",
    "RuntimeError",
    "OSError",
    "RecursionError",
    "AssertionError",
    "LookupError",
    "NotImplementedError",
    "UnicodeError",
    "UnforeseenError",
)
HELD = {"hold_s": 60}  # the method holds its flood a minute: long enough to be stopped


@dataclass(frozen=True)
class Fault:
    """Where a fault goes (`module:attribute`), from when (`always` or once the `flood`
    runs), what the run is then (`phase`), and the run's configuration."""

    hook: str
    where: str
    phase: str  # before: nothing ran; method: stopped with its rollbacks; after; cleanup
    when: str = "always"
    settings: dict[str, Any] = field(default_factory=dict)


FAULTS = [
    # chaos run's validation: refused in one line, not even a journal
    Fault("kit-validate-control", "chaoskit.verification.control:read_extension", "validate"),
    # before the method: the run is aborted, nothing runs, nothing to undo
    Fault(
        "kit-before-experiment-configuration",
        "chaoskit.verification.control:settle_configuration",
        "before",
    ),
    Fault(
        "kit-before-experiment-guardrails",
        "chaoskit.verification.control:check_guardrails",
        "before",
    ),
    Fault(
        "kit-before-experiment-target-lock", "chaoskit.verification.control:TargetLock", "before"
    ),
    Fault("testbed-before-experiment", "chaoskit.testbed.control:testbed_endpoints", "before"),
    Fault("kit-before-method-observer", "chaoskit.verification.control:open_observer", "before"),
    Fault("kit-before-method-capacity", "chaoskit.verification.control:capacity_at_rest", "before"),
    Fault(
        "kit-before-method-stop-conditions",
        "chaoskit.verification.control:arm_stop_conditions",
        "before",
    ),
    Fault(
        "kit-before-method-first-sample",
        "chaoskit.verification.timeline:connector_load",
        "before",
        settings=HELD,
    ),
    Fault(
        "kit-before-method-watchdog",
        "chaoskit.verification.supervision:RunSupervisor.begin_method",
        "before",
    ),
    # during the method: the watchers' threads; the run stops with its rollbacks
    Fault(
        "kit-timeline-sampler-thread",
        "chaoskit.verification.timeline:connector_load",
        "method",
        "flood",
        HELD,
    ),
    Fault(
        "kit-stop-conditions-thread",
        "chaoskit.verification.stop_conditions:execute_activity",
        "method",
        "flood",
        {**HELD, "stop_conditions": {"every_s": 0.5}},
    ),
    Fault(
        "kit-watchdog-thread",
        "chaoskit.verification.supervision:RunSupervisor.interrupt",
        "method",
        settings={**HELD, "guardrails": {"max_run_duration_s": 2}},
    ),
    # after the method: the rollbacks all play; the verdict says the kit failed
    Fault(
        "kit-after-method",
        "chaoskit.verification.stop_conditions:_SupervisedGuardian.terminate",
        "after",
    ),
    Fault(
        "kit-before-rollback",
        "chaoskit.verification.supervision:RunSupervisor.hold_signals",
        "after",
    ),
    Fault(
        "kit-after-rollback",
        "chaoskit.verification.supervision:RunSupervisor.release_signals",
        "after",
    ),
    Fault("kit-after-experiment", "chaoskit.verification.control:decide_verdict", "after"),
    Fault("testbed-after-experiment", "chaoskit.testbed.control:_stop_leftovers", "after"),
    Fault("testbed-cleanup", "chaoskit.testbed.control:_restore_database_capacity", "cleanup"),
]


@pytest.fixture(scope="module")
def kept(kit_dirs: Callable[[str], Path]) -> Iterator[Testbed]:
    with kept_testbed(kit_dirs("fail-closed") / ".testbed") as testbed:
        yield testbed


@pytest.fixture
def testbed(kept: Testbed, monkeypatch: pytest.MonkeyPatch) -> Testbed:
    monkeypatch.setenv("TESTBED_HOME", str(kept.home))  # its processes are not leftovers
    return kept


@dataclass
class FaultyRun:
    code: int
    output: str
    journal: dict[str, Any] | None  # none when refused at validation
    most_flood_sessions: int  # the most connections the flood held, seen while it ran

    @property
    def kit(self) -> dict[str, Any]:
        return self.journal["startup_chaos_kit"]

    def statuses(self, part: str) -> dict[str, str | None]:
        return {r["activity"]["name"]: r.get("status") for r in self.journal[part]}


def run_with_fault(testbed: Testbed, fault: Fault, exception: str, tmp_path: Path) -> FaultyRun:
    var_file = tmp_path / "settings.json"
    var_file.write_text(json.dumps({"configuration": fault.settings}))
    journal = tmp_path / "journal.json"
    # past the validation (its own case), so that the fault reaches the hook under test
    validation = [] if fault.phase == "validate" else ["--no-validation"]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.faulty_chaos",
            fault.where,
            exception,
            fault.when,
            "--no-version-check",
            "--no-log-file",
            "run",
            *validation,
            "--var-file",
            str(var_file),
            "--journal-path",
            str(journal),
            EXPERIMENT,
        ],
        cwd=REPO,
        env={**os.environ, "TESTBED_HOME": str(testbed.home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    most = 0
    while process.poll() is None:  # what the flood held, all along the run
        most = max(most, sessions(testbed.admin_dsn, "chaos-flood-"))
    output = process.stdout.read() if process.stdout else ""
    written = json.loads(journal.read_text()) if journal.exists() else None
    return FaultyRun(process.wait(), output, written, most)


@pytest.mark.parametrize("fault", FAULTS, ids=[f.hook for f in FAULTS])
def test_a_fault_in_any_hook_of_the_kits_controls_stops_the_run(
    testbed: Testbed, tmp_path: Path, fault: Fault
) -> None:
    exception = random.Random(f"{SEED}-{fault.hook}").choice(EXCEPTIONS)
    where = f"seed {SEED}: {exception} in {fault.where}"
    run = run_with_fault(testbed, fault, exception, tmp_path)
    assert "Traceback" not in run.output, where
    injected = f"injected into {fault.where.split(':')[1]}"
    said = [line for line in run.output.splitlines() if injected in line and "Verdict" not in line]
    assert said, (where, run.output)  # the user is told, in a line of its own
    if fault.phase == "validate":
        assert run.code == 1 and run.journal is None, where
        assert run.most_flood_sessions == 0, where
    elif fault.phase == "before":
        assert (run.code, run.kit["verdict"]) == (1, "aborted"), where
        assert injected in run.kit["reason"] and run.kit["reason"].endswith("nothing ran"), where
        assert run.journal["run"] == [] and run.journal["rollbacks"] == [], where
        assert run.most_flood_sessions == 0, where  # the flood never held a connection
    elif fault.phase == "method":
        assert (run.code, run.kit["verdict"]) == (1, "aborted"), where
        assert injected in run.kit["reason"] and "during the method" in run.kit["reason"], where
        # stopped as the flood took hold, or while it was held: never left to run its course
        assert "flood-database-connections" in run.statuses("run"), where
        assert run.statuses("run").get("hold-the-flood") is None, where
        assert run.statuses("rollbacks") == {"stop-connection-flood": "succeeded"}, where
        released = run.kit["released_at_interruption"]["released"]
        assert released == ["flood 'flood'"], where  # at once, before anything else
    else:  # after the method: every rollback played, and the run is not a pass
        assert run.statuses("rollbacks") == {"stop-connection-flood": "succeeded"}, where
        if fault.phase == "after":
            assert run.code == 1, where
            assert run.kit["verdict"] in ("aborted", "error"), where
    assert eventually(lambda: sessions(testbed.admin_dsn, "chaos-") == 0), where
    assert eventually(lambda: leftovers(testbed.home) == []), where


def test_without_a_fault_the_same_run_is_tolerated(testbed: Testbed, tmp_path: Path) -> None:
    """The other side of the property: the fixture's run passes when nothing breaks."""
    # a fault that never fires: no flood is running while the configuration settles
    never = Fault("none", "chaoskit.verification.control:settle_configuration", "-", "flood")
    run = run_with_fault(testbed, never, "TypeError", tmp_path)
    assert (run.code, run.kit["verdict"]) == (0, "tolerated"), run.kit["reason"]
    assert run.most_flood_sessions > 0  # the poll sees a flood when there is one
    assert run.kit["stop_conditions"]["stopped_by"] is None


# --- interruptions at the edges ---------------------------------------------------------


def _read_until(process: subprocess.Popen, text: str) -> str:
    """The run's output up to the line containing `text` (waiting for it)."""
    seen = []
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"the run ended without saying {text!r}:\n{''.join(seen)}")


def test_sigterm_during_the_rollbacks_waits_until_every_rollback_played(
    testbed: Testbed, tmp_path: Path
) -> None:
    journal_path = tmp_path / "journal.json"
    process = chaos_in_background(
        "run",
        "--journal-path",
        str(journal_path),
        EXPERIMENT,
        output=True,
        home=testbed.home,
        CHAOS_ROLLBACK_PAUSE_S="3",
    )
    # the rollbacks began: the flood's undo pauses before it plays
    _read_until(process, "Pausing before next activity")
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 1 and "Traceback" not in output
    journal = json.loads(journal_path.read_text())
    kit = journal["startup_chaos_kit"]
    rollback = journal["rollbacks"][0]
    assert (rollback["activity"]["name"], rollback["status"]) == (
        "stop-connection-flood",
        "succeeded",
    )
    assert rollback["output"]["running"] is True and rollback["output"]["released"] > 0
    assert (journal["status"], kit["verdict"]) == ("interrupted", "aborted")
    assert kit["reason"] == "interrupted by SIGTERM during the rollbacks"
    assert kit["interrupted_by"] == "SIGTERM"
    assert sessions(testbed.admin_dsn, "chaos-") == 0
    assert eventually(lambda: leftovers(testbed.home) == [])


def test_an_interrupted_run_releases_its_pressure_before_waiting_for_observers(
    testbed: Testbed, tmp_path: Path
) -> None:
    """As cloudsql-resource-pressure's: CPU sessions and the exclusive lock are released
    at the interruption, not once the background observer's window has passed."""
    journal_path = tmp_path / "journal.json"
    process = chaos_in_background(
        "run",
        "--journal-path",
        str(journal_path),
        "tests/experiments/watched-pressure.json",
        output=True,
        home=testbed.home,
    )
    # the observer samples in the background, the CPU sessions and the lock are held
    _read_until(process, "Probe: hold-the-pressure")
    assert sessions(testbed.admin_dsn, "chaos-cpu-") > 0
    assert sessions(testbed.admin_dsn, "chaos-lock-") > 0
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 1 and "Traceback" not in output
    journal = json.loads(journal_path.read_text())
    released = journal["startup_chaos_kit"]["released_at_interruption"]
    assert sorted(released["released"]) == ["cpu 'cpu'", "lock 'lock'"]
    (observer,) = [
        r for r in journal["run"] if r["activity"]["name"] == "server-pressure-meanwhile"
    ]
    assert observer["status"] == "succeeded"  # it was waited for, its window whole
    # released, and done releasing, while the observer still ran
    assert datetime.fromisoformat(released["done_at"]) < datetime.fromisoformat(observer["end"])
    # the rollbacks then record what was released
    outputs = {r["activity"]["name"]: r["output"] for r in journal["rollbacks"]}
    assert outputs["stop-cpu-pressure"]["running"] is True
    assert outputs["stop-lock-pressure"]["running"] is True
    assert journal["startup_chaos_kit"]["verdict"] == "aborted"
    assert sessions(testbed.admin_dsn, "chaos-") == 0
    assert eventually(lambda: leftovers(testbed.home) == [])
