"""Can the kit hold a game day on staging? Its permissions and every resource the profile
names, checked before anything changes, one line for each thing missing.

The permissions are asked of Resource Manager (`projects.testIamPermissions`, which
needs no permission itself); acting as a service account is asked of the account
(IAM's `serviceAccounts.testIamPermissions`), where `roles/iam.serviceAccountUser` is
usually granted. Then each resource is read: the Cloud Run service, the connector, the
Cloud SQL instance, the flood image's tag in Artifact Registry and the Secret Manager
secret (its metadata, never its value).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import KitError
from chaoskit.targets.deployment import staging_setting
from chaoskit.targets.gcp.api import GoogleApiError, call, gcp_client, project_and_region
from chaoskit.targets.gcp.resources import connector_name, service_name

__all__ = ["PERMISSIONS", "Permission", "staging_access_problems"]


class Permission(NamedTuple):
    name: str
    role: str
    purpose: str


PERMISSIONS = (
    Permission("run.services.get", "roles/run.developer", "reading the service"),
    Permission("run.services.update", "roles/run.developer", "rolling out cold starts"),
    Permission("run.revisions.get", "roles/run.developer", "pinning the serving image"),
    Permission("run.operations.get", "roles/run.developer", "waiting for rollouts"),
    Permission("run.jobs.get", "roles/run.developer", "the flood job"),
    Permission("run.jobs.create", "roles/run.developer", "the flood job"),
    Permission("run.jobs.update", "roles/run.developer", "the flood job"),
    Permission("run.jobs.run", "roles/run.developer", "running the flood"),
    Permission("run.executions.cancel", "roles/run.developer", "stopping the flood"),
    Permission("logging.logEntries.list", "roles/logging.viewer", "startups and flood ramps"),
    Permission("monitoring.timeSeries.list", "roles/monitoring.viewer", "the timeline"),
    Permission("vpcaccess.connectors.get", "roles/vpcaccess.viewer", "reading the connector"),
    Permission("cloudsql.instances.get", "roles/cloudsql.client", "reading the Cloud SQL instance"),
    Permission("cloudsql.instances.connect", "roles/cloudsql.client", "the Cloud SQL Auth Proxy"),
    Permission("artifactregistry.tags.get", "roles/artifactregistry.reader", "the flood image"),
    Permission(
        "secretmanager.secrets.get", "roles/secretmanager.viewer", "checking the flood's secret"
    ),
)
_ACT_AS = "iam.serviceAccounts.actAs"


def _missing_permissions(
    project: str, configuration: Configuration | None, secrets: Secrets | None
) -> list[Permission]:
    projects = gcp_client("cloudresourcemanager", "v1", configuration, secrets).projects()
    asked = sorted({p.name for p in PERMISSIONS})
    answer = call(
        projects.testIamPermissions(resource=project, body={"permissions": asked}),
        f"asking which permissions the kit has in project {project}",
    )
    granted = set(answer.get("permissions") or [])
    return [p for p in PERMISSIONS if p.name not in granted]


def _act_as_problem(
    email: str, setting: str, configuration: Configuration | None, secrets: Secrets | None
) -> str | None:
    accounts = gcp_client("iam", "v1", configuration, secrets).projects().serviceAccounts()
    request = accounts.testIamPermissions(
        resource=f"projects/-/serviceAccounts/{email}", body={"permissions": [_ACT_AS]}
    )
    try:
        answer = call(request, f"asking about service account {email}")
    except GoogleApiError as error:
        if error.status == 404:
            return f"service account {email} ({setting}) does not exist"
        return str(error)
    if _ACT_AS not in (answer.get("permissions") or []):
        return (
            f"the kit's account cannot act as {email} ({setting}): grant it "
            "roles/iam.serviceAccountUser on that account"
        )
    return None


def _image_version(image: str) -> tuple[str, str] | None:
    """("tags" or "versions", the resource name) of a `LOCATION-docker.pkg.dev` image in
    Artifact Registry; None for an image elsewhere (the kit reads no other registry)."""
    host, _, path = image.partition("/")
    if not host.endswith("-docker.pkg.dev") or path.count("/") < 2:
        return None
    project, repository, package = path.split("/", 2)
    if "@" in package:
        package, version = package.split("@", 1)
        kind = "versions"
    else:
        package, _, version = package.partition(":")
        version, kind = version or "latest", "tags"
    repository_name = (
        f"projects/{project}/locations/{host.removesuffix('-docker.pkg.dev')}"
        f"/repositories/{repository}"
    )
    return kind, f"{repository_name}/packages/{package.replace('/', '%2F')}/{kind}/{version}"


class _Resource(NamedTuple):
    permission: str  # the one reading it needs
    what: str
    setting: str
    request: Callable[[], Any]


def _resources(
    project: str,
    region: str,
    settings: dict[str, str],
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> list[_Resource]:
    def client(api: str, version: str) -> Any:
        return gcp_client(api, version, configuration, secrets)

    service = service_name(settings["cloud_run_service"], project, region)
    connector = connector_name(settings["vpc_connector"], project, region)
    instance = settings["cloud_sql_instance"]
    secret = settings["flood_dsn_secret"]
    if not secret.startswith("projects/"):
        secret = f"projects/{project}/secrets/{secret}"
    resources = [
        _Resource(
            "run.services.get", f"Cloud Run service {service}", "gcp.cloud_run_service",
            lambda: client("run", "v2").projects().locations().services().get(name=service),
        ),
        _Resource(
            "vpcaccess.connectors.get", f"VPC connector {connector}", "gcp.vpc_connector",
            lambda: client("vpcaccess", "v1").projects().locations().connectors().get(
                name=connector),
        ),
        _Resource(
            "cloudsql.instances.get", f"Cloud SQL instance {instance}", "gcp.cloud_sql_instance",
            lambda: client("sqladmin", "v1").instances().get(project=project, instance=instance),
        ),
        _Resource(
            "secretmanager.secrets.get", f"secret {secret}", "gcp.flood_dsn_secret",
            lambda: client("secretmanager", "v1").projects().secrets().get(name=secret),
        ),
    ]  # fmt: skip
    image = _image_version(settings["flood_image"])
    if image is not None:
        kind, name = image
        packages = client("artifactregistry", "v1").projects().locations().repositories()
        versions = getattr(packages.packages(), kind)()
        resources.append(_Resource(
            "artifactregistry.tags.get", f"flood image {settings['flood_image']}",
            "gcp.flood_image", lambda: versions.get(name=name),
        ))  # fmt: skip
    return resources


_SETTINGS = (
    ("cloud_run_service", "the cold starts"),
    ("vpc_connector", "the flood's egress"),
    ("cloud_sql_instance", "the timeline"),
    ("flood_image", "the flood job's image"),
    ("flood_dsn_secret", "the flood job's database URL"),
    ("flood_service_account", "the flood job's identity"),
)


def staging_access_problems(configuration: Configuration, secrets: Secrets | None) -> list[str]:
    """Every reason the kit could not run the staging experiments, one line each
    (empty: it can)."""
    try:
        project, region = project_and_region(configuration, None, None)
        settings = {key: staging_setting(configuration, f"gcp_{key}", purpose)
                    for key, purpose in _SETTINGS}  # fmt: skip
        missing = _missing_permissions(project, configuration, secrets)
    except KitError as error:
        return [str(error)]
    problems = [
        f"the kit's account lacks {p.name} in project {project}: grant {p.role} "
        f"(needed for {p.purpose})"
        for p in missing
    ]
    lacking = {p.name for p in missing}
    answers: dict[str, Any] = {}
    for resource in _resources(project, region, settings, configuration, secrets):
        if resource.permission in lacking:
            continue  # already one line for it
        try:
            answers[resource.setting] = call(resource.request(), f"reading {resource.what}")
        except GoogleApiError as error:
            problems.append(
                f"{resource.what} ({resource.setting}) does not exist: check the profile"
                if error.status == 404
                else str(error)
            )
    accounts = [(settings["flood_service_account"], "gcp.flood_service_account")]
    runtime = (answers.get("gcp.cloud_run_service", {}).get("template") or {}).get("serviceAccount")
    if runtime:  # rolling out a revision acts as its runtime account
        accounts.append((runtime, "the Cloud Run service's runtime account"))
    for email, setting in accounts:
        problems += filter(None, [_act_as_problem(email, setting, configuration, secrets)])
    return problems
