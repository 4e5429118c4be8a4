"""`chaos gameday run|schedule`: hold game days, now or on a schedule."""

from __future__ import annotations

import logging
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from chaoskit.gameday.exit_codes import EXIT_CODES
from chaoskit.kit.console import output_console
from chaoskit.kit.errors import KitError
from chaoskit.kit.files import unwritable, unwritable_folder, write_json_atomically
from chaoskit.kit.lock import LockHeld
from chaoskit.kit.redaction import mask_passwords_in_logs
from chaoskit.kit.shipped import find_file, find_profile, where_from
from chaoskit.kit.var_files import check_var_file

if TYPE_CHECKING:
    from chaoskit.gameday.execution import StopSignals

__all__ = ["gameday"]

# The chaos command loads this plugin before any command, `chaos run` included: each
# command imports the game day's machinery (the report's charts among it) when it runs.


def _profile_files(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """Each var-file as given, or the kit's own profile it names (`staging`,
    `experiments/profiles/staging.json` where there is no ./experiments)."""
    return tuple(map(find_profile, paths))


def _refuse_unreadable_var_files(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    found = tuple(str(find_profile(path)) for path in value or ())
    for path in found:
        try:
            check_var_file(path)
        except KitError as error:
            raise click.BadParameter(str(error), ctx, param) from None
    return found


def _refuse_unreadable_settings(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """The settings file (`chaos --settings`) is read before the experiment: one it
    cannot read, or whose control is not installed, stops `chaos run` and `chaos
    validate` before anything (an experiment file it cannot read is the kit's `run` and
    `validate` plugins' to refuse, in one line: chaoskit.gameday.chaos_run)."""
    from chaoskit.gameday.execution import load_run_settings

    try:
        load_run_settings(_settings_path(), [])
    except KitError as error:
        raise click.UsageError(str(error), ctx) from None
    return value


def _refuse_unreadable_control_files(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    from chaoskit.gameday.execution import check_control_file

    for path in value or ():
        try:
            check_control_file(Path(path))
        except KitError as error:
            raise click.BadParameter(str(error), ctx, param) from None
    return value


def _guard_chaos_run() -> None:
    """`chaos run` and `chaos validate` would print a loader's traceback for a settings,
    experiment or control file they cannot read, run without a control whose module
    does not load, and `chaos run --var-file` would log a file it cannot parse and go on
    with the defaults: the kit's plugin, loaded before any command, makes each one line
    and an error before anything runs."""
    from chaostoolkit.commands.run import run
    from chaostoolkit.commands.validate import validate

    callbacks = {
        "var_file": _refuse_unreadable_var_files,
        "control_file": _refuse_unreadable_control_files,
        "source": _refuse_unreadable_settings,
    }
    for command in (run, validate):
        for param in command.params:
            if param.name in callbacks:
                param.callback = callbacks[param.name]


# the chaos CLI loads this plugin before any command: nothing it logs shows a password,
# and no var-file it cannot read is passed over
mask_passwords_in_logs()
_guard_chaos_run()

DEFAULT_SUITE = Path("experiments/gameday.toml")
_SUITE_HELP = (
    "The suite file (TOML), or the name of a suite of the experiments folder (e.g. "
    "gameday-staging). [default: experiments/gameday.toml; where there is no "
    "./experiments, the kit's own]"
)
DEFAULT_JOURNALS = Path("journals")


@click.group()
def gameday() -> None:
    """Game days: every experiment of a suite, in order, with verdicts kept for review."""


def _suite_options(command: click.Command) -> click.Command:
    for option in reversed(
        [
            click.option(
                "--suite", type=click.Path(path_type=Path), default=None, help=_SUITE_HELP
            ),
            click.option(
                "--profile",
                type=click.Path(path_type=Path),
                multiple=True,
                help="A var-file (e.g. experiments/profiles/staging.json, or a "
                "profile's name: staging), layered on the suite's own "
                "profile; repeatable, later ones win (say, raised "
                "guardrails). None: the embedded testbed.",
            ),
            click.option(
                "--only", multiple=True, help="Run only this experiment of the suite (repeatable)."
            ),
            click.option(
                "--journals",
                type=click.Path(path_type=Path),
                default=DEFAULT_JOURNALS,
                show_default=True,
                help="Where <gameday id>/<experiment>.json go.",
            ),
            click.option(
                "--control-file",
                "control_files",
                multiple=True,
                type=click.Path(path_type=Path),
                help="Global controls for every run, as `chaos run --control-file` "
                "(JSON or YAML; repeatable). Those of the Chaos Toolkit "
                "settings file (`chaos --settings`) apply too.",
            ),
            click.option(
                "--keep",
                type=click.IntRange(min=1),
                default=None,
                help="Keep the N newest game days under --journals (this one "
                "among them); older game-day folders are removed before it "
                "starts. Default: keep all.",
            ),
            click.option(
                "--metrics",
                type=click.Path(path_type=Path),
                default=None,
                help="Also write the verdicts as Prometheus metrics (a textfile "
                "for node_exporter's textfile collector).",
            ),
        ]
    ):
        command = option(command)
    return command


def _suite_file(given: Path | None) -> Path:
    """The suite to hold: `given` when it is a file; else the one it names in the
    experiments folder (./experiments, else the kit's own), which is said."""
    found = find_file(given or DEFAULT_SUITE, (".toml",))
    if found != given:
        click.echo(f"Suite: {found} ({where_from(found)})")
    return found


def _settings_path() -> str | None:
    """The Chaos Toolkit settings file the `chaos` command was given (`--settings`)."""
    context = click.get_current_context(silent=True)
    root = context.find_root() if context else None
    return ((root.obj if root else None) or {}).get("settings_path")


def _quiet_toolkit() -> None:
    # Chaos Toolkit logs each validation and run to the console; the progress view, and
    # one line for a mistake, say it better
    logging.getLogger("chaostoolkit").setLevel(logging.ERROR)


def _junit_writable(junit: Path | None, option: str = "--junit") -> bool:
    """Whether --junit (or `option`), if given, can be written; if not, says why in one
    line."""
    why = unwritable(junit) if junit is not None else None
    if why:
        click.echo(
            f"Error: {option} {junit}: cannot be written ({why}): give a path in a "
            "folder you may write to",
            err=True,
        )
    return why is None


def _hold(
    suite_path: Path | None,
    profile: tuple[Path, ...],
    only: tuple[str, ...],
    journals: Path,
    control_files: tuple[Path, ...] = (),
    junit: Path | None = None,
    keep: int | None = None,
    metrics: Path | None = None,
) -> tuple[int, str | None]:
    """One game day; returns its exit code (see `run`) and its id, if it started."""
    from chaoskit.gameday.execution import StopSignals

    # from the first moment: a signal during the checks interrupts the game day, whose
    # summary says so, rather than stopping it halfway through them
    suite_file, profiles = _suite_file(suite_path), _profile_files(profile)
    with StopSignals() as stop:
        return _checked_and_held(
            suite_file, profiles, only, journals, control_files, junit, keep, metrics, stop
        )


def _checked_and_held(
    suite_path: Path,
    profile: tuple[Path, ...],
    only: tuple[str, ...],
    journals: Path,
    control_files: tuple[Path, ...],
    junit: Path | None,
    keep: int | None,
    metrics: Path | None,
    stop: StopSignals,
) -> tuple[int, str | None]:
    from chaoskit.gameday.execution import load_run_settings, unload_run_settings
    from chaoskit.gameday.retention import prune_gamedays
    from chaoskit.gameday.runner import run_gameday
    from chaoskit.gameday.suite import load_suite
    from chaoskit.report.junit import write_junit
    from chaoskit.report.report import write_reports
    from chaoskit.testbed.state import read_state

    _quiet_toolkit()
    if (
        not _junit_writable(junit)
        or not _junit_writable(metrics, "--metrics")
        or not _journals_writable(journals)
    ):
        return EXIT_CODES["usage"], None
    try:
        suite = load_suite(suite_path, profile)
        if only:
            suite = suite.only(list(only))
        settings = load_run_settings(_settings_path(), list(control_files))
        read_state()  # TESTBED_HOME a folder, its state one the kit wrote
    except KitError as error:
        click.echo(f"Error: {error}", err=True)
        return EXIT_CODES["usage"], None
    console = output_console()
    if keep is not None:  # the game day about to run is one of the `keep`
        removed = [p.name for p in prune_gamedays(journals, keep - 1)]
        if removed:
            console.print(
                f"--keep {keep}: removed {len(removed)} older game days "
                f"({removed[0]} to {removed[-1]})",
                highlight=False,
            )
    try:
        result = run_gameday(suite, journals, console, settings, stop)
    except LockHeld as error:
        click.echo(f"Error: {error}", err=True)
        return EXIT_CODES["locked"], None
    finally:
        unload_run_settings()
    summary = result.summary
    folder = journals / summary["gameday_id"]
    console.print(
        f"Game day {summary['gameday_id']}: {summary['status']}; summary in "
        f"{folder / 'summary.json'}",
        highlight=False,
    )
    for entry in summary["experiments"]:
        mark = "ok " if entry["as_expected"] else "NOT"
        console.print(
            f"  {mark} {entry['name']}: {entry['verdict']} (expected {entry['expected']})",
            highlight=False,
        )
    if junit is not None:
        try:
            write_junit(junit, summary["name"], summary["experiments"])
        except OSError as error:
            click.echo(f"Error: --junit {junit}: {error.strerror}", err=True)
            return EXIT_CODES["usage"], summary["gameday_id"]
        console.print(f"JUnit results in {junit}", highlight=False)
    if metrics is not None:
        try:
            write_reports([journals], metrics_path=metrics)
        except OSError as error:
            click.echo(f"Error: --metrics {metrics}: {error.strerror}", err=True)
            return EXIT_CODES["usage"], summary["gameday_id"]
        console.print(f"Metrics in {metrics}", highlight=False)
    return result.exit_code, summary["gameday_id"]


def _journals_writable(journals: Path) -> bool:
    """Whether --journals can hold journals; if not, says why in one line, before a
    game day runs rather than after."""
    why = unwritable_folder(journals)
    if why:
        click.echo(f"Error: --journals {journals}: {why}: give a folder you may write to", err=True)
    return why is None


_JUNIT_HELP = "Also JUnit XML: a test case per experiment, failed when not as expected."
_DRY_RUN_HELP = (
    "Check everything first (the experiments, the guardrails with the configuration "
    "substituted, the target's preflight, its lock) and say what would run, in which "
    "order and for how long at most; then stop: nothing is started, locked or written."
)


@gameday.command()
@_suite_options
@click.option("--junit", type=click.Path(path_type=Path), default=None, help=_JUNIT_HELP)
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
def run(
    suite: Path | None,
    profile: tuple[Path, ...],
    only: tuple[str, ...],
    journals: Path,
    control_files: tuple[Path, ...],
    keep: int | None,
    metrics: Path | None,
    junit: Path | None,
    dry_run: bool = False,
) -> None:
    """Hold a game day now.

    Exit codes: 0 every verdict as the suite expects; 1 some verdict not as expected;
    2 bad suite or options; 3 skipped, the target failed its preflight; 4 another game
    day holds the target; 130 interrupted. With --dry-run: as the game day would end,
    as far as can be told before it starts (0, 1 a run would be refused, 2, 3, 4).
    """
    if dry_run:
        sys.exit(_dry_run_gameday(suite, profile, only, control_files, junit))
    sys.exit(_hold(suite, profile, only, journals, control_files, junit, keep, metrics)[0])


def _dry_run_gameday(
    suite_path: Path | None,
    profile: tuple[Path, ...],
    only: tuple[str, ...],
    control_files: tuple[Path, ...],
    junit: Path | None,
) -> int:
    """`chaos gameday run --dry-run`: its checks and its plan; the exit code."""
    from chaoskit.gameday.dry_run import plan_gameday, show_plan
    from chaoskit.gameday.execution import load_run_settings
    from chaoskit.gameday.suite import load_suite

    _quiet_toolkit()
    if not _junit_writable(junit):
        return EXIT_CODES["usage"]
    try:
        suite = load_suite(_suite_file(suite_path), _profile_files(profile))
        if only:
            suite = suite.only(list(only))
        load_run_settings(_settings_path(), list(control_files))
    except KitError as error:
        click.echo(f"Error: {error}", err=True)
        return EXIT_CODES["usage"]
    return show_plan(plan_gameday(suite), output_console())


@gameday.command()
@click.argument("folder", required=False, default=Path("."), type=click.Path(path_type=Path))
@click.option(
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME",
    help="One of the kit's experiments for the suite (repeatable) [default: "
    "smd-phase3-timeout, vpc-connector-concurrent-connections, "
    "cloudsql-pool-exhaustion].",
)
def init(folder: Path, experiments: tuple[str, ...]) -> None:
    """Write a team's starting folder into FOLDER (default: here): a suite
    (experiments/gameday.toml), a commented profile for their own service
    (experiments/profiles/my-service.yaml) and the experiments picked, copied from the
    kit's own. A file that exists is never overwritten: nothing is written, exit 2.
    """
    from chaoskit.gameday.starting_folder import (
        DEFAULT_EXPERIMENTS,
        PROFILE,
        SUITE,
        write_starting_folder,
    )

    try:
        written = write_starting_folder(folder, experiments or DEFAULT_EXPERIMENTS)
    except KitError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_CODES["usage"])
    click.echo(f"Wrote a game day's starting folder in {folder}:")
    for path in written:
        click.echo(f"  {path}")
    here = "" if folder == Path(".") else f"cd {shlex.quote(str(folder))}\n  "
    click.echo(
        f"Next:\n  # make {PROFILE} your service's: its command, env, readiness, log lines\n"
        f"  {here}chaos testbed check-service {PROFILE}   # one instance, its log read\n"
        f"  chaos gameday run --dry-run   # checks {SUITE} and all it names, starts nothing\n"
        "  chaos gameday run             # the game day, on the embedded testbed"
    )


@gameday.command()
@click.option("--cron", required=True, help="When to hold game days, e.g. '0 2 * * *' (UTC).")
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many game days (default: run until stopped).",
)
@_suite_options
def schedule(
    cron: str,
    runs: int | None,
    suite: Path | None,
    profile: tuple[Path, ...],
    only: tuple[str, ...],
    journals: Path,
    control_files: tuple[Path, ...],
    keep: int | None,
    metrics: Path | None,
) -> None:
    """Hold a game day at each tick of a cron expression, in the foreground."""
    from chaoskit.gameday.schedule import CronError, next_ticks, run_schedule

    try:
        upcoming = next_ticks(cron, datetime.now(UTC), 3)
    except CronError as error:
        raise click.BadParameter(str(error), param_hint="--cron") from None
    click.echo("Next game days: " + ", ".join(t.isoformat() for t in upcoming))

    def hold() -> str:
        code, gameday_id = _hold(suite, profile, only, journals, control_files, None, keep, metrics)
        return f"{gameday_id or '(not started)'} (exit code {code})"

    try:
        run_schedule(cron, hold, click.echo, runs=runs)
    except KeyboardInterrupt:
        click.echo("Scheduler stopped.")


@gameday.command()
@click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "html_path",
    type=click.Path(path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML report.",
)
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also a Markdown summary, fit for a pull-request comment.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also the report's content as JSON.",
)
@click.option("--junit", type=click.Path(path_type=Path), default=None, help=_JUNIT_HELP)
@click.option(
    "--metrics",
    type=click.Path(path_type=Path),
    default=None,
    help="Also the latest runs as Prometheus metrics (a textfile).",
)
@click.option(
    "--since",
    default=None,
    help="Only game days and runs since then: 7d, 12h, 30m, or a date or time (ISO 8601, UTC).",
)
def report(
    sources: tuple[Path, ...],
    html_path: Path,
    markdown_path: Path | None,
    json_path: Path | None,
    junit: Path | None,
    metrics: Path | None,
    since: str | None,
) -> None:
    """Review journals: verdicts, the failure chain, metrics, charts and trends.

    SOURCES are journal files or folders (searched recursively); default: journals/.
    """
    from chaoskit.report.junit import write_junit
    from chaoskit.report.report import junit_entries, parse_since, write_reports

    paths = list(sources) or [DEFAULT_JOURNALS]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise click.ClickException(f"no such journal or folder: {', '.join(missing)}")
    try:
        since_at = parse_since(since) if since is not None else None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--since'") from None
    if not _junit_writable(junit) or not _junit_writable(metrics, "--metrics"):
        sys.exit(EXIT_CODES["usage"])
    try:
        content = write_reports(paths, html_path, markdown_path, json_path, metrics, since_at)
        if junit is not None:
            suite = content["latest_gameday"] or "startup-chaos-kit"
            write_junit(junit, suite, junit_entries(content))
    except OSError as error:
        click.echo(
            f"Error: cannot write the report to {error.filename}: {error.strerror}: give a "
            "path in a folder you may write to",
            err=True,
        )
        sys.exit(EXIT_CODES["usage"])
    written = ", ".join(str(p) for p in (html_path, markdown_path, json_path, junit, metrics) if p)
    click.echo(
        f"Report of {content['runs_read']} journals ({len(content['corrupt'])} unreadable) "
        f"written to {written}"
    )


@gameday.command()
@click.argument("experiment", type=click.Path(path_type=Path))
@click.option(
    "--knob",
    default=None,
    help="The configuration key to sweep [default: the experiment's first knob].",
)
@click.option(
    "--from",
    "low",
    type=float,
    default=None,
    help="The range's low end [default: the knob's declared range].",
)
@click.option("--to", "high", type=float, default=None, help="The range's high end.")
@click.option(
    "--repeat",
    type=int,
    default=1,
    show_default=True,
    help="Runs at each side of the boundary, to tell a flaky one.",
)
@click.option(
    "--profile",
    type=click.Path(path_type=Path),
    multiple=True,
    help="A var-file layered under the sweep (repeatable).",
)
@click.option(
    "--journals",
    type=click.Path(path_type=Path),
    default=DEFAULT_JOURNALS,
    show_default=True,
    help="Where limit-<id>/ with every probe's journal goes.",
)
@click.option(
    "--control-file",
    "control_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Global controls for every probe, as `chaos run --control-file`.",
)
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
def limit(
    experiment: Path,
    knob: str | None,
    low: float | None,
    high: float | None,
    repeat: int,
    profile: tuple[Path, ...],
    journals: Path,
    control_files: tuple[Path, ...],
    dry_run: bool = False,
) -> None:
    """Find the breaking point: the most pressure on one knob at which EXPERIMENT is
    still `tolerated`, by real runs on one testbed kept up for the sweep.

    Exit codes: 0 found; 1 no breaking point in the range, or a probe that is not a
    verdict to sweep on; 2 bad experiment or options; 4 the target is busy; 130
    interrupted (the journals so far are kept). With --dry-run: 0 the sweep could start,
    1 a probe would be refused, 2, 3 the target fails its preflight, 4.
    """
    from chaoskit.gameday.execution import load_run_settings, unload_run_settings
    from chaoskit.gameday.experiment_file import EXPERIMENT_SUFFIXES
    from chaoskit.gameday.limit import run_limit

    _quiet_toolkit()
    console = output_console()
    if not _journals_writable(journals):
        sys.exit(EXIT_CODES["usage"])
    found = find_file(experiment, EXPERIMENT_SUFFIXES)
    if found != experiment:
        click.echo(f"Experiment: {found} ({where_from(found)})")
    experiment, profile = found, _profile_files(profile)
    try:
        for path in profile:
            check_var_file(str(path))
        settings = load_run_settings(_settings_path(), list(control_files))
        if dry_run:
            from chaoskit.gameday.dry_run import plan_sweep, show_plan

            plan = plan_sweep(experiment, knob, low, high, repeat, list(profile))
            sys.exit(show_plan(plan, console))
        result = run_limit(
            experiment, knob, low, high, repeat, list(profile), journals, settings, console
        )
    except LockHeld as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_CODES["locked"])
    except KitError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_CODES["usage"])
    finally:
        unload_run_settings()
    _print_limit(result, console)
    codes = {"found": 0, "interrupted": EXIT_CODES["interrupted"]}
    sys.exit(codes.get(result["status"], 1))


