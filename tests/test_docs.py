"""The manual (README.md, the front door, and docs/ by topic) documents what the code
does, and its links lead somewhere."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

from chaoskit import ACTION_MODULES, DISTRIBUTION, PROBE_MODULES
from chaoskit.testbed.service.settings import ServiceSettings
from tests.conftest import REPO


def test_the_reference_lists_every_service_setting_with_its_default() -> None:
    reference = (REPO / "docs" / "reference.md").read_text()
    for env, default, meaning in ServiceSettings.documentation():
        assert f"| `{env}` | `{default}` | {meaning} |" in reference


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of `page` (outside code blocks)."""
    anchors, fenced = set(), False
    for line in page.read_text().splitlines():
        fenced = fenced != line.startswith("```")
        if not fenced and (heading := re.match(r"^#+ (.*)", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def test_every_link_of_the_manual_leads_to_a_page_and_a_heading_of_it() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (anchor and anchor not in _anchors(linked)):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []
    linked_from_readme = set(re.findall(r"\(docs/([\w-]+\.md)", pages[0].read_text()))
    assert linked_from_readme == {p.name for p in pages[1:]}  # the front door leads to each


def test_chaos_discover_lists_every_activity_with_its_documentation(tmp_path: Path) -> None:
    chaos = Path(sys.executable).with_name("chaos")
    result = subprocess.run(
        [
            str(chaos),
            "--no-version-check",
            "--no-log-file",
            "discover",
            "--no-install",
            "--no-system-info",
            "--discovery-path",
            str(tmp_path / "d.json"),
            DISTRIBUTION,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = {
        (a["mod"], a["name"]): a
        for a in json.loads((tmp_path / "d.json").read_text())["activities"]
    }
    for module in (*ACTION_MODULES, *PROBE_MODULES):
        for name in importlib.import_module(module).__all__:
            assert (module, name) in found, f"{module}.{name} is not discovered"
            assert len(found[(module, name)]["doc"]) > 40, f"{module}.{name} has no real docstring"
