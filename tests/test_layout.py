"""The code's rooms: one installed namespace, and no import that runs back up the floors
(`../shared/DESIGN.md`: kit at the ground, then testbed, targets, actions and probes side
by side, verification, report, gameday)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.conftest import REPO

FLOORS = {
    "kit": 0,
    "testbed": 1,
    "targets": 2,
    "actions": 3,
    "probes": 3,
    "verification": 4,
    "report": 5,
    "gameday": 6,
}


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_every_room_is_mapped_into_the_one_namespace() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]
    mapped = setuptools["package-dir"]
    assert set(mapped) == {"chaoskit", *(f"chaoskit.{room}" for room in FLOORS)}
    packages = {
        "chaoskit." + ".".join(init.parent.relative_to(REPO).parts)
        for room in FLOORS
        for init in (REPO / room).rglob("__init__.py")
    }
    assert packages | {"chaoskit"} == set(setuptools["packages"])


def test_no_import_runs_back_up_and_none_leaves_the_namespace() -> None:
    upward = []
    for room, floor in FLOORS.items():
        for path in (REPO / room).rglob("*.py"):
            for name in _imports(path):
                top = name.split(".")[0]
                assert top not in FLOORS, f"{path.relative_to(REPO)} imports {name}"
                if top != "chaoskit" or name.count(".") < 1:
                    continue
                other = name.split(".")[1]
                if other in FLOORS and other != room and FLOORS[other] >= floor:
                    upward.append(f"{path.relative_to(REPO)} imports {name}")
    assert upward == []
