"""The kit away from its repository: the distribution Chaos Toolkit lists, the
experiments, suites, profiles and example services inside the installed package and
found from any folder, a team's starting folder (`chaos gameday init`), and the JSON
Schemas an editor checks a team's files with."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit import DISTRIBUTION
from chaoskit.gameday.schemas import SCHEMAS
from chaoskit.gameday.starting_folder import DEFAULT_EXPERIMENTS, PROFILE, SUITE
from chaoskit.gameday.suite import SuiteError, load_suite
from chaoskit.kit.errors import KitError
from chaoskit.kit.settings import embedded_profile
from chaoskit.kit.shipped import EXPERIMENTS, find_file
from chaoskit.testbed.system import check_startable, kit_paths, system_under_test
from chaoskit.verification.extension import read_extension
from chaoskit.verification.stop_conditions import check_stop_conditions
from tests.conftest import REPO

BIN = Path(sys.executable).parent
CHECK = BIN / "check-jsonschema"
PUBLISHED = REPO / "schemas"
EXAMPLE = REPO / "experiments" / "profiles" / "example-service.json"


def chaos(*args: str, cwd: Path, home: Path, bin: Path = BIN, timeout_s: float = 120):
    """`chaos ARGS` as a user runs it in `cwd`, on the testbed home `home`."""
    return subprocess.run(
        [str(bin / "chaos"), "--no-version-check", "--no-log-file", *args],
        cwd=cwd,
        env={**os.environ, "TESTBED_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def check(schema: str, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHECK), "--schemafile", str(PUBLISHED / schema), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the distribution -------------------------------------------------------------------


def test_chaos_info_extensions_lists_the_kit(tmp_path: Path, testbed_home: Path) -> None:
    result = chaos("info", "extensions", cwd=tmp_path, home=testbed_home)
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()]
    assert DISTRIBUTION in listed


# --- the kit's own experiments, from any folder -----------------------------------------


def test_a_name_is_found_in_the_kits_own_experiments_where_there_is_none_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    own = EXPERIMENTS / "smd-phase3-timeout.json"
    for given in (
        "smd-phase3-timeout",
        "smd-phase3-timeout.json",
        "experiments/smd-phase3-timeout.json",
    ):
        assert find_file(Path(given), (".json",)) == own
    assert find_file(Path("staging"), (".json",), "profiles") == EXPERIMENTS / "profiles" / (
        "staging.json"
    )
    assert find_file(Path("experiments"), ()) == EXPERIMENTS
    assert find_file(Path("no-such-experiment"), (".json",)) == Path("no-such-experiment")
    # a folder with experiments of its own uses them, and only them
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "mine.json").write_text("{}")
    assert find_file(Path("mine"), (".json",)) == Path("experiments/mine.json")
    assert find_file(Path("smd-phase3-timeout"), (".json",)) == Path("smd-phase3-timeout")


def test_from_an_empty_folder_a_game_day_uses_the_kits_own_and_says_so(
    tmp_path: Path, testbed_home: Path
) -> None:
    result = chaos(
        "gameday",
        "run",
        "--dry-run",
        "--only",
        "smd-phase3-timeout",
        cwd=tmp_path,
        home=testbed_home,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    said = result.stdout.splitlines()[0]
    assert said == (
        f"Suite: {EXPERIMENTS / 'gameday.toml'} (the kit's own experiments, "
        "installed with it: there is no ./experiments here)"
    )
    assert "Nothing in the way: 1 runs would start." in result.stdout
    staging = chaos(
        "gameday", "run", "--dry-run", "--suite", "gameday-staging", cwd=tmp_path, home=testbed_home
    )
    assert f"Suite: {EXPERIMENTS / 'gameday-staging.toml'}" in staging.stdout
    assert "issue-1278-staging" in staging.stdout
    # a profile and a sweep's experiment by name, as the README gives them
    fixed = chaos(
        "gameday",
        "run",
        "--dry-run",
        "--only",
        "smd-phase3-timeout",
        "--profile",
        "remediation",
        cwd=tmp_path,
        home=testbed_home,
    )
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    sweep = chaos(
        "gameday", "limit", "smd-phase3-timeout", "--dry-run", cwd=tmp_path, home=testbed_home
    )
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    assert sweep.stdout.startswith(f"Experiment: {EXPERIMENTS / 'smd-phase3-timeout.json'} (")
    assert list(tmp_path.iterdir()) == []  # nothing written here


def test_chaos_validate_takes_a_shipped_experiment_by_name_from_anywhere(
    tmp_path: Path, testbed_home: Path
) -> None:
    result = chaos(
        "validate",
        "--var-file",
        "experiments/profiles/example-service.json",
        "smd-phase3-timeout",
        cwd=tmp_path,
        home=testbed_home,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    said = result.stdout + result.stderr
    assert "Experiment looks valid" in said
    assert f"smd-phase3-timeout: {EXPERIMENTS / 'smd-phase3-timeout.json'} (the kit's own" in said
    missing = chaos("validate", "no-such-experiment", cwd=tmp_path, home=testbed_home)
    assert missing.returncode != 0 and "Traceback" not in missing.stdout + missing.stderr


def test_the_example_profiles_start_their_service_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`${examples}` is the kit's folder of example services, wherever it is installed."""
    monkeypatch.chdir(tmp_path)
    for name in ("example-service.json", "smd-service.json"):
        configuration = json.loads((EXPERIMENTS / "profiles" / name).read_text())["configuration"]
        system = system_under_test(configuration["service"])
        check_startable(system, {**embedded_profile(), **configuration})
        values = {**embedded_profile(), **configuration, **kit_paths()}
        argv, _ = system.resolve(
            {**values, "database_url": "-", "port": 1, "application_name": "-"}
        )
        assert system.command[1].startswith("${examples}/") and Path(argv[1]).is_file()
    assert not (tmp_path / "examples").exists()


