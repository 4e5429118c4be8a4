"""Game days: the suite file, the scheduler's ticks, and real game days on the testbed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from chaoskit.gameday.schedule import CronError, next_ticks, run_schedule
from chaoskit.gameday.suite import SuiteError, load_suite
from chaoskit.kit.lock import TargetLock
from chaoskit.kit.processes import pid_alive
from chaoskit.testbed.state import read_state
from tests.conftest import REPO, eventually, leftovers, sessions
from tests.test_testbed import chaos, chaos_in_background

EXPERIMENTS = REPO / "experiments"


def write_suite(folder: Path, *entries: tuple[str, str], **header: object) -> Path:
    lines = ["[gameday]", 'name = "test"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in header.items()]
    for name, expect in entries:
        lines += [
            "[[experiment]]",
            f'name = "{name}"',
            f'file = "{EXPERIMENTS / name}.json"',
            f'expect = "{expect}"',
        ]
    suite = folder / "suite.toml"
    suite.write_text("\n".join(lines) + "\n")
    return suite


def start_gameday(
    suite: Path, journals: Path, home: Path, output: bool = False
) -> subprocess.Popen:
    """`chaos gameday run` in the background, as a user starts it; with `output`, its
    stdout and stderr together as text in `.stdout`."""
    return chaos_in_background(
        "gameday",
        "run",
        "--suite",
        str(suite),
        "--journals",
        str(journals),
        output=output,
        home=home,
    )


def skipped_gameday(
    tmp_path: Path, journals: Path, home: Path, *options: str
) -> subprocess.CompletedProcess:
    """`chaos gameday run` on a target that fails its preflight (nothing runs)."""
    sick = tmp_path / "sick.json"
    sick.write_text(
        json.dumps(
            {
                "configuration": {
                    "target": "staging",
                    "service_url": "http://127.0.0.1:1",
                    "database_url": "postgresql://app@127.0.0.1:1/app",
                }
            }
        )
    )
    suite = write_suite(tmp_path, ("smd-phase3-timeout", "reproduced"))
    return chaos(
        "gameday",
        "run",
        "--suite",
        str(suite),
        "--profile",
        str(sick),
        "--journals",
        str(journals),
        *options,
        home=home,
    )


# --- the suite file and the schedule (fast) ---------------------------------------------


def test_the_shipped_suite_lists_every_experiment_once() -> None:
    suite = load_suite(EXPERIMENTS / "gameday.toml")
    assert suite.time_limit_s == 90 * 60
    assert suite.on_failure == "continue"
    assert sorted(e.path.name for e in suite.experiments) == sorted(
        p.name for p in EXPERIMENTS.glob("*.json")
    )


ONE = "[[experiment]]\nname = 'a'\nfile = '{f}'\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ONE.replace("{f}", "missing.json"), r"experiment\[0\]\.file: .* does not exist"),
        (ONE + "expect = 'passed'\n", r"experiment\[0\]\.expect: 'passed': use one of"),
        (ONE + ONE, r"experiment\[1\]\.name: 'a' appears twice"),
        ("[gameday]\non_failure = 'panic'\n", r"on_failure: 'panic': use 'continue' or 'stop'"),
        ("[gameday\n", r"not valid TOML"),
        ("[gameday]\n", r"\[\[experiment\]\]: list at least one experiment"),
    ],
    ids=["missing-file", "unknown-verdict", "duplicate", "on-failure", "toml", "empty"],
)
def test_bad_suites_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(text.replace("{f}", str(EXPERIMENTS / "smd-phase3-timeout.json")))
    with pytest.raises(SuiteError, match=message):
        load_suite(suite)


def test_only_keeps_the_suite_order_and_refuses_unknown_names(tmp_path: Path) -> None:
    suite = load_suite(EXPERIMENTS / "gameday.toml")
    kept = suite.only(["issue-1278-full-chain", "smd-phase3-timeout"])
    assert [e.name for e in kept.experiments] == ["smd-phase3-timeout", "issue-1278-full-chain"]
    with pytest.raises(SuiteError, match=r"^--only nope: not in gameday.toml"):
        suite.only(["nope"])


def test_schedule_computes_the_next_ticks() -> None:
    start = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)
    assert next_ticks("0 2 * * *", start, 3) == [
        datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
    ]
    with pytest.raises(CronError, match=r"^--cron '61 \* \* \* \*' is not a cron expression"):
        next_ticks("61 * * * *", start, 1)


def test_scheduler_holds_one_game_day_per_tick_and_skips_missed_ticks() -> None:
    clock = [datetime(2026, 11, 21, 1, 59, 30, tzinfo=UTC)]
    held: list[datetime] = []
    log: list[str] = []

    def hold() -> str:
        held.append(clock[0])
        clock[0] = clock[0].replace(day=clock[0].day + 1, hour=3)  # overran the next tick
        return f"gd-{len(held)}"

    def sleep(seconds: float) -> None:
        clock[0] = clock[0] + (
            datetime.min.replace(tzinfo=UTC)
            + __import__("datetime").timedelta(seconds=seconds)
            - datetime.min.replace(tzinfo=UTC)
        )

    run_schedule("0 2 * * *", hold, log.append, now=lambda: clock[0], sleep=sleep, runs=2)
    assert held == [
        datetime(2026, 11, 21, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 2, 0, tzinfo=UTC),  # 22 Nov 02:00 fell inside the first run
    ]
    assert log[1] == "game day gd-1 done" and log[3] == "game day gd-2 done"


# --- real game days (slow) ----------------------------------------------------------------

slow = pytest.mark.slow


@slow
def test_game_day_writes_journals_and_summary(testbed_home: Path, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path, ("smd-phase3-timeout", "reproduced"), ("smd-cascade-blocking", "tolerated")
    )
    journals, junit = tmp_path / "journals", tmp_path / "ci" / "results.xml"
    result = chaos(
        "gameday",
        "run",
        "--suite",
        str(suite),
        "--journals",
        str(journals),
        "--junit",
        str(junit),
        home=testbed_home,
    )
    assert result.returncode == 1, result.stderr  # the second verdict is not the expected one
    (folder,) = journals.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["preflight"]["healthy"] is True
    assert [(e["name"], e["verdict"], e["as_expected"]) for e in summary["experiments"]] == [
        ("smd-phase3-timeout", "reproduced", True),
        ("smd-cascade-blocking", "reproduced", False),
    ]
    for entry in summary["experiments"]:
        journal = json.loads(Path(entry["journal"]).read_text())
        assert journal["startup_chaos_kit"]["verdict"] == entry["verdict"]
        # the toolkit's words: the steady state held before and after the method
        assert entry["toolkit"] == {"outcome": "passed", "conclusive": True, "warnings": []}
    # one JUnit case per experiment, failed where the verdict is not the expected one
    cases = {c.get("name"): c for c in ElementTree.parse(junit).getroot().iter("testcase")}
    assert list(cases) == ["smd-phase3-timeout", "smd-cascade-blocking"]
    assert cases["smd-phase3-timeout"].find("failure") is None
    failure = cases["smd-cascade-blocking"].find("failure")
    assert failure.get("message").startswith("reproduced, expected tolerated: ")
    assert failure.text.startswith("first unmet expectation: ")
    assert (
        summary["experiments"][1]["journal"]
        in cases["smd-cascade-blocking"].find("system-out").text
    )
    assert not list(folder.glob(".*partial"))  # journals were written whole
    # the report marks the verdict the suite did not expect, and only that one
    page = (folder / "report.html").read_text()
    assert page.count('<tr class="unexpected"><td>smd-cascade-blocking</td>') == 1
    assert page.count('<tr class="unexpected">') == 1
    assert "NOT smd-cascade-blocking: reproduced (expected tolerated)" in result.stdout
    assert read_state() is None  # the game day took its testbed down


@slow
def test_unhealthy_target_skips_the_game_day(testbed_home: Path, tmp_path: Path) -> None:
    profile = tmp_path / "sick.json"
    profile.write_text(
        json.dumps(
            {
                "configuration": {
                    "target": "staging",
                    "service_url": "http://127.0.0.1:1",
                    "database_url": "postgresql://app:secret@127.0.0.1:1/app",
                }
            }
        )
    )
    suite = write_suite(tmp_path, ("smd-phase3-timeout", "reproduced"))
    journals = tmp_path / "journals"
    result = chaos(
        "gameday",
        "run",
        "--suite",
        str(suite),
        "--profile",
        str(profile),
        "--journals",
        str(journals),
        home=testbed_home,
    )
    assert result.returncode == 3
    (folder,) = journals.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "skipped"
    assert summary["preflight"]["reasons"] == [
        "service http://127.0.0.1:1 is unreachable (ConnectError)",
        "database is unreachable (refused)",
        "the Google Cloud project and region are not set: pass project and region, or use "
        "a profile that sets gcp_project_id and gcp_region",
    ]
    assert summary["experiments"] == []
    assert "secret" not in (folder / "summary.json").read_text()


@slow
def test_a_second_game_day_on_the_same_target_is_refused(
    testbed_home: Path, tmp_path: Path
) -> None:
    suite = write_suite(tmp_path, ("smd-phase3-timeout", "reproduced"))
    with TargetLock(testbed_home / "embedded.lock", "game day gd-first"):
        result = chaos(
            "gameday",
            "run",
            "--suite",
            str(suite),
            "--journals",
            str(tmp_path / "journals"),
            home=testbed_home,
        )
    assert result.returncode == 4
    assert result.stderr.strip().splitlines() == [
        f"Error: game day gd-first (pid {os.getpid()}) is running on this target "
        f"(lock {testbed_home / 'embedded.lock'}); wait for it to finish"
    ]
    assert not (tmp_path / "journals").exists()


@slow
def test_sigterm_mid_game_day_rolls_back_and_writes_the_summary(
    testbed_home: Path, tmp_path: Path
) -> None:
    suite = write_suite(
        tmp_path, ("lifespan-exit-code", "reproduced"), ("smd-phase3-timeout", "reproduced")
    )
    journals = tmp_path / "journals"
    process = start_gameday(suite, journals, testbed_home)
    assert eventually(lambda: read_state() is not None, timeout_s=60)
    state = read_state()
    admin, postgres_pid = state["postgres"]["admin_dsn"], state["postgres"]["pid"]
    # into the cold starts: the flood holds, an instance of the run is starting
    assert eventually(lambda: sessions(admin, "chaos-flood-") > 0, timeout_s=60)
    assert eventually(lambda: sessions(admin, "service-cold-start-") > 0, timeout_s=60)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 130
    (folder,) = journals.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    first, second = summary["experiments"]
    assert first["verdict"] == "aborted" and second["verdict"] == "not-run"
    journal = json.loads(Path(first["journal"]).read_text())
    assert journal["rollbacks"][0]["output"]["released"] > 0
    assert read_state() is None and not pid_alive(postgres_pid)
    assert leftovers(testbed_home) == []


@slow
def test_sigint_during_the_last_experiment_is_an_interrupted_game_day(
    testbed_home: Path, tmp_path: Path
) -> None:
    suite = write_suite(tmp_path, ("smd-phase3-timeout", "reproduced"))
    journals = tmp_path / "journals"
    process = start_gameday(suite, journals, testbed_home)
    assert eventually(lambda: read_state() is not None, timeout_s=60)
    admin = read_state()["postgres"]["admin_dsn"]
    assert eventually(lambda: sessions(admin, "chaos-flood-") > 0, timeout_s=60)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    (folder,) = journals.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    (only,) = summary["experiments"]
    assert only["verdict"] == "aborted" and Path(only["journal"]).is_file()
    assert leftovers(testbed_home) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_game_days_checks_is_an_interrupted_game_day(
    testbed_home: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    """The suite is read through a FIFO: the signal lands while the game day is in its
    checks, whatever the machine's speed."""
    fifo = tmp_path / "suite.toml"
    os.mkfifo(fifo)
    journals = tmp_path / "journals"
    process = start_gameday(fifo, journals, testbed_home, output=True)
    with fifo.open("w") as suite:  # opens once the game day reads its suite: its checks
        process.send_signal(signum)
        suite.write(
            f'[[experiment]]\nname = "smd"\nfile = "{EXPERIMENTS}/smd-phase3-timeout.json"\n'
        )
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130 and "Aborted" not in output and "Traceback" not in output
    (folder,) = journals.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["preflight"] is None
    assert [(e["name"], e["verdict"]) for e in summary["experiments"]] == [("smd", "not-run")]
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.md", "summary.json"]
    assert read_state() is None  # no testbed was started


