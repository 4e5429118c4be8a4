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
    """The var-file's content (None for a `.env` file); VarFileError says what is wrong."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml", ".json"):
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