# --- chaos gameday init -----------------------------------------------------------------


def test_init_writes_a_starting_folder_that_passes_the_kits_checks(
    tmp_path: Path, testbed_home: Path
) -> None:
    folder = tmp_path / "team"
    result = chaos("gameday", "init", str(folder), cwd=tmp_path, home=testbed_home)
    assert result.returncode == 0, result.stdout + result.stderr
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert written == sorted(
        [str(SUITE), str(PROFILE), *(f"experiments/{n}.json" for n in DEFAULT_EXPERIMENTS)]
    )
    assert "chaos gameday run --dry-run" in result.stdout and f"cd {folder}" in result.stdout
    suite = tomllib.loads((folder / SUITE).read_text())
    assert [e["name"] for e in suite["experiment"]] == list(DEFAULT_EXPERIMENTS)
    # a profile with comments, for their own service: YAML
    profile_text = (folder / PROFILE).read_text()
    assert profile_text.count("\n#") + profile_text.count("\n  #") > 10
    dry = chaos("gameday", "run", "--dry-run", cwd=folder, home=testbed_home)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout.splitlines()[0] == "Suite: experiments/gameday.toml (./experiments)"
    assert f"Nothing in the way: {len(DEFAULT_EXPERIMENTS)} runs would start." in dry.stdout
    assert not (testbed_home / "state.json").exists()  # nothing started
    schemas = [
        check("suite.schema.json", folder / SUITE),
        check("profile.schema.json", folder / PROFILE),
        check("experiment.schema.json", *(folder / "experiments").glob("*.json")),
    ]
    assert all(r.returncode == 0 for r in schemas), [r.stdout for r in schemas]


