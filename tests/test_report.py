"""The journal report, from real journals of real game days on the testbed, of the
README's example service and of the staging rehearsal (slow); read as a reviewer reads
it, in headless Chromium.

Every page opened leaves its screenshot in `.test-artifacts/report/` at the repository's
root (kept after the run, out of git; `CHAOSKIT_TEST_ARTIFACTS` puts them elsewhere).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaoskit.gameday.recommend import recommend
from chaoskit.report.charts import EXPECTED_COLOURS, timeline_chart
from chaoskit.report.report import build_report, render_markdown, write_reports
from tests.browser import open_in_chromium, overlapping_labels
from tests.conftest import REPO
from tests.test_gameday import EXPERIMENTS
from tests.test_testbed import chaos

pytestmark = pytest.mark.slow

GUARD = "nightly-guard"  # the second night's suite: it expects the fix to hold
EXAMPLE = REPO / "experiments" / "profiles" / "example-service.json"


def _rgb(colour: str) -> str:
    """`#1e8449` as the browser computes it: `rgb(30, 132, 73)`."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """Where the screenshots are kept: a folder that outlives the test session."""
    folder = Path(os.environ.get("CHAOSKIT_TEST_ARTIFACTS", REPO / ".test-artifacts")) / "report"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def journals(
    tmp_path_factory: pytest.TempPathFactory, kit_dirs: Callable[[str], Path]
) -> Iterator[Path]:
    """Two nights under one --journals: the Phase 3 timeout and the full chain, as
    expected; then a suite that expects the Phase 3 fix to hold (`tolerated`), which it
    does not (a regression), with --keep and --metrics as the nightly workflow runs it."""
    root = tmp_path_factory.mktemp("journals")
    home = kit_dirs("report-home") / ".testbed"
    first = chaos(
        "gameday",
        "run",
        "--journals",
        str(root),
        "--only",
        "smd-phase3-timeout",
        "--only",
        "issue-1278-full-chain",
        home=home,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    suite = root.parent / "guard.toml"
    suite.write_text(
        f'[gameday]\nname = "{GUARD}"\n'
        f'[[experiment]]\nname = "smd-phase3-timeout"\n'
        f'file = "{EXPERIMENTS}/smd-phase3-timeout.json"\nexpect = "tolerated"\n'
        f'[[experiment]]\nname = "issue-1278-full-chain"\n'
        f'file = "{EXPERIMENTS}/issue-1278-full-chain.json"\nexpect = "reproduced"\n'
    )
    second = chaos(
        "gameday",
        "run",
        "--suite",
        str(suite),
        "--journals",
        str(root),
        "--keep",
        "2",
        "--metrics",
        str(root / "metrics.prom"),
        home=home,
    )
    assert second.returncode == 1, second.stdout + second.stderr  # not as expected
    yield root


@pytest.fixture(scope="module")
def remediated(
    journals: Path, tmp_path_factory: pytest.TempPathFactory, kit_dirs: Callable[[str], Path]
) -> Path:
    """The journals, then the remediation game day for smd-phase3-timeout."""
    root = tmp_path_factory.mktemp("remediated")
    shutil.copytree(journals, root, dirs_exist_ok=True)
    home = kit_dirs("report-remediation") / ".testbed"
    result = chaos(
        "gameday",
        "run",
        "--suite",
        "experiments/gameday-remediation.toml",
        "--only",
        "smd-phase3-timeout",
        "--journals",
        str(root),
        home=home,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def latest(root: Path) -> Path:
    return sorted(p for p in root.iterdir() if p.name.startswith("gd-"))[-1]


def journal_of(folder: Path, experiment: str) -> dict[str, Any]:
    return json.loads((folder / f"{experiment}.json").read_text())


def test_game_day_writes_its_report_next_to_the_journals_banner_first(journals: Path) -> None:
    folder = latest(journals)
    assert (folder / "report.html").read_text().startswith("<!DOCTYPE html>")
    lines = (folder / "report.md").read_text().splitlines()
    assert lines[0] == "### ❌ Startup Chaos Kit: 1 of 2 runs as the suite expected"
    # the regression, by name, before anything else
    assert lines[2].startswith("- **smd-phase3-timeout**: reproduced, expected **tolerated**: ")
    assert f"suite `{GUARD}`" in lines[4] and "target **embedded**" in lines[4]
    assert "preflight healthy" in lines[4]


def test_report_content_comes_from_the_journals(journals: Path) -> None:
    report = build_report([journals])
    assert report["runs_read"] == 4 and len(report["gamedays"]) == 2
    assert [row["experiment"] for row in report["summary"]] == [
        "smd-phase3-timeout",
        "issue-1278-full-chain",
    ]
    assert [row["as_expected"] for row in report["summary"]] == [False, True]
    summary = json.loads((latest(journals) / "summary.json").read_text())
    banner = report["banner"]
    assert (banner["runs"], banner["as_expected"]) == (2, 1)
    assert [r["experiment"] for r in banner["regressions"]] == ["smd-phase3-timeout"]
    assert (banner["suite_name"], banner["target"], banner["profiles"]) == (GUARD, "embedded", [])
    assert banner["preflight"] == {"healthy": True, "reasons": []}
    assert (banner["started_at"], banner["ended_at"]) == (
        summary["started_at"],
        summary["ended_at"],
    )
    (chain,) = [c for c in report["failure_chains"] if c["experiment"] == "issue-1278-full-chain"]
    assert [step["observed"] for step in chain["steps"]] == [True] * 6
    assert report["categories"]["smd_phase3_timeout"] == 4
    assert report["categories"]["vpc_connector_capacity"] == 2  # the full chain, twice
    assert report["corrupt"] == []


def test_pressure_stands_against_the_capacity_each_run_had(journals: Path) -> None:
    """The flood against the database's room, the connector, the pool and the database
    phase against its deadline, each figure from its own run's journal."""
    report = build_report([journals])
    rows = {row["experiment"]: row for row in report["pressure"]}
    for name, row in rows.items():
        kit = journal_of(latest(journals), name)["startup_chaos_kit"]
        capacity, figures = kit["capacity"], kit["figures"]
        room = capacity["max_connections"] - capacity["reserved"] - capacity["in_use_at_rest"]
        assert row["flood"]["room"] == room
        assert row["pool"]["pool_size"] == figures["pool_size"]
        assert row["pool"]["pool_timeout_s"] == figures["pool_timeout_s"]
        assert row["database_phase"]["deadline_s"] == figures["initialization_timeout_s"]
        assert row["database_phase"]["elapsed_s"] >= row["database_phase"]["deadline_s"]
        assert row["configuration"] == figures
    # straight to the database, the flood takes the room whole (and no more)
    flood = rows["smd-phase3-timeout"]["flood"]
    assert flood["established"] == flood["room"] < flood["attempted"]
    # through the connector, it fills the connector's capacity, the rest waits
    connector = rows["issue-1278-full-chain"]["connector"]
    kit = journal_of(latest(journals), "issue-1278-full-chain")["startup_chaos_kit"]
    per_instance = kit["capacity"]["connector_connections_per_instance"]
    assert connector["capacity"] == kit["capacity"]["connector_instances"] * per_instance
    assert connector["peak_active"] == connector["capacity"]


