"""Recommendations, verified: `chaos gameday recommend --verify` turns a reproduction
tolerated, and the remediation game day tells a fix that holds from one a connection
short. The boundary is the database's, computed here from the live testbed."""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaoskit.gameday.recommend import MARGIN
from chaoskit.kit.settings import embedded_profile
from tests.conftest import Testbed, kept_testbed
from tests.test_testbed import CHAOS, chaos

REMEDIATION_SUITE = "experiments/gameday-remediation.toml"


@pytest.fixture(scope="module")
def testbed(kit_dirs: Callable[[str], Path]) -> Iterator[Testbed]:
    with kept_testbed(kit_dirs("recommend") / ".testbed") as kept:
        yield kept


def _max_connections_needed(testbed: Testbed, flood: int) -> int:
    """The smallest max_connections at which the fresh instance's pool still fits beside
    the sessions at rest, the reserved slots, the observer and a flood of `flood`."""
    in_use_elsewhere = testbed.max_connections() - testbed.database_room()
    return in_use_elsewhere + flood + embedded_profile()["pool_size"]


@pytest.mark.slow
def test_a_verified_recommendation_turns_the_reproduction_tolerated(
    testbed: Testbed, tmp_path: Path
) -> None:
    reproduction = chaos(
        "gameday",
        "run",
        "--only",
        "smd-phase3-timeout",
        "--journals",
        str(tmp_path / "gd"),
        home=testbed.home,
        timeout_s=300,
    )
    assert "smd-phase3-timeout: reproduced" in reproduction.stdout, reproduction.stdout
    (gameday,) = (tmp_path / "gd").glob("gd-*")
    journal = json.loads((gameday / "smd-phase3-timeout.json").read_text())
    flood = journal["startup_chaos_kit"]["figures"]["flood_connections"]

    remediation = tmp_path / "remediation.json"
    result = chaos(
        "gameday",
        "recommend",
        str(gameday),
        "--verify",
        "-o",
        str(remediation),
        "--journals",
        str(tmp_path / "verify"),
        home=testbed.home,
        timeout_s=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify smd-phase3-timeout: reproduced -> tolerated" in result.stdout
    written = json.loads(remediation.read_text())
    expected = math.ceil(_max_connections_needed(testbed, flood) * MARGIN)
    assert written["configuration"] == {"database_max_connections": expected}
    (recommendation,) = written["about"]["recommendations"]
    assert recommendation["verified"] is True
    assert "--database-flags=max_connections=" in recommendation["google_cloud"]
    assert [v["after"] for v in written["about"]["verification"]] == ["tolerated"]
    # the run put the database back at its baseline
    assert testbed.max_connections() == testbed.state["postgres"]["baseline_max_connections"]

    # verified with a profile whose service the kept testbed does not run: said, not a crash
    other = chaos(
        "gameday",
        "recommend",
        str(gameday),
        "--verify",
        "-o",
        str(tmp_path / "other.json"),
        "--profile",
        "experiments/profiles/example-service.json",
        "--journals",
        str(tmp_path / "other"),
        home=testbed.home,
        timeout_s=300,
    )
    assert other.returncode == 1 and "Traceback" not in other.stdout + other.stderr
    assert (
        "verify smd-phase3-timeout: reproduced -> aborted (the embedded testbed: it is up with "
        "another service" in other.stdout
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("short_by", "verdict", "code"), [(1, "reproduced", 1), (0, "tolerated", 0)]
)
def test_the_remediation_game_day_tells_a_fix_a_connection_short(
    testbed: Testbed, tmp_path: Path, short_by: int, verdict: str, code: int
) -> None:
    """One connection short of what the fresh instance's pool needs, the remediation
    game day flags the fix as not holding; with exactly enough, it holds."""
    flood = 30
    var_file = tmp_path / "remediation-under-test.json"
    var_file.write_text(
        json.dumps(
            {
                "configuration": {
                    "flood_connections": flood,
                    "database_max_connections": _max_connections_needed(testbed, flood) - short_by,
                }
            }
        )
    )
    result = chaos(
        "gameday",
        "run",
        "--suite",
        REMEDIATION_SUITE,
        "--only",
        "smd-phase3-timeout",
        "--profile",
        str(var_file),
        "--journals",
        str(tmp_path),
        home=testbed.home,
        timeout_s=300,
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert f"smd-phase3-timeout: {verdict} (expected tolerated)" in result.stdout


def test_nothing_reproduced_is_nothing_to_recommend(testbed_home: Path, tmp_path: Path) -> None:
    result = chaos(
        "gameday", "recommend", str(tmp_path), "-o", str(tmp_path / "out.json"), home=testbed_home
    )
    assert result.returncode == 1
    assert "Nothing to recommend: 0 experiments reproduced" in result.stdout
    assert not (tmp_path / "out.json").exists()


def test_recommend_from_missing_journals_is_one_line(testbed_home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-gameday"
    result = chaos("gameday", "recommend", str(missing), home=testbed_home)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"Error: no journals at {missing}: give a game day's folder, or the folder of a "
        "`chaos run` of several experiments"
    )


def test_recommend_reads_the_latest_folder_of_runs_a_game_day_or_a_chaos_run(
    testbed_home: Path, tmp_path: Path
) -> None:
    """Without SOURCES: the newest of journals/gd-<time>-<id> and journals/run-<time>,
    whichever wrote it (`chaos gameday run`, or `chaos run experiments/*.json`)."""
    journals = tmp_path / "journals"
    for name in ("gd-20261203T090000Z-a1b2", "run-20261204T090000Z", "gd-20261202T090000Z-c3d4"):
        (journals / name).mkdir(parents=True)

    def recommend_here() -> subprocess.CompletedProcess:
        """`chaos gameday recommend` with no SOURCES, from the folder holding journals/."""
        return subprocess.run(
            [CHAOS, "--no-version-check", "--no-log-file", "gameday", "recommend"],
            cwd=tmp_path,
            env={**os.environ, "TESTBED_HOME": str(testbed_home)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = recommend_here()
    assert result.returncode == 1, result.stderr
    assert "0 experiments reproduced in journals/run-20261204T090000Z" in result.stdout
    (journals / "gd-20261205T090000Z-e5f6").mkdir()
    result = recommend_here()
    assert "0 experiments reproduced in journals/gd-20261205T090000Z-e5f6" in result.stdout
