"""What ships with the kit, wherever it is installed: the experiments, suites and profiles
(`experiments/`), the example services (`examples/`) and the JSON Schemas (`schemas/`),
inside the package, so that the kit works from any folder, not only its repository's.

A folder with its own `experiments/` uses it; one without uses the kit's. A file named
as the manual names it (`experiments/smd-phase3-timeout.json`), or by its bare name
(`smd-phase3-timeout`, `gameday-staging`), is found in whichever of the two is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "EXAMPLES",
    "EXPERIMENTS",
    "HERE",
    "SCHEMAS",
    "experiments_folder",
    "find_file",
    "find_profile",
    "shipped",
    "where_from",
]

_PACKAGE = Path(__file__).resolve().parents[1]
EXPERIMENTS = _PACKAGE / "experiments"
EXAMPLES = _PACKAGE / "examples"
SCHEMAS = _PACKAGE / "schemas"
# the current folder's own experiments, when it has them
HERE = Path("experiments")


def experiments_folder() -> Path:
    """./experiments when the current folder has one, else the kit's own."""
    return HERE if HERE.is_dir() else EXPERIMENTS


def shipped(path: Path) -> bool:
    """Whether `path` is one of the kit's own files (not the current folder's)."""
    return path.resolve().is_relative_to(EXPERIMENTS.resolve())


def find_file(given: Path, suffixes: Sequence[str], subfolder: str = "") -> Path:
    """The file `given` stands for: itself when it exists; else, in the experiments
    folder (./experiments, else the kit's own), the file `experiments/<rest>` names, or
    a bare name in `subfolder` (with one of `suffixes` when it has none); `experiments`
    itself is the folder. A name that is none of these is `given` unchanged, for the
    caller to say it does not exist."""
    if given.exists():
        return given
    folder = experiments_folder()
    if given == HERE:  # where there is none: the kit's own
        return folder
    if given.parts[:1] == (HERE.name,) and len(given.parts) > 1:
        relative = Path(*given.parts[1:])
    elif len(given.parts) == 1:
        relative = Path(subfolder) / given
    else:
        return given
    candidates = [folder / relative]
    if not relative.suffix:
        candidates += [folder / relative.with_name(relative.name + s) for s in suffixes]
    return next((c for c in candidates if c.is_file()), given)


def find_profile(given: Path | str) -> Path:
    """The var-file `given` stands for (see `find_file`): a bare name is a profile of
    the experiments folder's `profiles/`."""
    return find_file(Path(given), (".json", ".yaml", ".yml"), "profiles")


def where_from(path: Path) -> str:
    """Which experiments `path` is one of, said in a few words."""
    if shipped(path):
        return "the kit's own experiments, installed with it: there is no ./experiments here"
    return "./experiments"
