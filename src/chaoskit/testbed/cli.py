"""`chaos testbed up|status|down`: keep the embedded testbed running between runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from chaoskit.kit.console import output_console
from chaoskit.kit.errors import KitError
from chaoskit.kit.redaction import mask_passwords_in_logs
from chaoskit.kit.settings import RunSettings
from chaoskit.kit.shipped import find_profile
from chaoskit.kit.var_files import check_var_file
from chaoskit.testbed.baseline import find_drift
from chaoskit.testbed.lifecycle import (
    DEFAULT_MAX_CONNECTIONS,
    TestbedError,
    is_up,
    orphaned,
    testbed_down,
    testbed_status,
    testbed_up,
)
from chaoskit.testbed.state import read_state
from chaoskit.testbed.system import check_startable, system_under_test

__all__ = ["testbed"]

# the chaos CLI loads this plugin before any command: nothing it logs shows a password
mask_passwords_in_logs()


def _check_profiles(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    """Each var-file parses, and the `service` it describes can be started (its patterns,
    its program, every `${name}` it uses): one line naming the field, before anything."""
    for path in map(find_profile, value or ()):
        try:
            content = check_var_file(path) or {}
            settings = RunSettings.of(content.get("configuration"))
            if settings.service:
                check_startable(system_under_test(settings.service), settings.values())
        except KitError as error:
            raise click.BadParameter(f"{path}: {error}", ctx, param) from None


def _validate_with_profiles() -> None:
    """`chaos validate --var-file PROFILE EXPERIMENT`: the experiment as `chaos run` would
    take it with the profile, whose service is checked too."""
    from chaostoolkit.commands.validate import validate

    if not any(param.name == "var_file" for param in validate.params):
        validate.params.insert(
            0,
            click.Option(
                ["--var-file"],
                multiple=True,
                expose_value=False,
                callback=_check_profiles,
                type=click.Path(dir_okay=False),
                help="A var-file (a profile) whose configuration is checked with the experiment: "
                "its `service` must be one the kit can start.",
            ),
        )


_validate_with_profiles()


@click.group()
def testbed() -> None:
    """The embedded testbed: PostgreSQL and the reference service, on loopback."""


def _fail(error: Exception) -> None:
    raise click.ClickException(str(error))


def _print_status() -> None:
    rows = testbed_status()
    if not rows:
        click.echo("The testbed is down. Start it with: chaos testbed up")
        return
    table = Table(title="Startup Chaos Kit testbed")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*row.values())
    console = output_console()
    console.print(table)
    state = read_state()
    if not is_up(state):
        return
    if orphaned(state):
        console.print(
            f"Started by a run that is gone (pid {state['owner_pid']}): the next run takes it "
            "over and stops it at its end; or stop it now with chaos testbed down",
            highlight=False,
        )
    try:
        drift = find_drift(state)
    except KitError as error:
        console.print(f"Baseline: cannot tell ({error})", highlight=False)
        return
    if drift:
        console.print(
            "Drifted from its baseline (the next run resets it): " + "; ".join(drift),
            highlight=False,
        )
    else:
        console.print("At its baseline.", highlight=False)


@testbed.command()
@click.option(
    "--max-connections",
    type=click.IntRange(min=5),
    default=None,
    help=f"PostgreSQL's max_connections for the embedded server [default: "
    f"{DEFAULT_MAX_CONNECTIONS}]; refused while it is up with another.",
)
@click.option(
    "--database-url",
    envvar="TESTBED_DATABASE_URL",
    help="Use this PostgreSQL instead of the embedded one [env: TESTBED_DATABASE_URL].",
)
@click.option(
    "--service",
    "service_profile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A var-file whose configuration's `service` is the long-running system under test, "
    "started with that configuration's values (pool_size, timeouts, ...), as the runs' fresh "
    "instances are (e.g. experiments/profiles/example-service.json) [default: the reference "
    "service].",
)
def up(max_connections: int | None, database_url: str | None, service_profile: Path | None) -> None:
    """Start the testbed (PostgreSQL, the connector and the service) and leave it running."""
    try:
        configuration = profile_configuration(service_profile) if service_profile else None
        testbed_up(
            max_connections=max_connections, database_url=database_url, configuration=configuration
        )
    except KitError as error:
        _fail(error)
    _print_status()


def profile_configuration(profile: Path) -> dict[str, Any]:
    """The configuration of a var-file that describes a `service`; KitError says what is
    wrong (a profile's name, or `experiments/profiles/...` where there is no ./experiments:
    the kit's own)."""
    profile = find_profile(profile)
    try:
        content = check_var_file(profile)
    except KitError as error:
        raise TestbedError(f"--service {error}") from None
    configuration = (content or {}).get("configuration") or {}
    service = RunSettings.of(configuration).service
    if not isinstance(service, dict) or not service:
        raise TestbedError(
            f"--service {profile}: its configuration has no `service` object: see "
            "experiments/profiles/example-service.json"
        )
    return configuration


@testbed.command()
def status() -> None:
    """Show what runs: endpoints, process ids, health."""
    try:
        _print_status()
    except KitError as error:
        _fail(error)


@testbed.command()
def down() -> None:
    """Stop everything the testbed started."""
    try:
        stopped = testbed_down()["stopped"]
    except KitError as error:
        _fail(error)
    click.echo(f"Stopped: {', '.join(stopped)}" if stopped else "The testbed was not running.")


@testbed.command("check-service")
@click.argument("profile", type=click.Path(dir_okay=False, path_type=Path))
def check_service_command(profile: Path) -> None:
    """Start one instance of PROFILE's service against an idle testbed and show how its
    startup log reads it: each line and the pattern it matched, what was read, whether
    it became ready, and what its patterns do not read. Exit 0 when it became ready and
    its lines were read, 1 otherwise."""
    from chaoskit.testbed.service_check import check_service

    try:
        check = check_service(profile_configuration(profile))
    except KitError as error:
        _fail(error)
    console = output_console()
    # a service's own text is printed as it is: `[stage]` is not rich's markup
    console.print(Text(f"Service: {check.command}\n  in {check.folder}"))
    table = Table(title="Its startup, line by line", show_lines=False)
    for column in ("line", "matched", "read", "text"):
        table.add_column(column, overflow="fold")
    for line in check.lines:
        read = " ".join(f"{k}={_shown(v)}" for k, v in line.read.items() if k != "unread")
        read += "".join(f"\n(unread: {note})" for note in line.read.get("unread", ()))
        cells = (str(line.number), line.matched or "-", read, line.text)
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
    report = check.report
    if report["ready"]:
        console.print(Text(f"Ready after {report['duration_s']:g}s."))
    else:
        console.print(Text(f"Not ready: {report.get('reason')}"))
    for phase in report.get("phases") or []:
        elapsed = f" {_shown(phase['elapsed_s'])}s" if phase.get("elapsed_s") is not None else ""
        console.print(Text(f"  phase {phase['phase']} {phase['name']}: {phase['status']}{elapsed}"))
    if check.cannot_report:
        console.print(
            Text(
                "What its patterns do not read of a failed startup (an expectation on it is "
                "inconclusive when a run's lines do not say it otherwise):"
            )
        )
        for path, why in check.cannot_report.items():
            console.print(Text(f"  {path}: {why}"))
    if not check.passed:
        raise SystemExit(1)


def _shown(value: object) -> str:
    """A value as a person reads it: seconds to the microsecond, not 0.00011499999999999999."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)
