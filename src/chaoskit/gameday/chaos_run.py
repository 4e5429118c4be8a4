"""What the kit adds to Chaos Toolkit's own `chaos run` and `chaos validate`.

Declared as the kit's `run` and `validate` plugins (`chaostoolkit.cli_plugins`, which the
chaos command loads after its own commands so that a plugin may take their place): each
is the toolkit's command itself, extended in place, with every option and behaviour of
its own kept:

- an experiment file that does not parse, or is no object, is one line (exit 1), not the
  toolkit loader's traceback;
- `chaos run` takes several sources, or a folder: each runs in turn exactly as a `chaos
  run` of it alone would, on one testbed (see `chaoskit.gameday.series`); one source
  runs as it always did;
- a source that is not here, named as the manual names the kit's own
  (`experiments/smd-phase3-timeout.json`, or `smd-phase3-timeout`), is the kit's own
  experiment where there is no ./experiments (see `chaoskit.kit.shipped`);
- the run's `--var` and `--var-file` values reach the kit's control for the keys it
  knows that an experiment does not declare (Chaos Toolkit passes a run only the keys it
  declares: see `chaoskit.kit.settings.run_variables`).

(The game day's plugin makes `--var-file` refuse a file it cannot read.)
"""

from __future__ import annotations

import inspect
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from chaoslib import merge_vars
from chaoslib.exceptions import InvalidSource
from chaostoolkit import agent
from chaostoolkit.commands.run import run
from chaostoolkit.commands.validate import validate
from click.core import ParameterSource

from chaoskit.gameday.exit_codes import EXIT_CODES
from chaoskit.gameday.experiment_file import (
    EXPERIMENT_SUFFIXES,
    ExperimentFileError,
    read_experiment,
)
from chaoskit.kit.settings import run_variables
from chaoskit.kit.shipped import find_file, where_from

__all__ = ["run", "validate"]

logger = logging.getLogger("chaostoolkit")
_toolkit_run = run.callback
_toolkit_validate = validate.callback
_SEVERAL = (
    "\n\nWith several SOURCEs, or a folder (its .json, .yaml and .yml files), the Startup "
    "Chaos Kit runs each in turn as `chaos run` would run it alone, on one testbed; each "
    "journal is named after its experiment, in --journal-path (a folder; default "
    "journals/run-<time>/). It exits 0 only when every run is as expected."
)


def _unparseable(source: str) -> InvalidSource | None:
    """Why the local experiment file `source` cannot be loaded, as Chaos Toolkit says of
    a source it cannot find (a URL, or a path that does not exist, is left to it)."""
    path = Path(source)
    if not path.is_file():
        return None
    try:
        read_experiment(path)
    except ExperimentFileError as error:
        return InvalidSource(str(error))
    return None


def _source(given: str) -> str:
    """The experiment `given` names: itself, a URL, or the experiments folder's file of
    that name (./experiments, else the kit's own), which is said."""
    if "://" in given:
        return given
    found = find_file(Path(given), EXPERIMENT_SUFFIXES)
    if found != Path(given):
        logger.info(f"{given}: {found} ({where_from(found)})")
    return str(found)


def _refuse(ctx: click.Context, problem: InvalidSource, report: dict[str, Any] | None) -> None:
    logger.error(str(problem))
    if report is not None:
        agent.emit(report)
    ctx.exit(1)


def _run(**params: Any) -> Any:
    ctx = click.get_current_context()
    sources = tuple(_source(source) for source in params.pop("source"))
    # as `chaos run` merges them (a `.env` var-file's lines go to the environment)
    variables, _ = merge_vars(dict(params.get("var") or {}), list(params.get("var_file") or ()))
    with run_variables(variables):
        if len(sources) == 1 and not Path(sources[0]).is_dir():
            problem = _unparseable(sources[0])
            if problem is not None:
                for_agent = params.get("output_format") == "agent"
                report = agent.run_error_report("load", problem, source=sources[0])
                _refuse(ctx, problem, report if for_agent else None)
            return _toolkit_run(source=sources[0], **params)
        ctx.exit(_run_several(ctx, sources, params))


def _run_several(ctx: click.Context, sources: tuple[str, ...], params: dict[str, Any]) -> int:
    """Every experiment of `sources` in turn (see `chaoskit.gameday.series`); the exit code."""
    # imported here: one source never needs them
    from chaoskit.gameday.series import SeriesError, experiment_sources, journal_folder, run_series
    from chaoskit.kit.console import output_console
    from chaoskit.kit.lock import LockHeld

    for option, given in (
        ("--output agent", params.get("output_format") == "agent"),
        ("--events-file", params.get("events_file")),
    ):
        if given:
            click.echo(f"Error: {option} describes one run: give one experiment with it", err=True)
            return EXIT_CODES["usage"]
    chosen = ctx.get_parameter_source("journal_path") is not ParameterSource.DEFAULT

    def run_one(source: str, journal_path: Path) -> Any:
        try:
            return _toolkit_run(
                **{**params, "source": source, "journal_path": str(journal_path), "no_exit": True}
            )
        except click.exceptions.Exit:  # it could not load or validate the experiment
            return None

    try:
        files = experiment_sources(sources)
        folder = journal_folder(params["journal_path"] if chosen else None, datetime.now(UTC))
        variables = (dict(params.get("var") or {}), list(params.get("var_file") or ()))
        return run_series(
            files, folder, run_one, variables, not params.get("no_validation"), output_console()
        )
    except (SeriesError, LockHeld) as error:
        logger.error(str(error))
        return 1  # as `chaos run` ends on a source it cannot load


def _validate(**params: Any) -> Any:
    ctx = click.get_current_context()
    params["source"] = _source(params["source"])
    problem = _unparseable(params["source"])
    if problem is not None:
        for_agent = params.get("output_format") == "agent"
        report = agent.validate_report(params["source"], stage="load", exc=problem)
        _refuse(ctx, problem, report if for_agent else None)
    return _toolkit_validate(**params)


def _extend() -> None:
    validate.callback = _validate
    source = next((param for param in run.params if param.name == "source"), None)
    if source is None:  # a toolkit whose `run` takes no SOURCE: it stays as it is
        return
    source.nargs = -1  # several sources; required still: at least one
    run.callback = _run
    run.help = inspect.cleandoc(run.help or "") + _SEVERAL


_extend()
