"""Var-files (profiles), checked before anything uses them: a file that does not parse,
or is not of the shape Chaos Toolkit reads, is one line naming it, never a run that goes
on with the defaults. Beside `configuration` and `secrets`, a var-file may say `about`
itself (a remediation's evidence and verification): Chaos Toolkit reads nothing from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaoskit.kit.documents import read_json_or_yaml
from chaoskit.kit.errors import KitError

__all__ = ["VarFileError", "check_var_file"]

_SECTIONS = {"configuration", "secrets", "about"}


class VarFileError(KitError):
    """A var-file cannot be read; the message names it and why."""


def check_var_file(path: Path | str) -> dict[str, Any] | None:
    """The var-file's content (None for a `.env` file: any other name); VarFileError
    says what is wrong."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml", ".json"):
        _check_env_file(path)
        return None
    try:
        document = read_json_or_yaml(path, str(path))
    except KitError as error:
        raise VarFileError(str(error)) from None
    if (
        not isinstance(document, dict)
        or not set(document) <= _SECTIONS
        or not all(isinstance(document[k], dict) for k in document)
    ):
        raise VarFileError(
            f"{path}: give an object with `configuration` (and `secrets`), e.g. "
            '{"configuration": {"pool_size": 10}}'
        )
    return document


def _check_env_file(path: Path) -> None:
    """A var-file that is neither JSON nor YAML by its name is read as `.env` lines,
    `NAME=value` each (as Chaos Toolkit reads it); VarFileError names the first line
    that is not."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise VarFileError(f"{path}: cannot be read ({reason})") from None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, equals, _ = text.partition("=")
        if not equals or not name.strip():
            raise VarFileError(
                f"{path}: line {number} is not NAME=value: a var-file is JSON or YAML when "
                "its name ends in .json, .yaml or .yml, else a .env file of NAME=value lines"
            )
