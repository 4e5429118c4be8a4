"""The incident's test plan's three workflows: valid for GitHub Actions (checked against
GitHub's workflow schema, as check-jsonschema vendors it), triggered as the plan lays
out, and calling the kit with options it has."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.test_testbed import CHAOS

WORKFLOWS = REPO / ".github" / "workflows"
CHECK = Path(CHAOS).parent / "check-jsonschema"


def _validate(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHECK, "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as true
    return workflow


def test_every_workflow_is_valid_for_github_actions() -> None:
    result = _validate(*sorted(WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_refuses_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  a:\n    steps:\n      - run: true\n")
    result = _validate(broken)
    assert result.returncode == 1 and "runs-on" in result.stdout


def test_the_three_workflows_run_when_the_test_plan_says() -> None:
    tests, gameday, staging = (_load(n) for n in ("tests.yml", "gameday.yml", "staging.yml"))
    assert set(tests["on"]) == {"push", "pull_request"}
    assert [s["cron"] for s in gameday["on"]["schedule"]] == ["0 2 * * *"]
    assert set(staging["on"]) == {"workflow_dispatch"}  # on demand only
    (job,) = staging["jobs"].values()
    assert job["environment"] == "staging"
    # the guardrails are raised in the staging environment's run and nowhere else
    texts = {n: (WORKFLOWS / n).read_text() for n in ("tests.yml", "gameday.yml", "staging.yml")}
    assert [n for n, t in texts.items() if "max_database_connections" in t] == ["staging.yml"]


@pytest.mark.parametrize("name", ["gameday.yml", "staging.yml"])
def test_workflows_call_the_kit_with_options_it_has(name: str) -> None:
    script = " ".join(
        step.get("run", "") for job in _load(name)["jobs"].values() for step in job["steps"]
    ).replace("\\\n", " ")
    command = re.search(r"chaos --no-version-check gameday run (.*?)(?:\n|$)", script)
    assert command, f"{name} holds no game day"
    used = set(re.findall(r"(--[a-z-]+)", command.group(1)))
    help_text = subprocess.run(
        [CHAOS, "--no-version-check", "gameday", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert used and all(option in help_text for option in used), used
    make = subprocess.run(["make", "-n", "install"], cwd=REPO, capture_output=True, timeout=60)
    assert make.returncode == 0


def test_the_nightly_game_day_remembers_the_nights_before() -> None:
    """The previous journals come back before the game day and are saved after it (the
    same suite's history), bounded by --keep; report.md reaches the job's summary and
    the verdicts a metrics file."""
    (job,) = _load("gameday.yml")["jobs"].values()
    steps = job["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    restore = uses.index("actions/cache/restore")
    held = next(i for i, step in enumerate(steps) if "gameday run" in step.get("run", ""))
    save = uses.index("actions/cache/save")
    assert restore < held < save
    assert steps[restore]["with"]["path"] == steps[save]["with"]["path"] == "journals/"
    prefix = steps[restore]["with"]["restore-keys"].strip()
    assert "${{ env.SUITE }}" in prefix and steps[save]["with"]["key"].startswith(prefix)
    assert steps[save]["if"] == "always()"  # a night that failed is history too
    command = steps[held]["run"].replace("\\\n", " ")
    assert "--journals journals" in command and re.search(r"--keep \d+", command)
    assert "--metrics journals/" in command
    summary = next(s for s in steps[held + 1 :] if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["if"] == "always()" and "report.md" in summary["run"]