def _print_limit(result: dict, console: Console) -> None:
    from chaoskit.gameday.limit import failed_phase

    table = Table(title=f"{Path(result['experiment']).name}: {result['knob']}")
    for column in ("probe", result["knob"], "verdict", "failed phase", "cause"):
        table.add_column(column)
    for probe in sorted(result["probes"], key=lambda p: p["value"]):
        cells = (
            probe["probe"],
            probe["value"],
            probe["verdict"],
            failed_phase(probe) or "-",
            probe.get("cause") or "-",
        )
        table.add_row(*map(str, cells))
    console.print(table)
    console.print(result["message"], highlight=False)
    if result["status"] == "found":
        if result["repeat"] > 1:
            flaky = "deterministic" if result["deterministic"] else "NOT deterministic"
            said = f"the boundary is {flaky} over {result['repeat']} runs a side"
        else:
            said = "--repeat 2 or more tells whether the boundary is deterministic"
        console.print(f"broken at {result['broken_at']}; {said}", highlight=False)
    headroom = result.get("headroom")
    if headroom:
        room, unit, today = headroom["room"], result["unit"], headroom["current_value"]
        where = (
            f"the breaking point is {room} {unit} beyond it"
            if room >= 0
            else f"it is already {-room} {unit} past the breaking point"
        )
        console.print(
            f"headroom: {room:+} {unit} ({result['knob']}={today}, the value runs use "
            f"today: {where})",
            highlight=False,
        )
    console.print(
        f"journals and limit.json in {Path(result['probes'][0]['journal']).parent}"
        if result["probes"]
        else "no probe ran",
        highlight=False,
    )


