"""`chaos run` with several experiments (or a folder), as the kit's users type it: each
runs in turn as `chaos run` of it alone would, a line each and a closing table, the exit
code from every run; mistakes refused before anything runs. Real runs of small plain
experiments (fast), and of the kit's own on the embedded testbed (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chaoskit.gameday.execution import held_target
from chaoskit.gameday.series import SeriesRun, exit_code
from chaoskit.kit.processes import pid_alive
from chaoskit.testbed.lifecycle import testbed_down, testbed_up
from chaoskit.testbed.state import read_state, write_state
from tests.conftest import REPO, eventually, leftovers, sessions
from tests.test_testbed import CHAOS, chaos


def plain_experiment(folder: Path, name: str, marker: Path, removes_it: bool) -> Path:
    """A Chaos Toolkit experiment of the user's own, without the kit: its steady state is
    that `marker` exists; its method removes it (the run deviates) or only reads it."""
    action = {"func": "remove" if removes_it else "stat", "arguments": {"path": str(marker)}}
    probe = {
        "type": "probe",
        "name": "marker-exists",
        "tolerance": True,
        "provider": {
            "type": "python",
            "module": "os.path",
            "func": "exists",
            "arguments": {"path": str(marker)},
        },
    }
    experiment = {
        "version": "1.0.0",
        "title": name,
        "description": "the user's own experiment",
        "steady-state-hypothesis": {"title": "the marker is there", "probes": [probe]},
        "method": [
            {
                "type": "action",
                "name": "touch-the-marker",
                "provider": {"type": "python", "module": "os", **action},
            }
        ],
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(experiment))
    return path


@pytest.fixture
def two_plain(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(a folder with an experiment that holds and one that deviates, in name order; the
    marker the second removes)."""
    folder = tmp_path / "mine"
    folder.mkdir()
    marker = tmp_path / "marker"
    marker.write_text("")
    plain_experiment(folder, "a-holds", marker, removes_it=False)
    plain_experiment(folder, "b-deviates", marker, removes_it=True)
    return folder, folder / "a-holds.json", folder / "b-deviates.json"


# --- several experiments, for real and cheaply: the user's own, without the testbed -------


def test_each_runs_as_chaos_run_alone_with_a_line_each_and_a_table(
    testbed_home: Path, tmp_path: Path, two_plain: tuple[Path, Path, Path]
) -> None:
    folder, holds, deviates = two_plain
    marker = tmp_path / "marker"
    alone = {}
    for path in (holds, deviates):  # as `chaos run` runs each by itself
        journal = tmp_path / f"alone-{path.stem}.json"
        result = chaos("run", "--journal-path", str(journal), str(path), home=testbed_home)
        alone[path.stem] = (result.returncode, json.loads(journal.read_text()))
    assert [code for code, _ in alone.values()] == [0, 1]
    for sources in ([str(holds), str(deviates)], [str(folder)]):  # files, or their folder
        marker.write_text("")
        journals = tmp_path / f"series-{len(sources)}"
        series = chaos("run", "--journal-path", str(journals), *sources, home=testbed_home)
        assert series.returncode == 1, series.stdout + series.stderr
        lines = series.stdout.splitlines()
        assert "[1/2] ok  a-holds: (completed)" in lines[0]
        assert "[2/2] NOT b-deviates: (completed)" in lines[1]
        table = [line for line in lines if "a-holds" in line or "b-deviates" in line][2:]
        assert "yes" in table[0] and "NO" in table[1]
        assert "1 of 2 as expected; journals in " + str(journals) in series.stdout
        for name, (_, journal) in alone.items():
            ran = json.loads((journals / f"{name}.json").read_text())
            assert (ran["status"], ran["deviated"]) == (journal["status"], journal["deviated"])
            assert [r["activity"]["name"] for r in ran["run"]] == ["touch-the-marker"]
    # no run is the kit's: no testbed was started, no target of the kit's locked
    assert not testbed_home.exists()


