"""Nights remember each other: `--keep N` bounds the history under --journals, `report
--since` looks at a window of it, and the verdicts go out as Prometheus metrics. Two real
game days in a row, and their trend, are in tests/test_report.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaoskit.gameday.retention import prune_gamedays
from chaoskit.gameday.runner import new_gameday_id
from tests.test_bad_journals import JOURNAL, SUMMARY, gameday, with_value
from tests.test_gameday import skipped_gameday
from tests.test_testbed import chaos


def test_keep_removes_the_oldest_game_days_and_nothing_else(
    testbed_home: Path, tmp_path: Path
) -> None:
    journals = tmp_path / "journals"
    old = [journals / f"gd-2026110{day}T020000Z-000{day}" for day in (1, 2, 3)]
    kept_apart = [
        journals / "limit-20261101T030000Z-smd-phase3-timeout-flood_connections",
        journals / "verify-20261101T040000Z",
        journals / "gd-notes",
    ]
    for folder in old + kept_apart:
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text("{}")
    (journals / "results.xml").write_text("<testsuites/>")
    metrics = tmp_path / "metrics" / "gameday.prom"
    result = skipped_gameday(
        tmp_path, journals, testbed_home, "--keep", "2", "--metrics", str(metrics)
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"--keep 2: removed 2 older game days ({old[0].name} to {old[1].name})" in result.stdout
    left = sorted(p.name for p in journals.iterdir())
    (new,) = [name for name in left if name.startswith("gd-2026") and name != old[2].name]
    assert left == sorted([old[2].name, new, *(p.name for p in kept_apart), "results.xml"])
    # the skipped night is the latest, and its metrics say so: no run, when it started
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text())}
    runs = {s.labels["as_expected"]: s.value for s in families["chaoskit_gameday_runs"].samples}
    assert runs == {"true": 0.0, "false": 0.0}
    (started,) = families["chaoskit_gameday_start_time_seconds"].samples
    assert started.labels["gameday"] == new and started.value > 0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--keep", "0"], "Invalid value for '--keep': 0 is not in the range x>=1"),
        (["--keep", "two"], "Invalid value for '--keep': 'two' is not a valid integer"),
        (["--metrics", "{tmp}"], "Error: --metrics {tmp}: cannot be written (it is a folder)"),
    ],
)
def test_bad_history_options_are_one_line_and_change_nothing(
    testbed_home: Path, tmp_path: Path, option: list[str], message: str
) -> None:
    journals = tmp_path / "journals"
    folders = [journals / f"gd-2026110{day}T020000Z-000{day}" for day in (1, 2)]
    for folder in folders:
        folder.mkdir(parents=True)
    option = [o.format(tmp=tmp_path) for o in option]
    result = skipped_gameday(tmp_path, journals, testbed_home, *option)
    assert result.returncode == 2
    assert message.format(tmp=tmp_path) in result.stderr and "Traceback" not in result.stderr
    assert sorted(journals.iterdir()) == folders  # nothing removed, no game day held


def test_prune_keeps_the_newest_by_the_time_in_their_names(tmp_path: Path) -> None:
    names = [new_gameday_id() for _ in range(3)]
    names += ["gd-20251231T235959Z-ffff", "gd-20260101T000000Z-0000"]
    for name in names:
        (tmp_path / name).mkdir()
    removed = prune_gamedays(tmp_path, 3)
    assert [p.name for p in removed] == ["gd-20251231T235959Z-ffff", "gd-20260101T000000Z-0000"]
    assert prune_gamedays(tmp_path, 3) == []
    assert prune_gamedays(tmp_path / "none-yet", 1) == []


def test_report_since_looks_at_a_window_of_the_history(testbed_home: Path, tmp_path: Path) -> None:
    root = tmp_path / "journals"
    gameday(root)  # a night in November
    later = {
        **SUMMARY,
        "gameday_id": "gd-20261201T215959Z-0002",
        "started_at": "2026-12-01T21:59:59+00:00",
    }
    folder = root / later["gameday_id"]
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(later))
    tolerated = with_value(JOURNAL, "startup_chaos_kit.verdict", "tolerated")
    tolerated["start"] = "2026-12-01T22:00:00+00:00"
    (folder / "smd-phase3-timeout.json").write_text(json.dumps(tolerated))
    output = tmp_path / "report.json"
    every = chaos(
        "gameday",
        "report",
        str(root),
        "-o",
        str(tmp_path / "r.html"),
        "--json",
        str(output),
        home=testbed_home,
    )
    assert every.returncode == 0, every.stderr
    report = json.loads(output.read_text())
    assert report["gamedays"] == [SUMMARY["gameday_id"], later["gameday_id"]]
    (row,) = report["history"]
    assert [d["verdict"] for d in row["days"]] == ["reproduced", "tolerated"]
    assert [d["as_expected"] for d in row["days"]] == [True, False]
    assert report["changed_verdicts"] == [
        {"experiment": "smd-phase3-timeout", "before": "reproduced", "now": "tolerated"}
    ]
    window = chaos(
        "gameday",
        "report",
        str(root),
        "-o",
        str(tmp_path / "r.html"),
        "--json",
        str(output),
        "--since",
        "2026-11-15",
        home=testbed_home,
    )
    assert window.returncode == 0, window.stderr
    report = json.loads(output.read_text())
    assert report["gamedays"] == [later["gameday_id"]] and report["runs_read"] == 1
    assert report["since"] == "2026-11-15T00:00:00+00:00"


@pytest.mark.parametrize("since", ["last week", "7 days", "2026-13-01"])
def test_a_since_that_is_no_time_is_one_line(
    testbed_home: Path, tmp_path: Path, since: str
) -> None:
    result = chaos(
        "gameday",
        "report",
        str(tmp_path),
        "-o",
        str(tmp_path / "r.html"),
        "--since",
        since,
        home=testbed_home,
    )
    assert result.returncode == 2
    assert f"Invalid value for '--since': {since!r} is no time: give e.g. 7d, 12h" in result.stderr
    assert not (tmp_path / "r.html").exists()
