"""Google Cloud resources as Google keeps them, behind the fake's routes.

`CloudRunService` is a service with revisions: its answers carry output-only fields,
full resource names, an `etag` and the name of the revision serving; a PATCH applies
its `updateMask` (or replaces the service), names a new revision unless the template
names one, refuses with 409 a revision name that exists with another configuration,
and resolves each image tag to a digest at that moment, as Cloud Run does.

`CloudLogging` answers `entries.list` as Logging does: the filter's terms (including its
time bound) are honoured, `orderBy` too, answers come in pages, and the first page of
a search is empty with a `nextPageToken` ("the search goes on").
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
import uuid
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.gcp_fake import FakeGoogle, Request, error

Answer = tuple[int, Any]
Rollout = Callable[[], dict[str, Any]]  # the rollout operation's state: done, error


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _digest(image: str, generation: int) -> str:
    return "sha256:" + hashlib.sha256(f"{image}#{generation}".encode()).hexdigest()


def _repository(image: str) -> str:
    image = image.split("@", 1)[0]
    name_start = image.rfind("/") + 1
    return image[: image.rindex(":")] if ":" in image[name_start:] else image


def _get_path(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    if value is None:
        target.pop(last, None)
    else:
        target[last] = copy.deepcopy(value)


class CloudRunService:
    """One Cloud Run service, deployed (by `gcloud run deploy --revision-suffix`) as
    revision `<name>-v1` of `image`, its tag resolved to a digest."""

    OUTPUT_ONLY = ("uid", "generation", "createTime", "updateTime", "creator", "lastModifier",
                   "uri", "conditions", "terminalCondition", "latestReadyRevision",
                   "latestCreatedRevision", "observedGeneration", "reconciling",
                   "trafficStatuses")  # fmt: skip

    def __init__(
        self,
        google: FakeGoogle,
        location: str,
        name: str,
        image: str,
        vpc_access: dict[str, Any] | None = None,
        service_account: str | None = None,
        start: Callable[[str], Rollout] | None = None,
    ) -> None:
        self.name = f"{location}/services/{name}"
        self.short, self.location = name, location
        self.tags: dict[str, str] = {}  # Artifact Registry: image tag -> digest
        self.push(image)
        self.revisions: dict[str, dict[str, Any]] = {}
        self.rollouts: dict[str, tuple[str, Rollout]] = {}
        self.start = start or (lambda revision: lambda: {"done": True})
        template: dict[str, Any] = {
            "revision": f"{name}-v1",
            "containers": [{"name": f"{name}-1", "image": image}],
        }
        if vpc_access:
            template["vpcAccess"] = vpc_access
        if service_account:
            template["serviceAccount"] = service_account
        created = _now()
        self.service: dict[str, Any] = {
            "name": self.name, "uid": str(uuid.uuid4()), "generation": "0",
            "createTime": created, "updateTime": created, "creator": "deployer@example.com",
            "lastModifier": "deployer@example.com", "uri": f"https://{name}-abc.a.run.app",
            "ingress": "INGRESS_TRAFFIC_ALL", "launchStage": "GA", "reconciling": False,
            "template": template,
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
        }  # fmt: skip
        self._new_revision(template["revision"], template, ready=True)
        path = f"/v2/{self.name}"
        google.on("GET", path, lambda r, m: (200, self.service))
        google.on("PATCH", path, self._patch)
        google.on("GET", f"{path}/revisions/([^/]+)", self._get_revision)
        google.on("GET", f"/v2/{location}/operations/(rollout-[0-9]+)", self._operation)

    # --- what a test does to it ---------------------------------------------------------

    def push(self, image: str) -> str:
        """Push `image` (a tag) again: it now names a new digest."""
        self.tags[image] = _digest(image, len(self.tags) + 1)
        return self.tags[image]

    def revision(self, name: str) -> dict[str, Any]:
        return self.revisions[name.rsplit("/", 1)[-1]]

    # --- Cloud Run's behaviour ----------------------------------------------------------

    def _resolve(self, image: str) -> str:
        if "@" in image:
            return image
        return f"{_repository(image)}@{self.tags[image]}"

    def _new_revision(self, name: str, template: dict[str, Any], ready: bool = False) -> str:
        full = f"{self.name}/revisions/{name}"
        containers = template.get("containers") or []
        self.revisions[name] = {
            "name": full, "uid": str(uuid.uuid4()), "generation": "1", "createTime": _now(),
            "service": self.name, "labels": dict(template.get("labels") or {}),
            "containers": copy.deepcopy(containers),
            "vpcAccess": copy.deepcopy(template.get("vpcAccess")),
            "containerStatuses": [{"name": c.get("name"), "imageDigest": self._resolve(c["image"])}
                                  for c in containers],
            "conditions": [{"type": "Ready", "state": "CONDITION_PENDING"}],
            "template": copy.deepcopy(template),
        }  # fmt: skip
        generation = int(self.service["generation"]) + 1
        self.service.update(
            generation=str(generation), observedGeneration=str(generation), updateTime=_now(),
            etag=f'"{uuid.uuid4().hex}"', latestCreatedRevision=full,
        )  # fmt: skip
        if ready:
            self._became_ready(name)
        return full

    def _became_ready(self, name: str) -> None:
        self.revisions[name]["conditions"] = [{"type": "Ready", "state": "CONDITION_SUCCEEDED"}]
        self.service["latestReadyRevision"] = self.revisions[name]["name"]
        self.service["terminalCondition"] = {"type": "Ready", "state": "CONDITION_SUCCEEDED"}

    @staticmethod
    def _configuration(template: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in template.items() if key != "revision"}

    def _patch(self, request: Request, match: re.Match[str]) -> Answer:
        body = request.body
        if body.get("etag") not in (None, self.service["etag"]):
            return error(409, "ABORTED", "the service changed since it was read (etag)")
        updated = copy.deepcopy(self.service)
        masks = request.query.get("updateMask")
        if masks:
            for path in masks[0].split(","):
                _set_path(updated, path, _get_path(body, path))
        else:  # the body is the whole service, output-only fields aside
            updated = {**{k: v for k, v in updated.items() if k in self.OUTPUT_ONLY}, **body}
        template = updated.setdefault("template", {})
        name = template.get("revision")
        if name and not name.startswith(f"{self.short}-"):
            return error(400, "INVALID_ARGUMENT", f"Revision name {name} must be prefixed by "
                         f"the name of the enclosing Service: {self.short}")  # fmt: skip
        if name in self.revisions:
            existing = self.revisions[name]["template"]
            if self._configuration(existing) != self._configuration(template):
                return error(409, "ALREADY_EXISTS", f"Revision named '{name}' with different "
                             "configuration already exists.")  # fmt: skip
        for container in template.get("containers") or []:
            if "@" not in container["image"] and container["image"] not in self.tags:
                return error(400, "INVALID_ARGUMENT", f"Image '{container['image']}' not found.")
        kept = {k: v for k, v in self.service.items() if k in self.OUTPUT_ONLY}
        self.service = {**updated, **kept}
        generation = int(self.service["generation"]) + 1
        name = name or f"{self.short}-{generation:05d}-{uuid.uuid4().hex[:3]}"
        self._new_revision(name, template)
        operation = f"rollout-{len(self.rollouts) + 1}"
        self.rollouts[operation] = (name, self.start(name))
        return 200, {"name": f"{self.location}/operations/{operation}", "done": False}

    def _operation(self, request: Request, match: re.Match[str]) -> Answer:
        operation = match.group(1)
        if operation not in self.rollouts:
            return error(404, "NOT_FOUND", f"Operation {operation} not found")
        revision, state = self.rollouts[operation]
        answer = {"name": f"{self.location}/operations/{operation}", **state()}
        if answer.get("done") and not answer.get("error"):
            self._became_ready(revision)
        elif answer.get("error"):
            self.revisions[revision]["conditions"] = [{
                "type": "Ready", "state": "CONDITION_FAILED",
                "message": answer["error"]["message"]}]  # fmt: skip
        return 200, answer

    def _get_revision(self, request: Request, match: re.Match[str]) -> Answer:
        revision = self.revisions.get(match.group(1))
        if revision is None:
            return error(404, "NOT_FOUND", f"Revision {match.group(1)} not found")
        return 200, {k: v for k, v in revision.items() if k != "template"}


# --- Cloud Logging ---------------------------------------------------------------------------

_TERM = re.compile(r'^(?P<field>[\w.]+(?:\."[^"]+")?)\s*(?P<op>>=|<=|=|>|<)\s*"(?P<value>[^"]*)"$')
_PATH = re.compile(r'"[^"]+"|[^.]+')


def _field(entry: dict[str, Any], field: str) -> Any:
    value: Any = entry
    for part in _PATH.findall(field):
        if not isinstance(value, dict):
            return None
        value = value.get(part.strip('"'))
    return value


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class CloudLogging:
    """Cloud Logging of one project. Entries are written by the test, or drawn from
    sources (functions returning all a resource has logged so far, each entry with a
    key of its own): new lines get the moment they are first seen as their timestamp,
    as lines reach Logging."""

    def __init__(self, google: FakeGoogle, project: str, page_size: int = 2) -> None:
        self.project, self.page_size = project, page_size
        self.entries: list[dict[str, Any]] = []
        self.sources: list[Callable[[], list[tuple[Hashable, dict[str, Any]]]]] = []
        self._seen: set[Hashable] = set()
        self._searches: dict[str, list[dict[str, Any]]] = {}
        self._tokens = itertools.count(1)
        self.filters: list[str] = []
        google.on("POST", "/v2/entries:list", self._list)

    def write(self, entry: dict[str, Any], at: datetime | None = None) -> None:
        moment = at or datetime.now(UTC)
        if self.entries and at is None:  # strictly after the last line, as Logging orders
            moment = max(moment, _moment(self.entries[-1]["timestamp"]) + timedelta(microseconds=1))
        stamped = {"insertId": uuid.uuid4().hex[:12], **entry,
                   "timestamp": moment.isoformat().replace("+00:00", "Z")}  # fmt: skip
        self.entries.append(stamped)

    def _ingest(self) -> None:
        for source in self.sources:
            for key, entry in source():
                if key not in self._seen:
                    self._seen.add(key)
                    self.write(entry)

    def _matches(self, terms: list[re.Match[str]], entry: dict[str, Any]) -> bool:
        for term in terms:
            field, op, wanted = term["field"], term["op"], term["value"]
            value = _field(entry, field)
            if field == "timestamp":
                value, wanted = _moment(value), _moment(wanted)
            elif value is None:
                return False
            else:
                value = str(value)
            compare = {"=": value == wanted, ">=": value >= wanted, "<=": value <= wanted,
                       ">": value > wanted, "<": value < wanted}  # fmt: skip
            if not compare[op]:
                return False
        return True

    def _list(self, request: Request, match: re.Match[str]) -> Answer:
        body = request.body
        if body.get("resourceNames") != [f"projects/{self.project}"]:
            return error(400, "INVALID_ARGUMENT", f"resourceNames: {body.get('resourceNames')}")
        token = body.get("pageToken")
        if token is not None:
            found = self._searches.pop(token, None)
            if found is None:
                return error(400, "INVALID_ARGUMENT", f"pageToken {token} is not valid")
        else:
            query = body.get("filter", "")
            self.filters.append(query)
            terms = [_TERM.match(term.strip()) for term in query.split(" AND ")]
            if not all(terms):
                return error(400, "INVALID_ARGUMENT", f"the fake reads only `field op "
                             f'"value"` terms joined by AND: {query}')  # fmt: skip
            if not any(t["field"] == "timestamp" and t["op"] in (">=", ">") for t in terms):
                # the kit's own rule: Logging would search the last day, or all history
                return error(400, "INVALID_ARGUMENT", f"the filter has no time bound: {query}")
            self._ingest()
            found = [e for e in self.entries if self._matches(terms, e)]  # type: ignore[arg-type]
            order = body.get("orderBy", "timestamp asc")
            if order not in ("timestamp asc", "timestamp desc"):
                return error(400, "INVALID_ARGUMENT", f"orderBy {order!r}")
            found.sort(key=lambda e: e["timestamp"], reverse=order == "timestamp desc")
            # the first page of a search is empty: Logging is still looking
            return 200, {"nextPageToken": self._continue(found)}
        size = min(int(body.get("pageSize") or 50), self.page_size)
        page, rest = found[:size], found[size:]
        answer: dict[str, Any] = {"entries": page} if page else {}
        if rest:
            answer["nextPageToken"] = self._continue(rest)
        return 200, answer

    def _continue(self, rest: list[dict[str, Any]]) -> str:
        token = f"page-{next(self._tokens)}"
        self._searches[token] = rest
        return token
