"""Several experiments through one `chaos run` (`chaos run experiments/*.json`, or a
folder): each runs in turn exactly as `chaos run` of it alone would, through Chaos
Toolkit's own command (the same settings, controls, `--var`/`--var-file`, rollbacks,
verdict and journal), on one target held for the series: the embedded testbed brought
up once, when a run uses it and it is down, and taken down at the end.

Before anything runs, every file must parse, pass validation (unless `--no-validation`)
and say a verdict it may expect; the names must differ, since each journal is named
after its experiment (`<journal folder>/<experiment>.json`). Each run ends with one line;
the series with a table. SIGINT or SIGTERM stops the run under way, with its rollbacks,
and the rest are not run.

Exit codes: 0 every run as expected (its `expect` when given, else `chaos run`'s own
rule: what it exits 0 on); 1 some run not, or a file that cannot run; 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from chaoslib import merge_vars
from chaoslib.types import Journal
from chaostoolkit.runtime import PythonRuntimeError, get_python_runtime_info
from rich.console import Console
from rich.table import Table

from chaoskit.gameday.execution import StopSignals, held_target
from chaoskit.gameday.exit_codes import EXIT_CODES
from chaoskit.gameday.experiment_file import (
    EXPERIMENT_SUFFIXES,
    load_experiment_file,
    read_experiment,
)
from chaoskit.kit import registry
from chaoskit.kit.errors import KitError
from chaoskit.kit.files import write_json_atomically
from chaoskit.kit.settings import RunSettings
from chaoskit.verification.configuration import run_configuration
from chaoskit.verification.control import JOURNAL_KEY

__all__ = [
    "SeriesError",
    "SeriesRun",
    "check_sources",
    "exit_code",
    "experiment_sources",
    "journal_folder",
    "run_series",
]

_TESTBED_CONTROL = "chaoskit.testbed.control"


class SeriesError(KitError):
    """The series cannot start; the message names the file or option at fault."""


@dataclass
class SeriesRun:
    """One experiment of the series, as its line and the closing table show it."""

    name: str
    source: str
    verdict: str  # the kit's; else the toolkit's status; `not-run`, `error`
    expected: str | None
    as_expected: bool
    reason: str | None = None
    duration_s: float | None = None
    journal: Path | None = None


def experiment_sources(sources: Sequence[str]) -> list[str]:
    """The experiment files of `sources`, in order: a file as given, a folder's
    experiment files in name order. SeriesError: a folder without any, or two
    experiments of one name (their journals would take each other's place)."""
    found: list[str] = []
    for source in sources:
        folder = Path(source)
        if folder.is_dir():
            files = sorted(p for p in folder.iterdir() if p.suffix in EXPERIMENT_SUFFIXES)
            if not files:
                raise SeriesError(f"{source}: no experiment file (.json, .yaml, .yml) in it")
            found += [str(p) for p in files]
        else:
            found.append(source)
    names: dict[str, str] = {}
    for source in found:
        name = _name(source)
        if name in names:
            raise SeriesError(
                f"{names[name]} and {source} are both named {name!r}: their "
                "journals would overwrite each other; run them apart"
            )
        names[name] = source
    return found


def _name(source: str) -> str:
    return Path(source.split("?", 1)[0]).stem


def journal_folder(journal_path: str | None, now: datetime) -> Path:
    """Where the series' journals go: `journal_path` (a folder) when given, else
    `journals/run-<time>/`. SeriesError: a path that names a file."""
    if journal_path is None:
        base = Path("journals") / f"run-{now:%Y%m%dT%H%M%SZ}"
        folder, taken = base, 1
        while folder.exists():  # two series within one second
            taken += 1
            folder = base.with_name(f"{base.name}-{taken}")
        return folder
    folder = Path(journal_path)
    if folder.is_file() or (not folder.exists() and folder.suffix in EXPERIMENT_SUFFIXES):
        raise SeriesError(
            f"--journal-path {journal_path}: with several experiments give a "
            "folder: each journal is named after its experiment"
        )
    return folder


@dataclass
class _Plan:
    """What the series needs to know of its experiments before it starts."""

    target: str
    service: Any
    kit: bool  # some run declares the kit's controls: the series holds the target
    testbed: bool  # some run uses the embedded testbed's control


def _kit_controls(experiment: dict[str, Any]) -> set[str]:
    modules = {
        ((c or {}).get("provider") or {}).get("module")
        for c in experiment.get("controls") or []
        if isinstance(c, dict)
    }
    return {m for m in modules if isinstance(m, str) and m.startswith("chaoskit.")}


def check_sources(sources: list[str], variables: dict[str, Any], validate: bool) -> _Plan:
    """Every experiment checked before anything runs: it parses, it is valid (unless
    `validate` is false), it runs in this process, and, where it declares the kit's
    controls, its configuration settles as its run would settle it (its expectation a
    verdict, each value of its type); the target those share. SeriesError names the
    first file at fault."""
    targets: dict[str, str] = {}
    service, testbed = None, False
    for source in sources:
        path = Path(source)
        if not path.is_file():
            continue  # a URL: Chaos Toolkit loads it, and says so if it cannot
        try:
            experiment = load_experiment_file(path) if validate else read_experiment(path)
            if get_python_runtime_info(experiment) is not None:
                raise SeriesError(
                    f"{source}: it runs in a Python runtime of its own: run it "
                    f"alone, with chaos run {source}"
                )
            controls = _kit_controls(experiment)
            if not controls:
                continue  # the user's own: the toolkit alone runs it
            settings = RunSettings.of(run_configuration(experiment, variables))
            targets[source] = settings.target
            if _TESTBED_CONTROL in controls and not testbed:
                testbed = True
                service = settings.service
        except (KitError, PythonRuntimeError) as error:
            message = str(error)
            raise SeriesError(message if source in message else f"{source}: {message}") from None
        except Exception as error:  # noqa: BLE001 - chaoslib's configuration errors, say
            raise SeriesError(f"{source}: {error}") from None
    if len(set(targets.values())) > 1:
        shown = ", ".join(f"{_name(s)}: {t}" for s, t in targets.items())
        raise SeriesError(f"the experiments do not share a target ({shown}): run them apart")
    target = next(iter(targets.values()), "embedded")
    return _Plan(target, service, bool(targets), testbed and target == "embedded")


def _run_entry(source: str, journal: Journal, path: Path) -> SeriesRun:
    kit = journal.get(JOURNAL_KEY) or {}
    # Chaos Toolkit's own rule for its exit code, which the kit's expectation drives
    passed = journal.get("status") == "completed" and not journal.get("deviated", False)
    return SeriesRun(
        _name(source),
        source,
        kit.get("verdict") or f"({journal.get('status')})",
        kit.get("expected"),
        passed,
        kit.get("reason"),
        round(journal.get("duration") or 0.0, 1),
        path,
    )


def _say(console: Console, index: int, total: int, entry: SeriesRun) -> None:
    mark = "ok " if entry.as_expected else "NOT"
    expected = f", expected {entry.expected}" if entry.expected and not entry.as_expected else ""
    why = f": {entry.reason}" if not entry.as_expected and entry.reason else ""
    took = f" in {entry.duration_s:g} s" if entry.duration_s is not None else ""
    console.print(
        f"[{index}/{total}] {mark} {entry.name}: {entry.verdict}{expected}{took}{why}",
        highlight=False,
        soft_wrap=True,
    )


def _table(entries: list[SeriesRun]) -> Table:
    table = Table(title="chaos run: every experiment")
    for column in ("experiment", "verdict", "expected", "as expected", "s", "journal"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e.name,
            e.verdict,
            e.expected or "-",
            "yes" if e.as_expected else "NO",
            "-" if e.duration_s is None else f"{e.duration_s:g}",
            str(e.journal) if e.journal else "-",
        )
    return table


def exit_code(entries: list[SeriesRun], interrupted: bool) -> int:
    if interrupted:
        return EXIT_CODES["interrupted"]
    passed = entries and all(e.as_expected for e in entries)
    return EXIT_CODES["as-expected" if passed else "not-as-expected"]


def run_series(
    sources: list[str],
    folder: Path,
    run_one: Callable[[str, Path], Journal | None],
    variables: tuple[dict[str, Any], list[str]],
    validate: bool,
    console: Console,
) -> int:
    """Run every source through `run_one(source, journal_path)` (Chaos Toolkit's `chaos
    run` of that one source; None when it refused to load or validate it), with
    `variables` (`--var`, `--var-file`) as the runs take them; return the exit code.
    SeriesError, or LockHeld (another run holds the target), before anything runs."""
    config_vars, _ = merge_vars(dict(variables[0]), variables[1])
    toolkit = logging.getLogger("chaostoolkit")
    level = toolkit.level
    toolkit.setLevel(logging.WARNING)  # each run says again that it validated
    try:
        plan = check_sources(sources, config_vars, validate)
    finally:
        toolkit.setLevel(level)
    folder.mkdir(parents=True, exist_ok=True)
    entries: list[SeriesRun] = []
    owner = f"chaos run of {len(sources)} experiments ({folder.name})"
    target = {"target": plan.target, "service": plan.service}

    def say(text: str) -> None:
        console.print(text, highlight=False)

    # a series of the user's own experiments alone holds no target of the kit's
    held = held_target(target, owner, say, testbed=plan.testbed) if plan.kit else StopSignals()
    with held as stop:
        for index, source in enumerate(sources, 1):
            if stop.signal:
                entries.append(SeriesRun(_name(source), source, "not-run", None, False))
                continue
            entry = _run(source, folder / f"{_name(source)}.json", run_one, stop)
            entries.append(entry)
            _say(console, index, len(sources), entry)
    console.print(_table(entries))
    console.print(
        f"{sum(e.as_expected for e in entries)} of {len(entries)} as expected; "
        f"journals in {folder}",
        highlight=False,
        soft_wrap=True,
    )
    if stop.signal:
        console.print(f"Interrupted by {stop.signal}: the rest were not run", highlight=False)
    return exit_code(entries, bool(stop.signal))


def _run(
    source: str, path: Path, run_one: Callable[[str, Path], Journal | None], stop: StopSignals
) -> SeriesRun:
    started = time.monotonic()
    stop.in_run = True
    try:
        journal = run_one(source, path)
    except KeyboardInterrupt:
        # interrupted outside the part Chaos Toolkit guards: undo what is registered
        registry.stop_all()
        stop.signal = stop.signal or "SIGINT"
        return SeriesRun(
            _name(source),
            source,
            "aborted",
            None,
            False,
            f"interrupted by {stop.signal} before its journal was complete",
        )
    finally:
        stop.in_run = False
    if journal is None:
        return SeriesRun(
            _name(source),
            source,
            "error",
            None,
            False,
            "chaos run could not load or validate it (see above)",
            round(time.monotonic() - started, 1),
        )
    received = (journal.get("interruption") or {}).get("name")
    kit = journal.get(JOURNAL_KEY) or {}
    stop.signal = stop.signal or received or kit.get("interrupted_by")
    if kit and path.is_file():
        _name_the_file(path, source)
    return _run_entry(source, journal, path)


def _name_the_file(journal_path: Path, source: str) -> None:
    """Which file ran, in the kit's section, as a game day's journal says it: the report
    and the recommendations name the run by it, and find the experiment again."""
    written = json.loads(journal_path.read_text())
    written[JOURNAL_KEY]["experiment_file"] = source
    write_json_atomically(journal_path, written)
