"""The VPC connector model an activity acts on: the embedded testbed's, through its
control API."""

from __future__ import annotations

from chaoslib.types import Configuration

from chaoskit.kit.settings import RunSettings
from chaoskit.testbed.connector.client import ConnectorClient

__all__ = ["connector_client"]


def connector_client(
    connector_url: str | None, configuration: Configuration | None
) -> ConnectorClient:
    """The control API named by `connector_url`, else by the configuration's."""
    url = RunSettings.of(configuration).given_or_configured(
        connector_url,
        "connector_url",
        argument="connector_url",
        hint="the embedded testbed's control fills it in; chaos testbed status shows it",
    )
    return ConnectorClient(url)
