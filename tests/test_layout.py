"""The code's rooms: one installed namespace that every tool resolves as Python does, and
no import that runs back up the floors (`../shared/DESIGN.md`: kit at the ground, then
testbed, targets, actions and probes side by side, verification, report, gameday)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from mypy.modulefinder import FindModuleCache, compute_search_paths
from mypy.options import Options

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
PACKAGE = REPO / "src" / "chaoskit"
# where a user looks for the activities: the top of the repository, linked into the package
AT_THE_TOP = ("actions", "probes")


def _room(room: str) -> Path:
    return REPO / room if room in AT_THE_TOP else PACKAGE / room


def _code() -> list[tuple[str, Path]]:
    """Every module of the kit, by room, each once (where it lives, not through a link)."""
    found = [(room, path) for room in FLOORS for path in sorted(_room(room).rglob("*.py"))]
    return [("", PACKAGE / "__init__.py"), *found]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_activities_stay_at_the_top_and_are_the_packages_own() -> None:
    for room in AT_THE_TOP:
        assert (REPO / room).is_dir() and not (REPO / room).is_symlink()
        assert (PACKAGE / room).resolve() == (REPO / room).resolve()
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert rooms == set(FLOORS)


def test_every_chaoskit_import_resolves_statically_as_editors_and_type_checkers_see_it() -> None:
    """mypy's module finder (the search paths of this interpreter's site-packages, its
    `.pth` files read as text, no import hook run: what pyright, mypy and an editor's
    "go to definition" see) finds every `chaoskit` module the kit imports in this
    repository."""
    options = Options()
    options.python_executable = sys.executable
    finder = FindModuleCache(compute_search_paths([], options, str(REPO)), None, options)
    imported = {name for _, path in _code() for name in _imports(path)}
    unresolved = {}
    for name in sorted(n for n in imported if n.split(".")[0] == "chaoskit"):
        found = finder.find_module(name)
        if not isinstance(found, str) or not Path(found).resolve().is_relative_to(REPO):
            unresolved[name] = found
    assert unresolved == {}
    assert len(imported) > 100  # the kit's own imports were read


def test_no_import_runs_back_up_and_none_leaves_the_namespace() -> None:
    upward = []
    for room, path in _code():
        floor = FLOORS.get(room, 0)
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in FLOORS, f"{path.relative_to(REPO)} imports {name}"
            if top != "chaoskit" or name.count(".") < 1:
                continue
            other = name.split(".")[1]
            if room and other in FLOORS and other != room and FLOORS[other] >= floor:
                upward.append(f"{path.relative_to(REPO)} imports {name}")
    assert upward == []