def test_every_mark_is_judged_against_its_own_runs_threshold(journals: Path) -> None:
    """The figure shown, the threshold printed beside it (the run's own, from its
    journal's figures) and the mark agree; none comes from another expectation."""
    report = build_report([journals])
    metrics = {m["metric"]: m for m in report["metrics"]}
    for name, key in (
        ("startup_sequence_time_s", "initialization_timeout_s"),
        ("connection_establishment_time_s", "connect_delay_threshold_s"),
        ("vpc_connector_utilisation", "connector_threshold"),
    ):
        row = metrics[name]
        figures = journal_of(latest(journals), row["experiment"])["startup_chaos_kit"]["figures"]
        assert row["threshold"] == figures[key], name
        assert key in row["threshold_text"]
        judged = (
            row["observed"] >= row["threshold"]
            if name.startswith("startup")
            else (row["observed"] > row["threshold"])
        )
        assert row["met"] is judged, row
    # Phase 3's elapsed time is the database phase's, as its startup reported it
    startup = next(
        r["output"]
        for r in journal_of(latest(journals), metrics["startup_sequence_time_s"]["experiment"])[
            "run"
        ]
        if r["activity"]["name"] == "observe-fresh-instance-startup"
    )
    assert metrics["startup_sequence_time_s"]["observed"] == startup["failed_phase"]["elapsed_s"]