@gameday.command()
@click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("remediation.json"),
    show_default=True,
    help="The var-file of recommendations to write.",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Run again every experiment that reproduced, with the var-file layered on.",
)
@click.option(
    "--profile",
    type=click.Path(path_type=Path),
    multiple=True,
    help="A var-file under the verification runs (repeatable).",
)
@click.option(
    "--journals",
    type=click.Path(path_type=Path),
    default=DEFAULT_JOURNALS,
    show_default=True,
    help="Where the verification's journals go.",
)
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP + " With --verify, of the runs.")
def recommend(
    sources: tuple[Path, ...],
    output: Path,
    verify: bool,
    profile: tuple[Path, ...],
    journals: Path,
    dry_run: bool = False,
) -> None:
    """What would have held: from the journals in SOURCES (default: the latest game day
    or `chaos run` of several experiments under journals/), a var-file of configuration
    that would have withstood the pressure, each figure with its margin and evidence,
    and the Google Cloud change it stands for.

    Exit codes: 0 written (and, with --verify, every experiment tolerated); 1 some
    experiment still not tolerated, or nothing to recommend; 2 bad options. With
    --dry-run nothing is written or run: 0, or as the verification's checks say.
    """
    from chaoskit.gameday.recommend import recommend as recommend_from
    from chaoskit.gameday.recommend import remediation_var_file, verify_recommendations

    _quiet_toolkit()
    console = output_console()
    profile = _profile_files(profile)
    try:
        for path in profile:
            check_var_file(path)
    except KitError as error:
        click.echo(f"Error: --profile {error}", err=True)
        sys.exit(EXIT_CODES["usage"])
    if verify and not _journals_writable(journals):
        sys.exit(EXIT_CODES["usage"])
    paths = list(sources) or _latest_runs(DEFAULT_JOURNALS)
    missing = [str(p) for p in paths if not p.exists()]
    if not paths or missing:
        click.echo(
            f"Error: no journals at {', '.join(missing) or DEFAULT_JOURNALS}: give a "
            "game day's folder, or the folder of a `chaos run` of several experiments",
            err=True,
        )
        sys.exit(EXIT_CODES["usage"])
    recommendations, reproduced, unanswered = recommend_from(paths)
    if not recommendations:
        why = f"; nothing answers {', '.join(unanswered)}" if unanswered else ""
        console.print(
            f"Nothing to recommend: {len(reproduced)} experiments reproduced in "
            f"{', '.join(map(str, paths))}{why}",
            highlight=False,
        )
        sys.exit(1)
    for r in recommendations:
        console.print(
            f"{r.key} = {r.value}  (margin {r.margin}) from {r.evidence}\n"
            f"    on Google Cloud: {r.google_cloud}",
            highlight=False,
        )
    for name, why in unanswered.items():
        console.print(f"{name}: reproduced; no recommendation: {why}", highlight=False)
    if dry_run:
        sys.exit(_dry_run_recommend(recommendations, reproduced, verify, profile, output))
    verification = None
    if verify:
        try:
            verification = verify_recommendations(
                recommendations, reproduced, list(profile), journals, console
            )
        except LockHeld as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(EXIT_CODES["locked"])
        except KitError as error:  # the target cannot be held as the profiles say
            click.echo(f"Error: {error}", err=True)
            sys.exit(EXIT_CODES["usage"])
    try:
        write_json_atomically(output, remediation_var_file(recommendations, verification))
    except OSError as error:
        click.echo(f"Error: cannot write {output}: {error.strerror}", err=True)
        sys.exit(EXIT_CODES["usage"])
    held = verification is None or all(v["after"] == "tolerated" for v in verification)
    if verification is None:
        state = "NOT verified (run with --verify)"
    else:
        tolerated = sum(v["after"] == "tolerated" for v in verification)
        state = f"verified: {tolerated} of {len(verification)} experiments now tolerated"
    console.print(f"Wrote {output} ({state})", highlight=False)
    sys.exit(0 if held else 1)


