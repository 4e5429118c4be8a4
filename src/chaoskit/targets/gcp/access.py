"""Can the kit hold a game day on staging? Its permissions and every resource the
experiment will touch, checked before anything changes, one line for each thing missing.

The permissions are those the experiment's activities need (all the staging
equivalents' when no experiment is given: a game day's preflight). Each is asked where
Google lets it be granted least: on the Cloud Run service, the flood's job (once it
exists), the image's repository or the secret, through that resource's
`testIamPermissions` (which counts roles granted on the project too), else in the
project (`projects.testIamPermissions`; for the connector, in the project that owns
it). Acting as a service account is asked of the account (IAM's
`serviceAccounts.testIamPermissions`). Then each resource is read: the Cloud Run
service, the connector, the Cloud SQL instance, the flood image's tag in Artifact
Registry and the Secret Manager secret (its metadata, never its value), and the SLOs and
alert policies the run's stop conditions watch (a disabled policy is a problem too: it
opens no alerts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from chaoslib.types import Configuration, Experiment, Secrets

from chaoskit.kit.errors import KitError
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.deployment import staging_setting
from chaoskit.targets.gcp.api import GoogleApiError, call, gcp_client, project_and_region
from chaoskit.targets.gcp.resources import connector_name, located, service_name

__all__ = ["PERMISSIONS", "Permission", "permissions_for", "staging_access_problems"]


class Permission(NamedTuple):
    name: str
    role: str
    purpose: str
    on: str = "project"  # the resource it can be granted on: service, job, repository, secret


_RUN = "roles/run.developer"
PERMISSIONS = {
    "cold starts": (
        Permission("run.services.get", _RUN, "reading the service", "service"),
        Permission("run.services.update", _RUN, "rolling out cold starts", "service"),
        Permission("run.revisions.get", _RUN, "pinning the serving image", "service"),
        Permission("run.operations.get", _RUN, "waiting for rollouts"),
        Permission("logging.logEntries.list", "roles/logging.viewer", "reading startups"),
    ),
    "flood": (
        Permission("run.jobs.create", _RUN, "the flood job"),
        Permission("run.jobs.get", _RUN, "the flood job", "job"),
        Permission("run.jobs.update", _RUN, "the flood job", "job"),
        Permission("run.jobs.run", _RUN, "running the flood", "job"),
        Permission("run.executions.get", _RUN, "stopping the flood", "job"),
        Permission("run.executions.cancel", _RUN, "stopping the flood", "job"),
        Permission("run.operations.get", _RUN, "waiting for the flood job"),
        Permission("logging.logEntries.list", "roles/logging.viewer", "the flood's ramps"),
        Permission(
            "artifactregistry.tags.get",
            "roles/artifactregistry.reader",
            "the flood image",
            "repository",
        ),
        Permission(
            "secretmanager.secrets.get",
            "roles/secretmanager.viewer",
            "checking the flood's secret",
            "secret",
        ),
    ),
    "service changes": (
        Permission("run.services.get", _RUN, "reading the service", "service"),
        Permission("run.services.update", _RUN, "changing the service", "service"),
        Permission("run.revisions.get", _RUN, "pinning the serving image", "service"),
        Permission("run.operations.get", _RUN, "waiting for rollouts"),
    ),
    "connector changes": (
        Permission(
            "vpcaccess.connectors.update",
            "roles/vpcaccess.admin",
            "changing the connector",
            "connector",
        ),
        Permission(
            "vpcaccess.operations.get",
            "roles/vpcaccess.admin",
            "waiting for the connector",
            "connector",
        ),
    ),
    "database restarts": (
        Permission("cloudsql.instances.restart", "roles/cloudsql.editor", "restarting Cloud SQL"),
    ),
    "database flags": (
        Permission(
            "cloudsql.instances.update", "roles/cloudsql.editor", "changing Cloud SQL's flags"
        ),
    ),
    "slo stop conditions": (
        Permission("monitoring.slos.get", "roles/monitoring.viewer", "the SLO stop conditions"),
        Permission(
            "monitoring.timeSeries.list", "roles/monitoring.viewer", "the SLO stop conditions"
        ),
    ),
    "alert stop conditions": (
        Permission(
            "monitoring.alertPolicies.get",
            "roles/monitoring.viewer",
            "the alert-policy stop conditions",
        ),
        Permission(
            "monitoring.alerts.list",
            "roles/monitoring.alertViewer",
            "the alert-policy stop conditions",
        ),
    ),
    "always": (  # the timeline, the CPU stop condition, the database URLs, this check
        Permission("monitoring.timeSeries.list", "roles/monitoring.viewer", "the timeline"),
        Permission(
            "cloudsql.instances.get", "roles/cloudsql.client", "reading the Cloud SQL instance"
        ),
        Permission(
            "cloudsql.instances.connect", "roles/cloudsql.client", "the Cloud SQL Auth Proxy"
        ),
        Permission(
            "vpcaccess.connectors.get",
            "roles/vpcaccess.viewer",
            "reading the connector",
            "connector",
        ),
    ),
}

# what each activity needs, by module and function ("*": any of the module's)
_NEEDS = {
    ("chaoskit.actions.service", "start_service_instance"): "cold starts",
    ("chaoskit.probes.service", "cold_start"): "cold starts",
    ("chaoskit.probes.service", "repeated_cold_starts"): "cold starts",
    ("chaoskit.actions.flood", "start_connection_flood"): "flood",
    ("chaoskit.actions.gcp.cloud_run_flood", "*"): "flood",
    ("chaoskit.actions.gcp.cloud_run", "*"): "service changes",
    ("chaoskit.probes.gcp.cloud_run", "*"): "service changes",
    ("chaoskit.probes.gcp.logging", "*"): "cold starts",
    ("chaoskit.actions.gcp.vpc_connector", "*"): "connector changes",
    ("chaoskit.actions.gcp.cloud_sql", "restart_cloud_sql"): "database restarts",
    ("chaoskit.actions.gcp.cloud_sql", "set_cloud_sql_max_connections"): "database flags",
    ("chaoskit.actions.gcp.cloud_sql", "restore_cloud_sql_max_connections"): "database flags",
}
# a game day's preflight, which knows no experiment: what the staging equivalents need
_STAGING_EQUIVALENTS = ("cold starts", "flood")
_ACT_AS = "iam.serviceAccounts.actAs"
# a team's stop conditions that read Cloud Monitoring: (what needs, the field it names)
_WATCHED = {
    "slo_burn_rates": ("slo stop conditions", "slo"),
    "alert_policies": ("alert stop conditions", "policy"),
}


def _watched(stop_conditions: Any) -> list[tuple[str, str, str]]:
    """(kind, name, resource) of each SLO and alert policy the stop conditions watch."""
    if not isinstance(stop_conditions, dict):
        return []
    found = []
    for kind, (_, key) in _WATCHED.items():
        for entry in stop_conditions.get(kind) or []:
            if isinstance(entry, dict) and isinstance(entry.get(key), str):
                found.append((kind, str(entry.get("name")), entry[key]))
    return found


def _needs(experiment: Experiment | None, stop_conditions: Any = None) -> list[str]:
    watching = [_WATCHED[kind][0] for kind, _, _ in _watched(stop_conditions)]
    return [need for need in _activity_needs(experiment) + watching if need]


def _activity_needs(experiment: Experiment | None) -> list[str]:
    if experiment is None:
        return ["always", *_STAGING_EQUIVALENTS]
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    activities = [
        *(hypothesis.get("probes") or []),
        *(experiment.get("method") or []),
        *(experiment.get("rollbacks") or []),
    ]
    needs = ["always"]
    for activity in activities:
        provider = (activity.get("provider") or {}) if isinstance(activity, dict) else {}
        module, func = provider.get("module"), provider.get("func")
        need = _NEEDS.get((module, func)) or _NEEDS.get((module, "*"))
        if need and need not in needs:
            needs.append(need)
    return needs


def permissions_for(experiment: Experiment | None, stop_conditions: Any = None) -> list[Permission]:
    """The permissions the experiment's activities and the stop conditions watching
    Cloud Monitoring need, each once."""
    found: dict[str, Permission] = {}
    for need in _needs(experiment, stop_conditions):
        for permission in PERMISSIONS[need]:
            found.setdefault(permission.name, permission)
    return list(found.values())


class _Where(NamedTuple):
    """Where permissions are asked: a resource's name, and its testIamPermissions (None:
    the project's, as `project`)."""

    name: str
    what: str
    test: Callable[[list[str]], Any] | None