def test_two_game_days_in_a_row_show_a_trend(journals: Path) -> None:
    report = build_report([journals])
    history = {row["experiment"]: row["days"] for row in report["history"]}
    assert [d["gameday_id"] for d in history["smd-phase3-timeout"]] == report["gamedays"]
    assert [(d["verdict"], d["as_expected"]) for d in history["smd-phase3-timeout"]] == [
        ("reproduced", True),
        ("reproduced", False),
    ]
    assert [d["as_expected"] for d in history["issue-1278-full-chain"]] == [True, True]
    markdown = render_markdown(report)
    assert (
        "Across the last 2 game days: issue-1278-full-chain reproduced → reproduced; "
        "smd-phase3-timeout reproduced → reproduced ❌"
    ) in markdown
    page = (latest(journals) / "report.html").read_text()
    trend = page.split('id="trend-charts">')[1].split("</div>")[0]
    assert trend.count("<svg") == 1 and all(row["experiment"] in trend for row in report["history"])


def test_the_metrics_file_carries_the_verdicts(journals: Path) -> None:
    """`--metrics` on the game day: Prometheus text format, as its own parser reads it."""
    families = {
        f.name: f for f in text_string_to_metric_families((journals / "metrics.prom").read_text())
    }
    summary = json.loads((latest(journals) / "summary.json").read_text())
    verdicts = {
        (s.labels["experiment"], s.labels["chaoskit_run_verdict"]): s.value
        for s in families["chaoskit_run_verdict"].samples
    }
    expected = {
        (s.labels["experiment"], s.labels["expected"]): s.value
        for s in families["chaoskit_run_as_expected"].samples
    }
    for entry in summary["experiments"]:
        assert verdicts[(entry["name"], entry["verdict"])] == 1.0
        assert sum(v for (name, _), v in verdicts.items() if name == entry["name"]) == 1.0
        assert expected[(entry["name"], entry["expected"])] == float(entry["as_expected"])
    recovered = {
        s.labels["experiment"]: s.value
        for s in families["chaoskit_run_time_to_recover_seconds"].samples
    }
    assert recovered == {e["name"]: e["time_to_recover_s"] for e in summary["experiments"]}
    runs = {s.labels["as_expected"]: s.value for s in families["chaoskit_gameday_runs"].samples}
    assert runs == {"true": 1.0, "false": 1.0}
    margin = {
        s.labels["experiment"]: s.value
        for s in families["chaoskit_run_database_phase_margin_seconds"].samples
    }
    assert all(value <= 0 for value in margin.values())  # both gave up at their deadline
    manual = (REPO / "docs" / "game-days-and-reports.md").read_text()
    assert all(f"| `{name}" in manual for name in families), "the manual lists every metric"


