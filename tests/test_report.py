"""The journal report, from real journals of a real game day on the testbed (slow)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from chaoskit.report.charts import timeline_chart
from chaoskit.report.report import build_report, render_markdown, write_reports
from tests.browser import open_in_chromium
from tests.conftest import REPO
from tests.test_testbed import chaos

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def journals(
    tmp_path_factory: pytest.TempPathFactory, kit_dirs: Callable[[str], Path]
) -> Iterator[Path]:
    """Two game days' journals: the full chain twice, and the Phase 3 timeout once."""
    root = tmp_path_factory.mktemp("journals")
    home = kit_dirs("report-home") / ".testbed"
    for only in (["smd-phase3-timeout", "issue-1278-full-chain"], ["issue-1278-full-chain"]):
        args = [a for name in only for a in ("--only", name)]
        result = chaos("gameday", "run", "--journals", str(root), *args, home=home)
        assert result.returncode == 0, result.stdout + result.stderr
    yield root


@pytest.fixture(scope="module")
def remediated(
    journals: Path, tmp_path_factory: pytest.TempPathFactory, kit_dirs: Callable[[str], Path]
) -> Path:
    """The journals, then the remediation game day for smd-phase3-timeout."""
    root = tmp_path_factory.mktemp("remediated")
    shutil.copytree(journals, root, dirs_exist_ok=True)
    home = kit_dirs("report-remediation") / ".testbed"
    result = chaos("gameday", "run", "--suite", "experiments/gameday-remediation.toml",
                   "--only", "smd-phase3-timeout", "--journals", str(root), home=home)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def test_game_day_writes_its_report_next_to_the_journals(journals: Path) -> None:
    latest = sorted(journals.iterdir())[-1]
    assert (latest / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "issue-1278-full-chain" in (latest / "report.md").read_text()


def test_report_content_comes_from_the_journals(journals: Path) -> None:
    report = build_report([journals])
    assert report["runs_read"] == 3 and len(report["gamedays"]) == 2
    assert [row["experiment"] for row in report["summary"]] == ["issue-1278-full-chain"]
    assert report["totals"] == {"reproduced": 1}
    (chain,) = report["failure_chains"]
    assert [step["observed"] for step in chain["steps"]] == [True] * 6
    assert report["categories"]["smd_phase3_timeout"] == 3
    assert report["categories"]["vpc_connector_capacity"] == 2  # the full chain, twice
    assert report["categories"]["container_exit_code_3"] == 3
    metrics = {m["metric"]: m for m in report["metrics"]}
    assert metrics["vpc_connector_utilisation"]["observed"] == 1.0
    assert (
        metrics["container_exit_code"]["observed"] == [3] and metrics["container_exit_code"]["met"]
    )
    assert report["changed_verdicts"] == [] and report["corrupt"] == []
    freshness = {f["experiment"]: f for f in report["freshness"]}
    assert freshness["smd-phase3-timeout"]["days_since"] == 0
    assert not freshness["issue-1278-full-chain"]["stale"]


def test_corrupt_and_partial_journals_are_listed_not_fatal(journals: Path, tmp_path: Path) -> None:
    copy = tmp_path / "journals"
    shutil.copytree(journals, copy)
    gameday = sorted(copy.iterdir())[0]
    (gameday / "truncated.json").write_text('{"status": "completed", "run": [')
    (gameday / "partial.json").write_text(json.dumps({"status": "completed"}))
    report = build_report([copy])
    assert report["runs_read"] == 3
    reasons = {Path(c["path"]).name: c["reason"] for c in report["corrupt"]}
    assert reasons["truncated.json"].startswith("not valid JSON")
    assert reasons["partial.json"] == "partial journal: no experiment, start"
    assert "Unreadable journals: 2" in render_markdown(report)


def test_what_a_journal_says_is_text_on_the_page_never_markup(
    journals: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "journals"
    shutil.copytree(journals, copy)
    # the latest game day's journal of the full chain: its expectations are on the page
    path = next(sorted(copy.iterdir())[-1].glob("issue-1278-full-chain*.json"))
    journal = json.loads(path.read_text())
    for expectation in journal["startup_chaos_kit"]["expectations"]:
        expectation["name"] = "<script>alert(1)</script>"
    path.write_text(json.dumps(journal))
    write_reports([copy], tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page


def test_no_secret_reaches_the_report(journals: Path, tmp_path: Path) -> None:
    write_reports([journals], tmp_path / "r.html", tmp_path / "r.md", tmp_path / "r.json")
    texts = [(tmp_path / name).read_text() for name in ("r.html", "r.md", "r.json")]
    texts += [journal.read_text() for journal in journals.rglob("*.json")]
    passwords = {
        p for text in texts for p in re.findall(r"postgres(?:ql)?://[^:@/\s\"]+:([^@\s\"]+)@", text)
    }
    assert passwords == {"***"}  # URLs with credentials appear, always masked


def test_html_report_renders_in_chromium_with_its_charts(remediated: Path, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    write_reports([remediated], html)

    def read(page: Any) -> dict[str, Any]:
        return {
            "heading": page.locator("h1").inner_text(),
            "charts": {section: page.locator(f"#{section}-charts svg").count()
                       for section in ("phase", "timeline", "trend")},
            "before_after": page.locator("#before-after tbody tr").all_inner_texts(),
            "unexpected": page.locator("#summary tr.unexpected").count(),
        }  # fmt: skip

    seen, errors = open_in_chromium(html, read, tmp_path / "report.png")
    assert errors == []
    assert seen["heading"] == "Startup Chaos Kit report"
    charts = seen["charts"]
    assert charts["phase"] >= 1 and charts["timeline"] >= 1 and charts["trend"] == 1
    (row,) = seen["before_after"]
    assert row.startswith("smd-phase3-timeout") and "reproduced" in row and "tolerated" in row
    assert seen["unexpected"] == 0  # the remediation's tolerated verdict was the expected one
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_before_and_after_the_remediation(remediated: Path, tmp_path: Path) -> None:
    """The reproduction beside the run with the shipped remediation: verdicts, Phase 3,
    capacity and the configuration that changed; JUnit and the toolkit's words too."""
    junit = tmp_path / "results.xml"
    result = chaos("gameday", "report", str(remediated), "-o", str(tmp_path / "r.html"),
                   "--json", str(tmp_path / "r.json"), "--junit", str(junit),
                   home=tmp_path / ".testbed")  # fmt: skip
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


def test_activity_labels_on_a_timeline_never_overlap(tmp_path: Path) -> None:
    """Long names of activities that begin close together, as a short run draws them."""
    at = [f"2026-11-23T12:00:{s:06.3f}+00:00" for s in (0.0, 0.4, 0.8, 1.2, 2.4)]
    names = ["flood-database-connections", "stop-connection-flood", "stop-fresh-instance",
             "observe-fresh-instance-startup"]  # fmt: skip
    run = {
        "experiment": "labels", "startups": [], "markers": [],
        "timeline": [{"at": a, "database_utilisation": 0.5} for a in at],
        "activities": [{"name": n, "start": at[i], "end": at[i + 1]} for i, n in enumerate(names)],
    }  # fmt: skip
    page = tmp_path / "timeline.html"
    page.write_text(f"<html><body>{timeline_chart(run)}</body></html>")

    def read(page: Any) -> dict[str, Any]:
        return {t.text_content().strip(): t.bounding_box() for t in page.locator("text").all()}

    seen, errors = open_in_chromium(page, read, tmp_path / "timeline.png")
    assert errors == []
    boxes = [seen[name] for name in names]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            side_by_side = a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
            one_above = a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]
            assert side_by_side or one_above, (a, b)