def _missing(
    asked: list[Permission], places: dict[str, _Where], project: _Where
) -> list[tuple[Permission, _Where]]:
    """The permissions the account lacks, each with where it was asked."""
    by_place: dict[str, list[Permission]] = {}
    for permission in asked:
        where = permission.on if permission.on in places else "project"
        by_place.setdefault(where, []).append(permission)
    missing = []
    for key, permissions in by_place.items():
        where = places.get(key, project)
        assert where.test is not None
        try:
            answer = call(
                where.test(sorted({p.name for p in permissions})),
                f"asking which permissions the kit has on {where.what}",
            )
        except GoogleApiError as error:
            if error.status != 404 or where is project:
                raise
            # the resource is not there (its read below says so): ask the project
            missing += _missing(permissions, {}, project)
            continue
        granted = set(answer.get("permissions") or [])
        missing += [(p, where) for p in permissions if p.name not in granted]
    return missing


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


def _image_version(image: str) -> tuple[str, str, str] | None:
    """("tags" or "versions", the resource name, its repository's) of a
    `LOCATION-docker.pkg.dev` image in Artifact Registry; None for an image elsewhere
    (the kit reads no other registry)."""
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
    name = f"{repository_name}/packages/{package.replace('/', '%2F')}/{kind}/{version}"
    return kind, name, repository_name