def test_the_page_reads_in_ten_seconds(journals: Path, screenshots: Path) -> None:
    """The game day's own report.html in Chromium: the banner first, badges coloured by
    whether the verdict was expected, no two labels of a chart overlapping, full-width
    timelines whose legend names every line, no offset notation, JSON in the evidence."""

    def read(page: Any) -> dict[str, Any]:
        def background(row: str) -> str:
            badge = page.locator(f"#summary tr.{row} .verdict").first
            return badge.evaluate("e => getComputedStyle(e).backgroundColor")

        timeline = page.locator("#timeline-charts svg").first
        return {
            "first": page.locator("body > *").first.get_attribute("id"),
            "headline": page.locator("#headline").inner_text(),
            "regressions": page.locator("#regressions li").all_inner_texts(),
            "target": page.locator("#target").inner_text(),
            "banner": page.locator("#banner").inner_text(),
            "expected": background("as-expected"),
            "unexpected": background("unexpected"),
            "overlaps": overlapping_labels(page),
            "legend": [t.strip() for t in timeline.locator("text").all_text_contents()],
            "widths": [
                page.locator("#timeline-charts").bounding_box()["width"],
                timeline.bounding_box()["width"],
            ],
            "texts": [t.strip() for t in page.locator("svg text").all_text_contents()],
            "evidence": page.locator("h2:has-text('Failure chain') + table").first.inner_text(),
            "phase_rows": page.locator("#phase-charts svg").count(),
        }

    shot = screenshots / "gameday-report.png"
    seen, errors = open_in_chromium(latest(journals) / "report.html", read, shot)
    assert errors == []
    assert seen["first"] == "banner"
    assert seen["headline"] == "1 of 2 runs as the suite expected"
    (regression,) = seen["regressions"]
    assert regression.startswith("smd-phase3-timeout: reproduced, expected tolerated: ")
    assert seen["target"] == "embedded"
    assert GUARD in seen["banner"] and "preflight healthy" in seen["banner"]
    assert seen["expected"] == _rgb(EXPECTED_COLOURS[True])
    assert seen["unexpected"] == _rgb(EXPECTED_COLOURS[False])
    assert seen["overlaps"] == []
    for line in (
        "connector utilisation",
        "database connections / max_connections",
        "flood connections (right axis)",
        "activity (shaded while it ran)",
        "fresh instance's phases (bottom strip)",
        "database phase deadline",
    ):
        assert line in seen["legend"], line
    container, chart = seen["widths"]
    assert chart >= 0.95 * container
    assert not [
        t
        for t in seen["texts"]
        if re.fullmatch(
            r"[+\u2212-]?\d*\.?\d+e[+\u2212-]?\d+|"
            r"[+\u2212]\s*\d.*",
            t,
        )
    ]
    assert "true" in seen["evidence"] and not re.search(r"\b(True|False|None)\b", seen["evidence"])
    assert seen["phase_rows"] == 1  # one chart for every run's phases
    assert shot.stat().st_size > 10_000


def test_the_label_check_finds_labels_that_overlap(tmp_path: Path, screenshots: Path) -> None:
    """The check the page's test relies on, shown a chart whose labels do overlap."""
    page = tmp_path / "overlap.html"
    page.write_text(
        '<html><body><svg width="300" height="100"><text x="10" y="50">flood'
        '</text><text x="20" y="52">stop</text><text x="200" y="50">apart</text>'
        "</svg></body></html>"
    )
    seen, _ = open_in_chromium(
        page, lambda p: {"o": overlapping_labels(p)}, screenshots / "overlap.png"
    )
    assert seen["o"] == [[0, "flood", "stop"]]


def test_corrupt_and_partial_journals_are_listed_not_fatal(journals: Path, tmp_path: Path) -> None:
    copy = tmp_path / "journals"
    shutil.copytree(journals, copy)
    gameday = sorted(copy.glob("gd-*"))[0]
    (gameday / "truncated.json").write_text('{"status": "completed", "run": [')
    (gameday / "partial.json").write_text(json.dumps({"status": "completed"}))
    report = build_report([copy])
    assert report["runs_read"] == 4
    reasons = {Path(c["path"]).name: c["reason"] for c in report["corrupt"]}
    assert reasons["truncated.json"].startswith("not valid JSON")
    assert reasons["partial.json"] == "partial journal: no experiment, start"
    assert "Unreadable journals: 2" in render_markdown(report)
    assert "2 unreadable journals" in render_markdown(report).splitlines()[4]


