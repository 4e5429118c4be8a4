"""Breaking points: the sweep's bracketing and bisection, and `chaos gameday limit` on
the real testbed, whose answer must equal the boundary computed from live capacity."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoskit.gameday.limit import bisect_breaking_point, most_probes
from chaoskit.report.report import write_reports
from chaoskit.testbed.baseline import find_drift
from chaoskit.testbed.state import read_state
from chaoskit.verification.knobs import Knob, KnobError, read_knobs
from tests.browser import open_in_chromium
from tests.conftest import REPO, Testbed, eventually, kept_testbed, leftovers, sessions
from tests.test_testbed import chaos, chaos_in_background

FLOOD = Knob("flood_connections", "up", 1, 1000, "connections", 1, True)
CAPACITY = Knob("connector_connections_per_instance", "down", 5, 100, "connections", 1, True)
DELAY = Knob("connector_scaling_delay_s", "up", 0.0, 60.0, "s", 0.5, False)


def physics(breaking_point: float, knob: Knob) -> tuple[Callable[[float], str], list[float]]:
    """A system that holds up to `breaking_point` pressure; the values it was probed at."""
    probed: list[float] = []

    def probe(value: float) -> str:
        probed.append(value)
        holds = value <= breaking_point if knob.pressure == "up" else value >= breaking_point
        return "tolerated" if holds else "reproduced"

    return probe, probed


@pytest.mark.parametrize("breaking_point", [1, 2, 417, 999])
def test_a_range_of_1000_is_resolved_to_1_in_12_probes(breaking_point: int) -> None:
    probe, probed = physics(breaking_point, FLOOD)
    sweep = bisect_breaking_point(probe, FLOOD, 1, 1000)
    assert (sweep.status, sweep.breaking_point, sweep.broken_at) == (
        "found",
        breaking_point,
        breaking_point + 1,
    )
    assert len(probed) <= 12


@pytest.mark.parametrize(
    ("knob", "low", "high"),
    [(FLOOD, 1, 1000), (CAPACITY, 5, 100), (DELAY, 0.0, 60.0), (FLOOD, 1, 2)],
)
@pytest.mark.parametrize("repeat", [1, 3])
def test_a_dry_run_counts_the_most_probes_a_sweep_takes(
    knob: Knob, low: float, high: float, repeat: int
) -> None:
    counts = []
    for step in range(0, 101):  # boundaries across the whole range
        probe, probed = physics(low + (high - low) * step / 100, knob)
        bisect_breaking_point(probe, knob, low, high, repeat)
        counts.append(len(probed))
    assert max(counts) == most_probes(knob, low, high, repeat)


def test_less_is_more_pressure_for_a_capacity() -> None:
    probe, _ = physics(37, CAPACITY)
    sweep = bisect_breaking_point(probe, CAPACITY, 5, 100)
    assert (sweep.breaking_point, sweep.broken_at) == (37, 36)


def test_a_real_valued_knob_is_resolved_to_its_resolution() -> None:
    probe, _ = physics(13.3, DELAY)
    sweep = bisect_breaking_point(probe, DELAY, 0.0, 60.0)
    assert sweep.breaking_point <= 13.3 < sweep.broken_at
    assert sweep.broken_at - sweep.breaking_point <= 0.5


def test_the_repeats_tell_a_flaky_boundary() -> None:
    steady = bisect_breaking_point(
        lambda v: "tolerated" if v <= 10 else "reproduced", FLOOD, 1, 20, repeat=3
    )
    assert steady.deterministic is True
    calls: list[float] = []

    def flaky(value: float) -> str:
        calls.append(value)
        boundary = 10 if calls.count(11) < 2 else 11  # the second run at 11 holds
        return "tolerated" if value <= boundary else "reproduced"

    sweep = bisect_breaking_point(flaky, FLOOD, 1, 20, repeat=3)
    assert (sweep.breaking_point, sweep.deterministic) == (10, False)


@pytest.mark.parametrize(
    ("verdicts", "message"),
    [
        ({1: "tolerated", 20: "tolerated"}, "no breaking point in [1, 20]: tolerated at both ends"),
        (
            {1: "reproduced", 20: "reproduced"},
            "no breaking point in [1, 20]: reproduced at both ends",
        ),
        (
            {1: "reproduced", 20: "tolerated"},
            "no breaking point in [1, 20]: reproduced at 1 but tolerated at 20: more "
            "flood_connections is not more pressure here (check the knob's `pressure`)",
        ),
        (
            {1: "inconclusive", 20: "reproduced"},
            "flood_connections=1: inconclusive, not a verdict to sweep on (see its journal)",
        ),
    ],
)
def test_a_range_without_a_breaking_point_says_why(verdicts: dict, message: str) -> None:
    sweep = bisect_breaking_point(lambda value: verdicts[value], FLOOD, 1, 20)
    assert sweep.status != "found" and sweep.message == message


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"nope": {"pressure": "up", "range": [1, 2]}}, "k.nope: not a configuration key"),
        (
            {"flood_connections": {"pressure": "sideways", "range": [1, 2]}},
            "k.flood_connections.pressure: 'sideways': give up or down",
        ),
        (
            {"flood_connections": {"pressure": "up", "range": [5, 1]}},
            "k.flood_connections.range: [5, 1]: give [low, high], numbers, low < high",
        ),
        (
            {"flood_connections": {"pressure": "up", "range": [1, 5], "step": 2}},
            "k.flood_connections: unknown step",
        ),
    ],
)
def test_a_malformed_knob_is_refused_by_name(declared: dict, message: str) -> None:
    with pytest.raises(KnobError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_knobs(declared, {"flood_connections"}, "k")


def test_every_shipped_experiment_declares_a_knob_to_sweep() -> None:
    for path in sorted((REPO / "experiments").glob("*.json")):
        experiment = json.loads(path.read_text())
        extension = next(e for e in experiment["extensions"] if e["name"] == "startup-chaos-kit")
        knobs = read_knobs(extension.get("knobs", {}), set(experiment["configuration"]), path.name)
        assert knobs, f"{path.name} declares no knob"


# --- real sweeps on the testbed (slow) --------------------------------------------------------


@pytest.fixture(scope="module")
def testbed(kit_dirs: Callable[[str], Path]) -> Iterator[Testbed]:
    with kept_testbed(kit_dirs("limit") / ".testbed") as kept:
        yield kept


@pytest.mark.slow
def test_the_breaking_point_found_is_the_database_room(testbed: Testbed, tmp_path: Path) -> None:
    """smd-phase3-timeout holds while the flood leaves the fresh instance its pool."""
    expected = testbed.database_room() - 5  # the embedded profile's pool_size
    result = chaos(
        "gameday",
        "limit",
        "experiments/smd-phase3-timeout.json",
        "--from",
        str(expected - 6),
        "--to",
        str(expected + 6),
        "--repeat",
        "2",
        "--journals",
        str(tmp_path),
        home=testbed.home,
        timeout_s=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (limit_path,) = tmp_path.glob("limit-*/limit.json")
    limit = json.loads(limit_path.read_text())
    assert (limit["status"], limit["breaking_point"], limit["broken_at"]) == (
        "found",
        expected,
        expected + 1,
    )
    assert limit["deterministic"] is True
    assert limit["headroom"] == {
        "current_value": 120,
        "room": expected - 120,
        "share": round((expected - 120) / 120, 3),
    }
    # every probe's journal is kept, and printed as it came
    assert len(limit["probes"]) == len(list(limit_path.parent.glob("??-*.json")))
    assert f"flood_connections={expected + 1} -> reproduced" in result.stdout
    assert f"breaking point flood_connections={expected}" in result.stdout

    # the report reads the sweep: its breaking point, headroom and chart
    html = tmp_path / "report.html"
    report = write_reports([tmp_path], html)
    assert report["corrupt"] == []
    (point,) = report["breaking_points"]
    assert (point["experiment"], point["breaking_point"]) == ("smd-phase3-timeout", expected)
    assert report["before_after"] == []  # a sweep's probes are not a remediation

    def read(page: Any) -> dict[str, Any]:
        return {
            "row": page.locator("#breaking-points tbody tr").inner_text(),
            "charts": page.locator("#limit-charts svg").count(),
        }

    seen, errors = open_in_chromium(html, read, tmp_path / "report.png")
    assert errors == [] and seen["charts"] == 1
    assert seen["row"].split("\t")[:3] == [
        "smd-phase3-timeout",
        "flood_connections (connections)",
        str(expected),
    ]


@pytest.mark.slow
def test_no_breaking_point_in_a_range_is_one_line(testbed: Testbed, tmp_path: Path) -> None:
    result = chaos(
        "gameday",
        "limit",
        "experiments/smd-phase3-timeout.json",
        "--from",
        "1",
        "--to",
        "3",
        "--journals",
        str(tmp_path),
        home=testbed.home,
        timeout_s=300,
    )
    assert result.returncode == 1
    assert "no breaking point in [1, 3]: tolerated at both ends" in result.stdout


@pytest.mark.slow
def test_an_interrupted_sweep_keeps_its_journals_and_the_testbed_as_found(
    testbed: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTBED_HOME", str(testbed.home))  # the kept testbed's state
    process = chaos_in_background(
        "gameday",
        "limit",
        "experiments/smd-phase3-timeout.json",
        "--journals",
        str(tmp_path),
        home=testbed.home,
    )
    # the second probe's flood is up: one journal is written, one run is under way
    assert eventually(lambda: len(list(tmp_path.glob("limit-*/??-*.json"))) == 1, timeout_s=120)
    assert eventually(lambda: sessions(testbed.admin_dsn, "chaos-flood-") > 0, timeout_s=60)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    (limit_path,) = tmp_path.glob("limit-*/limit.json")
    limit = json.loads(limit_path.read_text())
    assert limit["status"] == "interrupted" and limit["breaking_point"] is None
    assert [p["verdict"] for p in limit["probes"]][-1] == "aborted"
    assert all(Path(p["journal"]).is_file() for p in limit["probes"])
    # the testbed was up before the sweep: it is still up, at its baseline
    assert read_state() is not None and find_drift(read_state()) == []
    assert leftovers(testbed.home) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--knob", "pool_size"],
            "--knob pool_size: smd-phase3-timeout.json declares no such knob",
        ),
        (["--from", "50", "--to", "10"], "--from 50 --to 10: give a range with from < to"),
    ],
)
def test_bad_limit_options_are_one_line(
    testbed_home: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = chaos(
        "gameday",
        "limit",
        "experiments/smd-phase3-timeout.json",
        *arguments,
        "--journals",
        str(tmp_path),
        home=testbed_home,
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (testbed_home / "state.json").exists() and not list(tmp_path.iterdir())
