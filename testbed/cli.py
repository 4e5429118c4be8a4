"""`chaos testbed up|status|down`: keep the embedded testbed running between runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from chaoskit.kit.console import output_console
from chaoskit.kit.errors import KitError
from chaoskit.kit.redaction import mask_passwords_in_logs
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

__all__ = ["testbed"]

# the chaos CLI loads this plugin before any command: nothing it logs shows a password
mask_passwords_in_logs()


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
    help="A var-file whose configuration's `service` is the long-running system under test "
    "(e.g. experiments/profiles/example-service.json) [default: the reference service].",
)
def up(max_connections: int | None, database_url: str | None, service_profile: Path | None) -> None:
    """Start the testbed (PostgreSQL, the connector and the service) and leave it running."""
    try:
        service = _service_from(service_profile) if service_profile else None
        testbed_up(max_connections=max_connections, database_url=database_url, service=service)
    except KitError as error:
        _fail(error)
    _print_status()


def _service_from(profile: Path) -> dict[str, Any]:
    """The `service` object of a var-file's configuration; KitError says what is wrong."""
    try:
        content = check_var_file(profile)
    except KitError as error:
        raise TestbedError(f"--service {error}") from None
    service = ((content or {}).get("configuration") or {}).get("service")
    if not isinstance(service, dict) or not service:
        raise TestbedError(
            f"--service {profile}: its configuration has no `service` object: see "
            "experiments/profiles/example-service.json"
        )
    return service


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