def test_what_a_journal_says_is_text_on_the_page_never_markup(
    journals: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "journals"
    shutil.copytree(journals, copy)
    # the latest game day's journal of the full chain: its expectations are on the page
    path = latest(copy) / "issue-1278-full-chain.json"
    journal = json.loads(path.read_text())
    for expectation in journal["startup_chaos_kit"]["expectations"]:
        expectation["name"] = "<script>alert(1)</script>"
    path.write_text(json.dumps(journal))
    write_reports([copy], tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page


def test_no_secret_reaches_the_report(journals: Path, tmp_path: Path) -> None:
    write_reports(
        [journals], tmp_path / "r.html", tmp_path / "r.md", tmp_path / "r.json", tmp_path / "r.prom"
    )
    texts = [(tmp_path / name).read_text() for name in ("r.html", "r.md", "r.json", "r.prom")]
    texts += [journal.read_text() for journal in journals.rglob("*.json")]
    passwords = {
        p for text in texts for p in re.findall(r"postgres(?:ql)?://[^:@/\s\"]+:([^@\s\"]+)@", text)
    }
    assert passwords == {"***"}  # URLs with credentials appear, always masked


def test_html_report_renders_in_chromium_with_its_charts(
    remediated: Path, tmp_path: Path, screenshots: Path
) -> None:
    html = tmp_path / "report.html"
    write_reports([remediated], html)

    def read(page: Any) -> dict[str, Any]:
        return {
            "headline": page.locator("#headline").inner_text(),
            "charts": {
                section: page.locator(f"#{section}-charts svg").count()
                for section in ("phase", "timeline", "trend")
            },
            "before_after": page.locator("#before-after tbody tr").all_inner_texts(),
            "unexpected": page.locator("#summary tr.unexpected").count(),
            "overlaps": overlapping_labels(page),
        }

    seen, errors = open_in_chromium(html, read, screenshots / "remediated.png")
    assert errors == []
    assert seen["headline"] == "1 of 1 runs as the suite expected"
    assert seen["charts"] == {"phase": 1, "timeline": 1, "trend": 1}
    (row,) = seen["before_after"]
    assert row.startswith("smd-phase3-timeout") and "reproduced" in row and "tolerated" in row
    assert seen["unexpected"] == 0  # the remediation's tolerated verdict was the expected one
    assert seen["overlaps"] == []


def test_before_and_after_the_remediation(remediated: Path, tmp_path: Path) -> None:
    """The reproduction beside the run with the shipped remediation: verdicts, Phase 3,
    capacity and the configuration that changed; JUnit and the toolkit's words too."""
    junit = tmp_path / "results.xml"
    result = chaos(
        "gameday",
        "report",
        str(remediated),
        "-o",
        str(tmp_path / "r.html"),
        "--json",
        str(tmp_path / "r.json"),
        "--junit",
        str(junit),
        home=tmp_path / ".testbed",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    fix = json.loads((REPO / "experiments/profiles/remediation.json").read_text())
    (row,) = report["before_after"]
    assert row["experiment"] == "smd-phase3-timeout"
    assert (row["before"]["verdict"], row["after"]["verdict"]) == ("reproduced", "tolerated")
    assert row["before"]["cause"] == "too_many_connections" and row["after"]["cause"] is None
    wanted = fix["configuration"]["database_max_connections"]
    assert row["after"]["max_connections"] == wanted
    assert row["changed"]["database_max_connections"] == [None, wanted]
    # the latest game day is the remediation's: its one run as the toolkit words it
    (summary,) = report["summary"]
    assert summary["toolkit"] == {"outcome": "passed", "conclusive": True, "warnings": []}
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    assert suite.find("testcase").get("name") == "smd-phase3-timeout"


def test_activity_labels_on_a_timeline_never_overlap(tmp_path: Path, screenshots: Path) -> None:
    """Long names of activities that begin close together, as a short run draws them,
    and the last ones near the chart's end."""
    at = [f"2026-11-23T12:00:{s:06.3f}+00:00" for s in (0.0, 0.4, 0.8, 1.2, 2.4, 2.45)]
    names = [
        "flood-database-connections",
        "stop-connection-flood",
        "stop-fresh-instance",
        "observe-fresh-instance-startup",
        "restore-connector",
    ]
    run = {
        "experiment": "labels",
        "startups": [],
        "database_phase": "database",
        "pressure": {"database_phase": None},
        "markers": [
            {"at": at[4], "label": "Phase 3 gave up"},
            {"at": at[5], "label": "connector scaled out"},
        ],
        "timeline": [{"at": a, "database_utilisation": 0.5, "flood_connections": 9} for a in at],
        "activities": [{"name": n, "start": at[i], "end": at[i + 1]} for i, n in enumerate(names)],
    }
    page = tmp_path / "timeline.html"
    page.write_text(f"<html><body>{timeline_chart(run)}</body></html>")
    seen, errors = open_in_chromium(
        page, lambda p: {"o": overlapping_labels(p)}, screenshots / "timeline-labels.png"
    )
    assert errors == []
    assert seen["o"] == []


# --- the README's example service: its database phase is `connect-database` ------------


@pytest.fixture(scope="module")
def example_journals(
    tmp_path_factory: pytest.TempPathFactory, kit_dirs: Callable[[str], Path]
) -> Iterator[Path]:
    """Real journals of `examples/inventory-service` run by the shipped experiments, as
    the README's "Test your own service" runs them."""
    home = kit_dirs("report-example") / ".testbed"
    root = tmp_path_factory.mktemp("example")
    up = chaos("testbed", "up", "--service", str(EXAMPLE), home=home)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        for name in ("smd-phase3-timeout", "lifespan-exit-code"):
            result = chaos(
                "run",
                "--var-file",
                str(EXAMPLE),
                "--journal-path",
                str(root / f"{name}.json"),
                f"experiments/{name}.json",
                home=home,
                timeout_s=300,
            )
            assert result.returncode == 0, result.stdout + result.stderr
    finally:
        chaos("testbed", "down", home=home)
    yield root


def test_the_example_services_journals_are_read_by_its_database_phase(
    example_journals: Path, tmp_path: Path, screenshots: Path
) -> None:
    """Its Phase 3 is `load-catalogue`, blocked with no elapsed time: the report reads
    the phase the journal names (`connect-database`) and stops on nothing."""
    service = json.loads(EXAMPLE.read_text())["configuration"]["service"]
    report = write_reports([example_journals], tmp_path / "r.html", tmp_path / "r.md")
    assert report["corrupt"] == [] and report["runs_read"] == 2
    assert [r["as_expected"] for r in report["summary"]] == [True, True]
    kit = json.loads((example_journals / "smd-phase3-timeout.json").read_text())[
        "startup_chaos_kit"
    ]
    assert kit["database_phase"] == service["database_phase"]
    (row,) = [p for p in report["pressure"] if p["database_phase"]]
    assert row["database_phase"]["name"] == service["database_phase"]
    assert row["database_phase"]["status"] == "timeout"
    assert row["database_phase"]["deadline_s"] == kit["figures"]["initialization_timeout_s"]
    assert math.isclose(
        row["database_phase"]["elapsed_s"], kit["figures"]["initialization_timeout_s"], abs_tol=0.5
    )
    metrics = {m["metric"]: m for m in report["metrics"]}
    assert metrics["container_exit_code"]["threshold"] == service["failure_exit_code"]
    assert metrics["container_exit_code"]["met"] is True
    assert report["categories"]["smd_phase3_timeout"] == 2  # the single start and the repeated
    (answer,), _, _ = recommend([example_journals])
    assert answer.key == "database_max_connections"

    def read(page: Any) -> dict[str, Any]:
        return {
            "labels": page.locator("#phase-charts svg text").all_text_contents(),
            "overlaps": overlapping_labels(page),
        }

    seen, errors = open_in_chromium(tmp_path / "r.html", read, screenshots / "example.png")
    assert errors == [] and seen["overlaps"] == []
    assert any(t.strip().startswith("connect-database 3.0") for t in seen["labels"])
    assert any("blocked" in t for t in seen["labels"])