@slow
def test_a_signal_during_the_preflight_runs_no_experiment(
    testbed_home: Path, tmp_path: Path
) -> None:
    suite = write_suite(tmp_path, ("smd-phase3-timeout", "reproduced"))
    journals = tmp_path / "journals"
    process = start_gameday(suite, journals, testbed_home, output=True)
    assert process.stdout is not None
    for line in process.stdout:  # the preflight starts the testbed
        if "starting the embedded testbed" in line:
            break
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode == 130
    (folder,) = journals.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert [e["verdict"] for e in summary["experiments"]] == ["not-run"]
    assert read_state() is None and leftovers(testbed_home) == []  # the testbed it started is down


RECORDING_CONTROL = """
import json


def after_experiment_control(context, state, configuration=None, secrets=None, *, path,
                             source, **kwargs):
    with open(path, "a") as out:
        out.write(json.dumps({"source": source, "title": context["title"],
                              "status": state["status"]}) + "\\n")
"""


@slow
def test_settings_and_control_files_apply_to_a_game_day_as_to_chaos_run(
    testbed_home: Path, tmp_path: Path
) -> None:
    """The global controls of the user's settings file and of --control-file see every
    run of a game day, as they see a `chaos run`."""
    (tmp_path / "recording_control.py").write_text(RECORDING_CONTROL)
    seen = tmp_path / "seen.jsonl"

    def recorder(source: str) -> dict:
        return {
            f"{source}-recorder": {
                "provider": {
                    "type": "python",
                    "module": "recording_control",
                    "arguments": {"path": str(seen), "source": source},
                }
            }
        }

    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"controls": recorder("settings")}))
    control_file = tmp_path / "controls.json"
    control_file.write_text(json.dumps(recorder("control-file")))
    names = ("smd-phase3-timeout", "smd-cascade-blocking")
    suite = write_suite(tmp_path, *((name, "reproduced") for name in names))
    result = chaos(
        "--settings",
        str(settings),
        "gameday",
        "run",
        "--suite",
        str(suite),
        "--control-file",
        str(control_file),
        "--journals",
        str(tmp_path / "journals"),
        home=testbed_home,
        PYTHONPATH=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    titles = [json.loads((EXPERIMENTS / f"{n}.json").read_text())["title"] for n in names]
    records = [json.loads(line) for line in seen.read_text().splitlines()]
    # both controls saw both runs: Chaos Toolkit unloads global controls after each run
    assert sorted((r["source"], r["title"]) for r in records) == sorted(
        (source, title) for source in ("control-file", "settings") for title in titles
    )
    assert {r["status"] for r in records} == {"completed"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--settings", "{settings}", "gameday", "run"],
            "Error: --settings {settings}: not valid YAML",
        ),
        (
            ["gameday", "run", "--control-file", "{controls}"],
            "Error: --control-file {controls}: control 'x' has no provider",
        ),
        (
            ["gameday", "run", "--junit", "{file}/results.xml"],
            "Error: --junit {file}/results.xml: cannot be written ({file} is not a folder you "
            "may write to)",
        ),
        (
            ["gameday", "run", "--junit", "{folder}"],
            "Error: --junit {folder}: cannot be written (it is a folder)",
        ),
        (
            ["gameday", "report", "{folder}", "--junit", "{folder}"],
            "Error: --junit {folder}: cannot be written (it is a folder)",
        ),
    ],
)
def test_bad_settings_controls_and_junit_paths_are_one_line(
    testbed_home: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    paths = {
        "settings": tmp_path / "settings.yaml",
        "controls": tmp_path / "controls.yaml",
        "file": tmp_path / "a-file",
        "folder": tmp_path / "a-folder",
    }
    paths["settings"].write_text("controls: [unclosed\n")
    paths["controls"].write_text("x: {}\n")
    paths["file"].write_text("")
    paths["folder"].mkdir()
    names = {key: str(path) for key, path in paths.items()}
    journals = REPO / "journals"
    before = set(journals.iterdir()) if journals.exists() else set()
    result = chaos(*(a.format(**names) for a in arguments), home=testbed_home)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(message.format(**names)), line
    # nothing ran: no testbed, no game day's journals
    assert read_state() is None
    assert (set(journals.iterdir()) if journals.exists() else set()) == before