class _Resource(NamedTuple):
    permission: str  # the one reading it needs
    what: str
    setting: str
    request: Callable[[], Any]
    problem: Callable[[dict[str, Any]], str | None] = lambda answer: None  # in what is read


_SETTINGS = {
    "always": (("vpc_connector", "the connector's load"), ("cloud_sql_instance", "the timeline")),
    "cold starts": (("cloud_run_service", "the cold starts"),),
    "service changes": (("cloud_run_service", "the service's changes"),),
    "flood": (
        ("vpc_connector", "the flood's egress"),
        ("flood_image", "the flood job's image"),
        ("flood_dsn_secret", "the flood job's database URL"),
        ("flood_service_account", "the flood job's identity"),
    ),
}


class _Staging:
    """The staging project as the profile names it, and the kit's clients of it."""

    def __init__(
        self,
        configuration: Configuration,
        secrets: Secrets | None,
        needs: Iterable[str],
        watched: list[tuple[str, str, str]],
    ) -> None:
        self.configuration, self.secrets, self.watched = configuration, secrets, watched
        self.project, self.region = project_and_region(configuration, None, None)
        self.settings = {
            key: staging_setting(configuration, f"gcp_{key}", purpose)
            for need in needs
            for key, purpose in _SETTINGS.get(need, ())
        }

    def client(self, api: str, version: str) -> Any:
        return gcp_client(api, version, self.configuration, self.secrets)

    def names(self) -> dict[str, str]:
        """The full name of each resource the settings name."""
        names = {}
        settings = self.settings
        if "cloud_run_service" in settings:
            names["service"] = service_name(
                settings["cloud_run_service"], self.project, self.region
            )
        if "vpc_connector" in settings:
            names["connector"] = connector_name(
                settings["vpc_connector"], self.project, self.region
            )
        if "flood_dsn_secret" in settings:
            secret = settings["flood_dsn_secret"]
            names["secret"] = (
                secret
                if secret.startswith("projects/")
                else (f"projects/{self.project}/secrets/{secret}")
            )
            names["job"] = f"projects/{self.project}/locations/{self.region}/jobs/chaos-flood"
        image = _image_version(settings.get("flood_image", ""))
        if image is not None:
            names["image"], names["repository"] = image[1], image[2]
        return names

    def places(self, names: dict[str, str]) -> dict[str, _Where]:
        """The resources whose API tests permissions on them."""
        tests: dict[str, Callable[[], Any]] = {
            "service": lambda: self.client("run", "v2").projects().locations().services(),
            "job": lambda: self.client("run", "v2").projects().locations().jobs(),
            "repository": lambda: (
                self.client("artifactregistry", "v1").projects().locations().repositories()
            ),
            "secret": lambda: self.client("secretmanager", "v1").projects().secrets(),
        }
        places = {}
        for key, collection in tests.items():
            if key in names:
                test, name = collection().testIamPermissions, names[key]
                places[key] = _Where(
                    name,
                    f"{key} {name}",
                    lambda asked, t=test, r=name: t(resource=r, body={"permissions": asked}),
                )
        if "connector" in names:  # no testIamPermissions of its own: its project's
            host = located(names["connector"], self.project, self.region).project
            places["connector"] = self.project_place(host)
        return places

    def project_place(self, project: str) -> _Where:
        projects = self.client("cloudresourcemanager", "v1").projects()
        return _Where(
            project,
            f"project {project}",
            lambda asked: projects.testIamPermissions(
                resource=project, body={"permissions": asked}
            ),
        )

    def job_exists(self, name: str) -> bool:
        jobs = self.client("run", "v2").projects().locations().jobs()
        try:
            call(jobs.get(name=name), f"reading Cloud Run Job {name}")
        except GoogleApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    def resources(self, names: dict[str, str]) -> list[_Resource]:
        resources = []
        if "service" in names:
            service = names["service"]
            services = self.client("run", "v2").projects().locations().services()
            resources.append(
                _Resource(
                    "run.services.get",
                    f"Cloud Run service {service}",
                    "gcp.cloud_run_service",
                    lambda: services.get(name=service),
                )
            )
        if "connector" in names:
            connector = names["connector"]
            connectors = self.client("vpcaccess", "v1").projects().locations().connectors()
            resources.append(
                _Resource(
                    "vpcaccess.connectors.get",
                    f"VPC connector {connector}",
                    "gcp.vpc_connector",
                    lambda: connectors.get(name=connector),
                )
            )
        if "cloud_sql_instance" in self.settings:
            instance = self.settings["cloud_sql_instance"]
            instances = self.client("sqladmin", "v1").instances()
            resources.append(
                _Resource(
                    "cloudsql.instances.get",
                    f"Cloud SQL instance {instance}",
                    "gcp.cloud_sql_instance",
                    lambda: instances.get(project=self.project, instance=instance),
                )
            )
        if "secret" in names:
            secret = names["secret"]
            secrets = self.client("secretmanager", "v1").projects().secrets()
            resources.append(
                _Resource(
                    "secretmanager.secrets.get",
                    f"secret {secret}",
                    "gcp.flood_dsn_secret",
                    lambda: secrets.get(name=secret),
                )
            )
        if "image" in names:
            kind = names["image"].split("/")[-2]
            packages = (
                self.client("artifactregistry", "v1")
                .projects()
                .locations()
                .repositories()
                .packages()
            )
            versions = getattr(packages, kind)()
            resources.append(
                _Resource(
                    "artifactregistry.tags.get",
                    f"flood image {self.settings['flood_image']}",
                    "gcp.flood_image",
                    lambda: versions.get(name=names["image"]),
                )
            )
        return resources + self.monitored()

    def monitored(self) -> list[_Resource]:
        """The SLOs and alert policies the stop conditions watch."""
        monitoring = self.client("monitoring", "v3")
        objectives = monitoring.services().serviceLevelObjectives()
        policies = monitoring.projects().alertPolicies()
        resources = []
        for kind, name, resource in self.watched:
            setting = f"stop condition {name}"
            if kind == "slo_burn_rates":
                resources.append(
                    _Resource(
                        "monitoring.slos.get",
                        f"SLO {resource}",
                        setting,
                        lambda r=resource: objectives.get(name=r),
                    )
                )
            else:
                resources.append(
                    _Resource(
                        "monitoring.alertPolicies.get",
                        f"alert policy {resource}",
                        setting,
                        lambda r=resource: policies.get(name=r),
                        _disabled,
                    )
                )
        return resources