def test_init_takes_the_experiments_a_team_picks(tmp_path: Path, testbed_home: Path) -> None:
    result = chaos(
        "gameday",
        "init",
        "--experiment",
        "lifespan-exit-code",
        "--experiment",
        "smd-phase3-timeout",
        cwd=tmp_path,
        home=testbed_home,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    suite = tomllib.loads((tmp_path / SUITE).read_text())
    assert [e["file"] for e in suite["experiment"]] == [
        "lifespan-exit-code.json",
        "smd-phase3-timeout.json",
    ]
    assert "cd " not in result.stdout  # written here: nowhere to go


def test_init_never_overwrites_and_writes_nothing_then(tmp_path: Path, testbed_home: Path) -> None:
    (tmp_path / "experiments" / "profiles").mkdir(parents=True)
    mine = tmp_path / PROFILE
    mine.write_text("configuration: {pool_size: 7}\n")
    result = chaos("gameday", "init", cwd=tmp_path, home=testbed_home)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {PROFILE} exists: init never overwrites a file; give an empty folder "
        "(chaos gameday init DIR), or move it away"
    ]
    assert mine.read_text() == "configuration: {pool_size: 7}\n"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [mine]


def test_init_names_an_experiment_the_kit_does_not_have(tmp_path: Path, testbed_home: Path) -> None:
    result = chaos(
        "gameday", "init", "--experiment", "smd-phase3-timeot", cwd=tmp_path, home=testbed_home
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "Error: --experiment smd-phase3-timeot: not one of the kit's "
        "experiments (did you mean smd-phase3-timeout?)"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_starting_profile_runs_the_example_service_as_its_profile_does() -> None:
    """What the starting folder's profile runs, until the team makes it theirs, is the
    example service exactly as the kit's own profile of it (whose runs the tests hold)."""
    text = (REPO / "src" / "chaoskit" / "gameday" / "starting-profile.yaml").read_text()
    starting = yaml.safe_load(text)["configuration"]["service"]
    assert starting == json.loads(EXAMPLE.read_text())["configuration"]["service"]


# --- the JSON Schemas -------------------------------------------------------------------


def test_the_published_schemas_are_made_from_the_kits_checks() -> None:
    for name, make in SCHEMAS.items():
        published = json.loads((PUBLISHED / name).read_text())
        assert published == make(), f"schemas/{name} is out of date: run `make schemas`"
        assert published["$id"].endswith(name.split(".")[0])
    assert (REPO / "src" / "chaoskit" / "schemas").resolve() == PUBLISHED


def test_every_shipped_experiment_suite_and_profile_passes_its_schema() -> None:
    experiments = sorted((REPO / "experiments").glob("*.json"))
    suites = sorted((REPO / "experiments").glob("*.toml"))
    profiles = [
        *sorted((REPO / "experiments" / "profiles").glob("*.json")),
        REPO / "src" / "chaoskit" / "testbed" / "embedded-profile.json",
        REPO / "tests" / "strangers" / "ledger-service.json",
        REPO / "tests" / "strangers" / "tally" / "profile.json",
    ]
    assert len(experiments) >= 12 and len(suites) >= 3 and len(profiles) >= 6
    checked = {"experiment": experiments, "suite": suites, "profile": profiles}
    for kind, files in checked.items():
        result = check(f"{kind}.schema.json", *files)
        assert result.returncode == 0, result.stdout + result.stderr


def _experiment(change: Any) -> dict:
    experiment = json.loads((REPO / "experiments" / "smd-phase3-timeout.json").read_text())
    change(experiment["extensions"][0])
    return experiment


def _refused_by_the_kit(kind: str, document: Any, path: Path) -> str:
    """What the kit's own check says of `document` (written at `path`)."""
    try:
        if kind == "experiment":
            read_extension(document)
        elif kind == "suite":
            load_suite(path)
        elif "stop_conditions" in document["configuration"]:
            check_stop_conditions(document["configuration"]["stop_conditions"])
        else:
            service = document["configuration"]["service"]
            check_startable(system_under_test(service), embedded_profile())
    except (KitError, SuiteError) as error:
        return str(error)
    return ""


MALFORMED = [
    (
        "experiment",
        "a misspelt setting",
        _experiment(lambda e: e.update(recovery_timeout=30)),
        "'recovery_timeout' was unexpected",
    ),
    (
        "experiment",
        "an expectation that is no verdict",
        _experiment(lambda e: e.update(expect="passed")),
        "'passed' is not one of",
    ),
    (
        "experiment",
        "a knob pressing sideways",
        _experiment(lambda e: e["knobs"]["flood_connections"].update(pressure="sideways")),
        "'sideways' is not one of",
    ),
    (
        "suite",
        "a misspelt header key",
        '[gameday]\non_failur = "stop"\n[[experiment]]\nname = "a"\nfile = "smd.json"\n',
        "'on_failur' was unexpected",
    ),
    (
        "suite",
        "an experiment named as the summary",
        '[[experiment]]\nname = "summary"\nfile = "smd.json"\n',
        "should not be valid",
    ),
    (
        "profile",
        "a readiness that is no path",
        {"configuration": {"service": {"command": ["${python}"], "ready": {"http": "health"}}}},
        "'health' does not match '^/'",
    ),
    (
        "profile",
        "an exit code out of range",
        {"configuration": {"service": {"command": ["${python}"], "failure_exit_code": 300}}},
        "300 is greater than the maximum of 255",
    ),
    (
        "profile",
        "a team's own stop condition without its tolerance",
        {
            "configuration": {
                "stop_conditions": {
                    "probes": [
                        {
                            "name": "checkout",
                            "probe": {
                                "type": "probe",
                                "name": "checkout",
                                "provider": {"type": "http", "url": "http://x"},
                            },
                        }
                    ]
                }
            }
        },
        "'tolerance' is a required property",
    ),
]


@pytest.mark.parametrize(
    ("kind", "case", "document", "flagged"), MALFORMED, ids=[f"{m[0]}: {m[1]}" for m in MALFORMED]
)
def test_a_malformed_document_is_flagged_by_its_schema_as_by_the_kit(
    tmp_path: Path, kind: str, case: str, document: Any, flagged: str
) -> None:
    if kind == "suite":
        path = tmp_path / "gameday.toml"
        path.write_text(document)
        (tmp_path / "smd.json").write_text((EXPERIMENTS / "smd-phase3-timeout.json").read_text())
    else:
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps(copy.deepcopy(document)))
    result = check(f"{kind}.schema.json", path)
    assert result.returncode == 1 and flagged in result.stdout, result.stdout
    assert _refused_by_the_kit(kind, copy.deepcopy(document), path), f"the kit takes {case}"


