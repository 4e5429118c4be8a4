"""Reading a JSON or YAML file a user hands the kit (a var-file, Chaos Toolkit settings,
a control file), or an object given as JSON text in an environment variable: what
cannot be read or does not parse is one line naming where it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from chaoskit.kit.errors import KitError

__all__ = ["displayed", "json_text", "read_json_or_yaml"]

_MAX_VALUES = 100_000  # in one document, every alias expanded


def read_json_or_yaml(path: Path, label: str) -> Any:
    """The document in `path`: JSON when its name ends in `.json`, YAML otherwise.
    KitError says `<label>: ...` and what is wrong (unreadable, not valid JSON or YAML,
    or larger than `_MAX_VALUES` values once YAML's aliases are expanded)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise KitError(f"{label}: cannot be read ({reason})") from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise KitError(
                f"{label}: not valid JSON ({error.msg} at line {error.lineno}): fix its syntax"
            ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        reason = str(error).strip().splitlines()[0]
        raise KitError(f"{label}: not valid YAML ({reason}): fix its syntax") from None
    except RecursionError:
        raise KitError(f"{label}: nested too deeply to read: write it out plainly") from None
    if not _within(document, _MAX_VALUES):
        # YAML's aliases repeat a value without its size: a few hundred bytes can stand
        # for gigabytes once a journal writes every value out
        raise KitError(
            f"{label}: more than {_MAX_VALUES:,} values once its YAML aliases (&, *) are "
            "expanded: write it out plainly"
        )
    return document


def _within(document: Any, most: int) -> bool:
    """Whether `document`, every alias expanded, holds at most `most` values."""
    stack, seen = [document], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > most:
            return False
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def json_text(value: Any, label: str, hint: str) -> Any:
    """`value`, or the JSON it holds when it is text (an environment variable's; empty
    text is None). KitError says `<label> is not JSON (<why>): <hint>`."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value) if value.strip() else None
    except ValueError as error:
        raise KitError(f"{label} is not JSON ({error}): {hint}") from None


def displayed(value: Any) -> str:
    """A value as a reader of a journal or a verdict sees it: text as it is, anything else
    as JSON (`true`, `null`, `[1, 2]`), never Python's repr."""
    return value if isinstance(value, str) else json.dumps(value, default=str)
