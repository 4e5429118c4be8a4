"""Google's published API specifications as a fake's rule book.

Every rule comes from the discovery documents googleapiclient bundles (the same ones the
kit's clients are built from), not from hand-copied field lists: which method a request
is (HTTP method and path pattern), its known and required query parameters, the request
body's fields (each must exist in the request schema; those described "Required." must
be there), the `google-duration` and `google-datetime` formats of values, and
`updateMask` paths (each must name a field the resource has). Output-only fields in a
body or a mask are accepted and ignored, as AIP-203 says Google's APIs do.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient

# the documents of the installed client; GOOGLE_SPEC_DOCUMENTS checks against another
# version's (its googleapiclient/discovery_cache/documents folder), e.g. the floor's
DOCUMENTS = Path(
    os.environ.get("GOOGLE_SPEC_DOCUMENTS")
    or Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
)

# the API versions the kit calls, by the name its endpoints are configured under
VERSIONS = {
    "run": "v2",
    "vpcaccess": "v1",
    "sqladmin": "v1",
    "logging": "v2",
    "monitoring": "v3",
    "cloudresourcemanager": "v1",
    "iam": "v1",
    "artifactregistry": "v1",
    "secretmanager": "v1",
}


@dataclass(frozen=True)
class Method:
    id: str
    http_method: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]


def _path_pattern(template: str) -> re.Pattern[str]:
    """`v2/projects/{projectsId}/services/{servicesId}:run` as a regex of the path."""
    pieces = re.split(r"(\{\+?[^}]+\})", template)
    regex = "".join(
        (".+" if piece.startswith("{+") else "[^/:]+")
        if piece.startswith("{")
        else re.escape(piece)
        for piece in pieces
    )
    return re.compile(f"^/{regex}$")


def _methods(resources: dict[str, Any]) -> list[Method]:
    methods = []
    for resource in resources.values():
        for spec in resource.get("methods", {}).values():
            template = spec.get("flatPath") or spec["path"]
            methods.append(Method(spec["id"], spec["httpMethod"], _path_pattern(template), spec))
        methods += _methods(resource.get("resources", {}))
    return methods


# the formats Google's JSON mapping gives these strings (protobuf Duration, Timestamp)
FORMATS = {
    "google-duration": re.compile(r"^-?\d+(\.\d{1,9})?s$"),
    "google-datetime": re.compile(
        r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
    ),
}


def _format_violation(where: str, value: Any, spec: dict[str, Any]) -> str | None:
    pattern = FORMATS.get(spec.get("format", ""))
    if pattern is not None and isinstance(value, str) and not pattern.match(value):
        return f"{where}: {value!r} is not a {spec['format']}"
    return None


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class ApiSpec:
    """One API's discovery document, checking requests against it."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.document = json.loads((DOCUMENTS / f"{api}.{VERSIONS[api]}.json").read_text())
        self.schemas: dict[str, Any] = self.document["schemas"]
        self.methods = _methods(self.document["resources"])

    def method_for(self, http_method: str, path: str) -> Method | None:
        for method in self.methods:
            if method.http_method == http_method and method.pattern.match(path):
                return method
        return None

    def violations(
        self, http_method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> list[str]:
        """What in this request the specification does not allow (empty: it is valid)."""
        method = self.method_for(http_method, path)
        if method is None:
            return [f"{self.api}: no method answers {http_method} {path}"]
        problems = self._query_violations(method, query)
        request = method.spec.get("request")
        if request is None:
            if body not in (None, "", {}):
                problems.append(f"{method.id} takes no request body")
            return problems
        schema = self.schemas[request["$ref"]]
        if not isinstance(body, dict):
            problems.append(f"{method.id}: the body must be a {request['$ref']} object")
            return problems
        problems += self._value_violations(body, schema, request["$ref"])
        for mask in query.get("updateMask", []):
            problems += self._mask_violations(mask, schema, method.id)
        return problems

    def _query_violations(self, method: Method, query: dict[str, list[str]]) -> list[str]:
        every = {**self.document.get("parameters", {}), **method.spec.get("parameters", {})}
        known = {name: spec for name, spec in every.items() if spec.get("location") == "query"}
        problems = [
            f"{method.id}: unknown query parameter {name!r}" for name in query if name not in known
        ]
        problems += [
            f"{method.id}: the query parameter {name!r} is required"
            for name, spec in known.items()
            if spec.get("required") and name not in query
        ]
        for name, values in query.items():
            spec = known.get(name, {})
            for value in values:
                if spec.get("type") == "boolean" and value not in ("true", "false"):
                    problems.append(f"{method.id}: {name}={value!r} is not a boolean")
                if spec.get("type") == "integer" and not re.fullmatch(r"-?\d+", value):
                    problems.append(f"{method.id}: {name}={value!r} is not an integer")
                if "enum" in spec and value not in spec["enum"]:
                    problems.append(f"{method.id}: {name}={value!r} is not one of {spec['enum']}")
                problems += filter(None, [_format_violation(f"{method.id}: {name}", value, spec)])
        return problems

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        return self.schemas[schema["$ref"]] if "$ref" in schema else schema

    def _value_violations(self, value: Any, schema: dict[str, Any], where: str) -> list[str]:
        schema = self._resolve(schema)
        kind = schema.get("type")
        if kind == "object":
            if not isinstance(value, dict):
                return [f"{where}: expected an object, got {value!r}"]
            properties = schema.get("properties")
            if properties is None:
                extra = schema.get("additionalProperties")
                if extra is None:
                    return []
                problems = []
                for key, item in value.items():
                    problems += self._value_violations(item, extra, f"{where}.{key}")
                return problems
            problems = [
                f"{where}.{key} is required"
                for key, field in properties.items()
                if (field.get("description") or "").startswith("Required") and key not in value
            ]
            for key, item in value.items():
                field = properties.get(key)
                if field is None:
                    problems.append(f"{where}: unknown field {key!r}")
                elif not field.get("readOnly"):  # an output-only field is ignored (AIP-203)
                    problems += self._value_violations(item, field, f"{where}.{key}")
            return problems
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: expected an array, got {value!r}"]
            problems = []
            for index, item in enumerate(value):
                problems += self._value_violations(item, schema["items"], f"{where}[{index}]")
            return problems
        expected: dict[str, tuple[type, ...]] = {
            "string": (str,) if schema.get("format") not in ("int64", "uint64") else (str, int),
            "integer": (int,),
            "number": (int, float),
            "boolean": (bool,),
        }
        types = expected.get(kind or "")
        wrong_bool = isinstance(value, bool) and kind in ("integer", "number")
        if types is not None and (not isinstance(value, types) or wrong_bool):
            return [f"{where}: expected a {kind}, got {value!r}"]
        if kind == "string" and "enum" in schema and value not in schema["enum"]:
            return [f"{where}: {value!r} is not one of {schema['enum']}"]
        return list(filter(None, [_format_violation(where, value, schema)]))

    def _mask_violations(self, mask: str, schema: dict[str, Any], method: str) -> list[str]:
        problems = []
        for path in filter(None, mask.split(",")):
            current = schema
            for part in path.split("."):
                properties = self._resolve(current).get("properties") or {}
                field = properties.get(camel(part))
                if field is None:
                    problems.append(f"{method}: updateMask path {path!r} names no field")
                    break
                if field.get("readOnly"):  # ignored, as in a body (AIP-203)
                    break
                current = field
        return problems


@cache
def spec(api: str) -> ApiSpec:
    return ApiSpec(api)