# --- the built wheel, in a fresh environment --------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_built_wheel_reproduces_from_an_empty_folder(
    tmp_path: Path, testbed_home: Path
) -> None:
    """`pip install` of the wheel into a fresh venv; then, from an empty folder, the
    README's first game day reproduces, and Chaos Toolkit lists the kit."""
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("chaostoolkit_startup_chaos_kit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "experiments/gameday.toml",
        "experiments/smd-phase3-timeout.json",
        "experiments/profiles/staging.json",
        "examples/inventory-service/service.py",
        "examples/smd-service/service.py",
        "schemas/suite.schema.json",
        "gameday/starting-profile.yaml",
        "actions/flood.py",
        "py.typed",
    ):
        assert f"chaoskit/{shipped}" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert installed.returncode == 0, installed.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    info = chaos("info", "extensions", cwd=empty, home=testbed_home, bin=venv / "bin")
    assert DISTRIBUTION in info.stdout, info.stdout + info.stderr
    result = chaos(
        "gameday",
        "run",
        "--only",
        "smd-phase3-timeout",
        cwd=empty,
        home=testbed_home,
        bin=venv / "bin",
        timeout_s=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert result.stdout.splitlines()[0].startswith(f"Suite: {site / 'chaoskit'}")
    (summary_path,) = (empty / "journals").glob("gd-*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert [(e["name"], e["verdict"]) for e in summary["experiments"]] == [
        ("smd-phase3-timeout", "reproduced")
    ]