def _disabled(policy: dict[str, Any]) -> str | None:
    if policy.get("enabled") is not False:
        return None
    return (
        f"alert policy {policy.get('name')} is disabled, so it opens no alerts: enable "
        "it, or remove the stop condition"
    )


def _lacking(permission: Permission, where: _Where, project: str) -> str:
    if where.name == project:
        return (
            f"the kit's account lacks {permission.name} in project {project}: grant "
            f"{permission.role} (needed for {permission.purpose})"
        )
    return (
        f"the kit's account lacks {permission.name} on {where.what}: grant "
        f"{permission.role} on it, or in project {project} (needed for "
        f"{permission.purpose})"
    )


def staging_access_problems(
    configuration: Configuration,
    secrets: Secrets | None,
    experiment: Experiment | None = None,
    stop_conditions: Any = None,
) -> list[str]:
    """Every reason the kit could not run `experiment` (every staging equivalent, when
    None) on staging, watched by `stop_conditions` (default: the configuration's), one
    line each (empty: it can)."""
    if stop_conditions is None:
        stop_conditions = RunSettings.of(configuration).stop_conditions
    try:
        watched = _watched(stop_conditions)
        staging = _Staging(configuration, secrets, _needs(experiment, stop_conditions), watched)
        names = staging.names()
        places = staging.places(names)
        if "job" in places and not staging.job_exists(names["job"]):
            del places["job"]  # no role can be granted on it yet: the project's
        project = staging.project_place(staging.project)
        missing = _missing(permissions_for(experiment, stop_conditions), places, project)
    except KitError as error:
        return [str(error)]
    problems = [_lacking(p, where, staging.project) for p, where in missing]
    lacking = {p.name for p, _ in missing}
    answers: dict[str, Any] = {}
    for resource in staging.resources(names):
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
            continue
        problems += filter(None, [resource.problem(answers[resource.setting])])
    accounts = []
    if "flood_service_account" in staging.settings:
        accounts.append((staging.settings["flood_service_account"], "gcp.flood_service_account"))
    runtime = (answers.get("gcp.cloud_run_service", {}).get("template") or {}).get("serviceAccount")
    if runtime:  # rolling out a revision acts as its runtime account
        accounts.append((runtime, "the Cloud Run service's runtime account"))
    for email, setting in accounts:
        problems += filter(None, [_act_as_problem(email, setting, configuration, secrets)])
    return problems
