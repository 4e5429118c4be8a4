"""Chaos Toolkit control: the embedded testbed is up for the run, and nothing outlives it.

Declared in an experiment's `controls`. Before the experiment, when the configuration's
`target` is `embedded` (the default), it brings the testbed up unless it already runs,
and fills the configuration's empty keys with the testbed's endpoints: `database_url`
(through the connector, as the service reaches it), `direct_database_url` (straight to
PostgreSQL), `admin_database_url` (a superuser's, for probes that read every session),
`connector_url` (the connector's control API) and `service_url`. Two keys stand in for
the production capacity a remediation changes, for this run only: `database_max_connections`
(Cloud SQL's flag or tier) and `connector_min_instances` (the connector's minimum
instances, started at once); the run's settings have checked their range
(`chaoskit.kit.settings`).

After the experiment it stops any perturbation still registered (a flood whose rollback
never ran); at cleanup, after every control is done, it takes down what it brought up,
and only that: a testbed started with `chaos testbed up` keeps running.

It fails closed: whatever goes wrong before the experiment (of any exception type) stops
the run with one line, nothing run; afterwards, what could not be stopped or put back
is one line and fails the run rather than being passed over.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from chaoslib.exceptions import InterruptExecution
from chaoslib.types import Configuration

from chaoskit.kit import registry
from chaoskit.kit.errors import KitError
from chaoskit.kit.fail_closed import fail_the_run, failure_line, stop_hook
from chaoskit.kit.settings import RunSettings
from chaoskit.kit.signals import Deferred, deferred_signals
from chaoskit.testbed.baseline import reset_drift
from chaoskit.testbed.connector.client import ConnectorClient
from chaoskit.testbed.lifecycle import (
    TestbedError,
    restart_postgres,
    testbed_down,
    testbed_endpoints,
    testbed_up,
)
from chaoskit.testbed.state import StateError, read_state

__all__ = ["after_experiment_control", "before_experiment_control", "cleanup_control"]

logger = logging.getLogger("chaostoolkit")


def _owner() -> str:
    return f"control:{os.getpid()}"


@stop_hook("embedded testbed's preparation")
def before_experiment_control(
    context: dict[str, Any], configuration: Configuration | None = None, **kwargs: Any
) -> None:
    configuration = configuration if configuration is not None else {}
    try:
        settings = RunSettings.of(configuration)  # its values checked, when not yet
    except KitError as error:
        raise InterruptExecution(str(error)) from None
    if settings.on_staging:
        return
    try:
        state = testbed_up(started_by=_owner(), configuration=configuration)
    except TestbedError as error:
        raise InterruptExecution(f"the embedded testbed: {error}") from None
    if state["started_by"] == _owner():
        logger.info("Embedded testbed started for this run (it stops when the run ends)")
    try:
        reset = reset_drift(state)
    except KitError as error:
        raise InterruptExecution(str(error)) from None
    for what in reset:
        logger.warning(f"The testbed had drifted from its baseline: reset {what}")
    RunSettings.provide(configuration, {"baseline_reset": reset})
    if settings.database_max_connections is not None:
        _set_database_capacity(state, settings.database_max_connections)
    if settings.connector_min_instances is not None:
        _set_connector_instances(state, settings.connector_min_instances)
    RunSettings.provide(configuration, testbed_endpoints(state), fill_only=True)


def _set_database_capacity(state: dict[str, Any], wanted: int) -> None:
    """`database_max_connections`, the stand-in for a Cloud SQL tier or flag (a
    remediation's capacity), for this run; the baseline comes back at the run's end."""
    if wanted == state["postgres"].get("max_connections"):
        return
    try:
        restart_postgres(wanted)
    except KitError as error:
        raise InterruptExecution(f"database_max_connections={wanted}: {error}") from None
    logger.info(f"The database runs with max_connections={wanted} for this run")


def _set_connector_instances(state: dict[str, Any], wanted: int) -> None:
    """`connector_min_instances`, the stand-in for the connector's `--min-instances`: that
    many instances run from the start of this run; the baseline comes back at its end."""
    connector = ConnectorClient(state["connector"]["url"])
    try:
        config = connector.state()["config"]
        connector.configure(
            {
                "max_instances": max(wanted, config["max_instances"]),
                "min_instances": wanted,
                "instances": wanted,
            }
        )
    except KitError as error:
        raise InterruptExecution(f"connector_min_instances={wanted}: {error}") from None
    logger.info(f"The connector runs {wanted} instances from the start of this run")


def _restore_connector_instances() -> None:
    state = read_state()
    if not state:
        return
    connector = ConnectorClient(state["connector"]["url"])
    if {"min_instances", "max_instances"} & set(connector.state()["drift"]):
        connector.reset()
        logger.info("The connector is back at its baseline instances")


def _restore_database_capacity() -> None:
    state = read_state()
    postgres = (state or {}).get("postgres") or {}
    baseline = postgres.get("baseline_max_connections")
    if baseline is not None and postgres.get("max_connections") != baseline:
        restart_postgres(baseline)
        logger.info(f"The database is back at max_connections={baseline}")


def _stop_leftovers() -> None:
    for leftover in registry.stop_all():
        logger.warning(f"Stopped {leftover['kind']} {leftover['name']!r}, still running at the end")


def after_experiment_control(
    context: dict[str, Any], state: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    with deferred_signals() as interrupted:
        try:
            _stop_leftovers()
        except Exception as error:  # noqa: BLE001 - a leak is said, and fails the run
            reason = f"what the run left running could not be stopped: {failure_line(error)}"
            logger.error(reason[0].upper() + reason[1:])
            fail_the_run(state, reason)
    _say_deferred(interrupted)


def cleanup_control() -> None:
    """Last of all, once every control's after-hook has run (the kit's recovery check
    needs the testbed): put the database's and the connector's capacity back, and take
    down the testbed if this run brought it up. A signal meanwhile waits until it is done,
    so that nothing is left half stopped and the journal is still written."""
    with deferred_signals() as interrupted:
        for what, step in (
            ("What the run left running could not be stopped", _stop_leftovers),
            ("The testbed could not be put back", _check_state),
            ("The database's max_connections could not be put back", _restore_database_capacity),
            ("The connector's instances could not be put back", _restore_connector_instances),
            ("The testbed this run started could not be stopped", _take_down_if_ours),
        ):
            try:
                step()
            except StateError as error:  # what the rest would need: said once
                logger.error(f"{what}: {error}")
                break
            except Exception as error:  # noqa: BLE001 - each step, whatever the others do
                line = str(error) if isinstance(error, KitError) else failure_line(error)
                logger.error(f"{what}: {line}")
    _say_deferred(interrupted)


def _check_state() -> None:
    read_state()


def _take_down_if_ours() -> None:
    state = read_state()
    if state and state.get("started_by") == _owner():
        testbed_down()
        logger.info("Embedded testbed stopped")


def _say_deferred(interrupted: Deferred) -> None:
    if interrupted.received:
        logger.warning(f"{interrupted.received} came while the run was ending: it ended first")