def _dry_run_recommend(
    recommendations: list,
    reproduced: dict[str, Path],
    verify: bool,
    profile: tuple[Path, ...],
    output: Path,
) -> int:
    """`chaos gameday recommend --dry-run`: what it would write and, with --verify, the
    verification's checks and plan; the exit code."""
    from chaoskit.gameday.dry_run import plan_verification, show_plan

    console = output_console()
    why = unwritable(output)
    console.print(
        f"Would write {output}" + (f", which cannot be written ({why})" if why else ""),
        highlight=False,
    )
    if why:
        return EXIT_CODES["usage"]
    if not verify:
        return EXIT_CODES["as-expected"]
    for path in profile:
        try:
            check_var_file(str(path))
        except KitError as error:
            click.echo(f"Error: {error}", err=True)
            return EXIT_CODES["usage"]
    proposed = {r.key: r.value for r in recommendations}
    return show_plan(plan_verification(proposed, reproduced, list(profile)), console)


def _latest_runs(journals: Path) -> list[Path]:
    """The newest folder of runs under `journals`: a game day's (`gd-<time>-<id>`) or a
    `chaos run` of several experiments (`run-<time>`), by the time in its name."""
    if not journals.exists():
        return []
    folders = [p for pattern in ("gd-*", "run-*") for p in journals.glob(pattern) if p.is_dir()]
    return sorted(folders, key=lambda p: p.name.split("-", 1)[1])[-1:]
