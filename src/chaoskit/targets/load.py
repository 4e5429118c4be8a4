"""How loaded the connector and the database are, on either target: what the pressure
probes judge and the run's timeline draws, read the same way for both.

The connector: the model's own state on the embedded testbed; on staging the busiest
instance's CPU utilisation from Cloud Monitoring (Serverless VPC Access publishes no
connection count). The database: on staging Cloud SQL's backends from Cloud Monitoring
(an application user's session through the Auth Proxy is refused exactly when the
database is full), else its sessions in `pg_stat_activity` through the configured
database URL (on the testbed, a superuser's, which the reserved slots still admit).
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.settings import RunSettings
from chaoskit.targets.database import session_load
from chaoskit.targets.gcp.monitoring import cloud_sql_backends, connector_metrics
from chaoskit.testbed.connector.client import ConnectorClient

__all__ = ["connector_load", "database_load"]


def connector_load(
    configuration: Configuration | None, secrets: Secrets | None = None
) -> dict[str, Any] | None:
    """`{"utilisation", "instances"}` (and on the testbed `active`, `waiting`), or None
    when no connector is configured."""
    settings = RunSettings.of(configuration)
    if settings.on_staging:
        if not settings.gcp.vpc_connector:
            return None
        metrics = connector_metrics(
            settings.gcp.vpc_connector, configuration=configuration, secrets=secrets
        )
        return {"utilisation": metrics["utilisation"], "instances": metrics["instances"]}
    if not settings.connector_url:
        return None
    # scraped as any Prometheus target is: the same figures a team's dashboards read
    scrape = ConnectorClient(settings.connector_url).metrics()
    load: dict[str, Any] = {"utilisation": scrape["vpc_connector_utilisation"]}
    load.update(
        {key: int(scrape[f"vpc_connector_{key}"]) for key in ("instances", "active", "waiting")}
    )
    return load


def database_load(
    configuration: Configuration | None,
    secrets: Secrets | None = None,
    application_prefix: str | None = None,
) -> dict[str, Any] | None:
    """`{"in_use", "max_connections", "utilisation"}` (and, from `pg_stat_activity`,
    `by_application` and the sessions `matching` `application_prefix`), or None when
    nothing says where the database is."""
    settings = RunSettings.of(configuration)
    instance, maximum = settings.gcp.cloud_sql_instance, settings.gcp.cloud_sql_max_connections
    if settings.on_staging and instance and maximum:
        backends = cloud_sql_backends(
            instance, maximum, configuration=configuration, secrets=secrets
        )
        return {
            "in_use": backends["backends"],
            "max_connections": backends["max_connections"],
            "utilisation": backends["utilisation"],
        }
    dsn = settings.admin_database_url or settings.direct_database_url
    if not dsn:
        return None
    return session_load(dsn, application_prefix)