def test_journals_go_to_a_run_folder_of_their_own_by_default(
    testbed_home: Path, tmp_path: Path, two_plain: tuple[Path, Path, Path]
) -> None:
    _, holds, _ = two_plain
    work = tmp_path / "work"
    work.mkdir()
    for _ in range(2):  # each series keeps its journals in a folder of its own
        (tmp_path / "marker").write_text("")
        result = subprocess.run(
            [
                CHAOS,
                "--no-version-check",
                "--no-log-file",
                "run",
                str(holds),
                str(holds.parent / "b-deviates.json"),
            ],
            cwd=work,
            env={**os.environ, "TESTBED_HOME": str(testbed_home)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stderr
    folders = sorted((work / "journals").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("run-") for f in folders)
    for found in folders:
        assert sorted(p.name for p in found.iterdir()) == ["a-holds.json", "b-deviates.json"]


def test_one_source_runs_as_it_always_did(testbed_home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.write_text("")
    holds = plain_experiment(tmp_path, "holds", marker, removes_it=False)
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [CHAOS, "--no-version-check", "--no-log-file", "run", str(holds)],
        cwd=work,
        env={**os.environ, "TESTBED_HOME": str(testbed_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout == ""  # no line, no table of the kit's
    assert json.loads((work / "journal.json").read_text())["status"] == "completed"
    assert not (work / "journals").exists()


def _entry(as_expected: bool) -> SeriesRun:
    return SeriesRun("x", "x.json", "reproduced", None, as_expected)


def test_the_exit_code_needs_every_run_as_expected() -> None:
    assert exit_code([_entry(True), _entry(True)], interrupted=False) == 0
    assert exit_code([_entry(True), _entry(False)], interrupted=False) == 1
    assert exit_code([], interrupted=False) == 1
    assert exit_code([_entry(True)], interrupted=True) == 130


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ("unparseable", "broken.json: not valid JSON (Expecting value at line 1): fix its syntax"),
        ("same-name", "are both named 'a-holds': their journals would overwrite each other"),
        ("journal-file", "--journal-path out.json: with several experiments give a folder"),
        ("empty-folder", "empty: no experiment file (.json, .yaml, .yml) in it"),
        ("not-a-verdict", "CHAOS_EXPECT='green' is not a verdict to expect"),
        ("events-file", "--events-file describes one run: give one experiment with it"),
    ],
)
def test_a_mistake_is_one_line_before_anything_runs(
    testbed_home: Path,
    tmp_path: Path,
    two_plain: tuple[Path, Path, Path],
    mistake: str,
    message: str,
) -> None:
    folder, holds, deviates = two_plain
    journals = tmp_path / "journals"
    args: list[Any] = ["--journal-path", str(journals), str(holds), str(deviates)]
    env: dict[str, str] = {}
    if mistake == "unparseable":
        (tmp_path / "broken.json").write_text('{"title": "x", "method": [')
        args.append(str(tmp_path / "broken.json"))
    elif mistake == "same-name":
        (tmp_path / "again").mkdir()
        args.append(str(plain_experiment(tmp_path / "again", "a-holds", folder, False)))
    elif mistake == "journal-file":
        args[1] = str(tmp_path / "out.json")
        message = message.replace("out.json", str(tmp_path / "out.json"))
    elif mistake == "empty-folder":
        (tmp_path / "empty").mkdir()
        args.append(str(tmp_path / "empty"))
    elif mistake == "not-a-verdict":
        args[2:] = [f"{REPO}/experiments/smd-phase3-timeout.json", str(deviates)]
        env["CHAOS_EXPECT"] = "green"
    elif mistake == "events-file":
        args[:0] = ["--events-file", str(tmp_path / "events.ndjson")]
    result = chaos("run", *args, home=testbed_home, **env)
    assert result.returncode in (1, 2), result.stdout
    output = (result.stdout + result.stderr).splitlines()
    errors = [line for line in output if "ERROR" in line or line.startswith("Error")]
    assert len(errors) == 1 and message in errors[0], output
    assert "Traceback" not in result.stderr
    # nothing ran: the marker the second experiment removes is there, no journal, no testbed
    assert (tmp_path / "marker").exists()
    assert not journals.exists() and not (tmp_path / "out.json").exists()
    assert not (testbed_home / "state.json").exists()


def test_a_series_takes_over_a_testbed_a_killed_run_left_and_takes_it_down(
    testbed_home: Path,
) -> None:
    # left by a run that is gone: each run's control would take it over and stop it
    # at its own end; the series takes it over once, for all its runs
    state = testbed_up(started_by="control:1")
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_state({**state, "owner_pid": dead.pid})
    said: list[str] = []
    with held_target({"target": "embedded"}, "chaos run of 2 experiments", said.append):
        held = read_state()
        assert (held["started_by"], held["owner_pid"]) == (
            "chaos run of 2 experiments",
            os.getpid(),
        )
        assert held["service"]["pid"] == state["service"]["pid"]  # taken over, not restarted
    assert said == [
        "taking over the embedded testbed a killed run left up; it stops after these runs"
    ]
    assert read_state() is None and not pid_alive(state["service"]["pid"])


# --- the kit's experiments on the embedded testbed (slow) -------------------------------

SMD, LIFESPAN = "experiments/smd-phase3-timeout.json", "experiments/lifespan-exit-code.json"


def _kit(journal: Path) -> dict[str, Any]:
    return json.loads(journal.read_text())["startup_chaos_kit"]


@pytest.mark.slow
def test_two_experiments_on_one_testbed_brought_up_once(testbed_home: Path, tmp_path: Path) -> None:
    journals = tmp_path / "journals"
    result = chaos(
        "run", "--journal-path", str(journals), SMD, LIFESPAN, home=testbed_home, timeout_s=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "starting the embedded testbed, kept up for these runs"
    assert lines[1].startswith("[1/2] ok  smd-phase3-timeout: reproduced in ")
    assert lines[2].startswith("[2/2] ok  lifespan-exit-code: reproduced in ")
    assert "2 of 2 as expected" in result.stdout
    # each as `chaos run` of it: its verdict, its rollbacks, its recovery
    for name in ("smd-phase3-timeout", "lifespan-exit-code"):
        journal = json.loads((journals / f"{name}.json").read_text())
        kit = journal["startup_chaos_kit"]
        assert (kit["verdict"], kit["expected"], kit["as_expected"]) == ("reproduced", None, True)
        assert all(r["status"] == "succeeded" for r in journal["rollbacks"])
        assert kit["recovery"]["recovered"] is True and kit["baseline_reset"] == []
        # which file ran, as a game day's journal says it, for the report and recommend
        assert kit["experiment_file"] == f"experiments/{name}.json"
    # no run started or stopped the testbed: the series did, once each
    assert "Embedded testbed started for this run" not in result.stderr
    assert "Embedded testbed stopped" not in result.stderr
    assert result.stderr.count("Verdict: reproduced") == 2
    assert read_state() is None and leftovers(testbed_home) == []


@pytest.mark.slow
def test_ctrl_c_rolls_back_the_current_run_and_runs_no_other(
    testbed_home: Path, tmp_path: Path
) -> None:
    state = testbed_up()  # up before: the series leaves it up
    admin, journals = state["postgres"]["admin_dsn"], tmp_path / "journals"
    try:
        process = subprocess.Popen(
            [
                CHAOS,
                "--no-version-check",
                "--no-log-file",
                "run",
                "--journal-path",
                str(journals),
                LIFESPAN,
                SMD,
            ],
            cwd=REPO,
            env={**os.environ, "TESTBED_HOME": str(testbed_home), "CHAOS_EXPECT": "reproduced"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        # into the first run's method: its flood holds, its cold starts are under way
        assert eventually(lambda: sessions(admin, "chaos-flood-") > 0, timeout_s=60)
        assert eventually(lambda: sessions(admin, "service-cold-start-") > 0, timeout_s=60)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=180)
        assert process.returncode == 130, out
        first = json.loads((journals / "lifespan-exit-code.json").read_text())
        assert first["status"] == "interrupted" and first["startup_chaos_kit"]["verdict"] == (
            "aborted"
        )
        assert first["rollbacks"][0]["activity"]["name"] == "stop-connection-flood"
        assert all(r["status"] == "succeeded" for r in first["rollbacks"])
        assert not (journals / "smd-phase3-timeout.json").exists()
        assert "[1/2] NOT lifespan-exit-code: aborted, expected reproduced" in out
        assert "not-run" in out and "Interrupted by SIGINT: the rest were not run" in out
        assert eventually(lambda: sessions(admin, "chaos-") == 0, timeout_s=10)
        assert eventually(lambda: leftovers(testbed_home) == [], timeout_s=10)
        assert read_state()["service"]["pid"] == state["service"]["pid"]  # left up, as found
    finally:
        testbed_down()
