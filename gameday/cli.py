"""`chaos gameday run|schedule`: hold game days, now or on a schedule."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from chaoskit.gameday.runner import EXIT_CODES, run_gameday
from chaoskit.gameday.schedule import CronError, next_ticks, run_schedule
from chaoskit.gameday.suite import SuiteError, load_suite
from chaoskit.kit.console import output_console
from chaoskit.kit.errors import KitError
from chaoskit.kit.lock import LockHeld
from chaoskit.kit.redaction import mask_passwords_in_logs
from chaoskit.kit.var_files import check_var_file
from chaoskit.report.report import write_reports

__all__ = ["gameday"]


def _refuse_unreadable_var_files(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    for path in value or ():
        try:
            check_var_file(path)
        except KitError as error:
            raise click.BadParameter(str(error), ctx, param) from None
    return value


def _guard_chaos_run() -> None:
    """`chaos run --var-file` would log a file it cannot parse and go on with the
    defaults: the kit's plugin, loaded before any command, makes it an error."""
    from chaostoolkit.commands.run import run

    for param in run.params:
        if param.name == "var_file":
            param.callback = _refuse_unreadable_var_files


# the chaos CLI loads this plugin before any command: nothing it logs shows a password,
# and no var-file it cannot read is passed over
mask_passwords_in_logs()
_guard_chaos_run()

DEFAULT_SUITE = Path("experiments/gameday.toml")
DEFAULT_JOURNALS = Path("journals")


@click.group()
def gameday() -> None:
    """Game days: every experiment of a suite, in order, with verdicts kept for review."""


def _suite_options(command: click.Command) -> click.Command:
    for option in reversed(
        [
            click.option("--suite", type=click.Path(path_type=Path), default=DEFAULT_SUITE,
                         show_default=True, help="The suite file (TOML)."),
            click.option("--profile", type=click.Path(path_type=Path), multiple=True,
                         help="A var-file (e.g. experiments/profiles/staging.json), "
                              "layered on the suite's own profile; repeatable, later ones "
                              "win (say, raised guardrails). None: the embedded testbed."),
            click.option("--only", multiple=True,
                         help="Run only this experiment of the suite (repeatable)."),
            click.option("--journals", type=click.Path(path_type=Path),
                         default=DEFAULT_JOURNALS, show_default=True,
                         help="Where <gameday id>/<experiment>.json go."),
        ]
    ):  # fmt: skip
        command = option(command)
    return command


def _hold(
    suite_path: Path, profile: tuple[Path, ...], only: tuple[str, ...], journals: Path
) -> tuple[int, str | None]:
    """One game day; returns its exit code (see `run`) and its id, if it started."""
    # Chaos Toolkit logs each validation and run to the console; the progress view, and
    # one line for a mistake, say it better
    logging.getLogger("chaostoolkit").setLevel(logging.ERROR)
    try:
        suite = load_suite(suite_path, profile)
        if only:
            suite = suite.only(list(only))
    except SuiteError as error:
        click.echo(f"Error: {error}", err=True)
        return EXIT_CODES["usage"], None
    console = output_console()
    try:
        result = run_gameday(suite, journals, console)
    except LockHeld as error:
        click.echo(f"Error: {error}", err=True)
        return EXIT_CODES["locked"], None
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
    return result.exit_code, summary["gameday_id"]


@gameday.command()
@_suite_options
def run(suite: Path, profile: tuple[Path, ...], only: tuple[str, ...], journals: Path) -> None:
    """Hold a game day now.

    Exit codes: 0 every verdict as the suite expects; 1 some verdict not as expected;
    2 bad suite or options; 3 skipped, the target failed its preflight; 4 another game
    day holds the target; 130 interrupted.
    """
    sys.exit(_hold(suite, profile, only, journals)[0])


@gameday.command()
@click.option("--cron", required=True, help="When to hold game days, e.g. '0 2 * * *' (UTC).")
@click.option("--runs", type=click.IntRange(min=1), default=None,
              help="Stop after this many game days (default: run until stopped).")  # fmt: skip
@_suite_options
def schedule(
    cron: str,
    runs: int | None,
    suite: Path,
    profile: tuple[Path, ...],
    only: tuple[str, ...],
    journals: Path,
) -> None:
    """Hold a game day at each tick of a cron expression, in the foreground."""
    try:
        upcoming = next_ticks(cron, datetime.now(UTC), 3)
    except CronError as error:
        raise click.BadParameter(str(error), param_hint="--cron") from None
    click.echo("Next game days: " + ", ".join(t.isoformat() for t in upcoming))

    def hold() -> str:
        code, gameday_id = _hold(suite, profile, only, journals)
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
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Also the report's content as JSON.")  # fmt: skip
def report(
    sources: tuple[Path, ...], html_path: Path, markdown_path: Path | None, json_path: Path | None
) -> None:
    """Review journals: verdicts, the failure chain, metrics, charts and trends.

    SOURCES are journal files or folders (searched recursively); default: journals/.
    """
    paths = list(sources) or [DEFAULT_JOURNALS]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise click.ClickException(f"no such journal or folder: {', '.join(missing)}")
    try:
        content = write_reports(paths, html_path, markdown_path, json_path)
    except OSError as error:
        click.echo(
            f"Error: cannot write the report to {error.filename}: {error.strerror}: give a "
            "path in a folder you may write to",
            err=True,
        )
        sys.exit(EXIT_CODES["usage"])
    written = ", ".join(str(p) for p in (html_path, markdown_path, json_path) if p)
    click.echo(
        f"Report of {content['runs_read']} journals ({len(content['corrupt'])} unreadable) "
        f"written to {written}"
    )
