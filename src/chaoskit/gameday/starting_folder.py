"""`chaos gameday init`: a team's starting folder, laid out as the kit's own, so that
every command finds it from there (`./experiments`):

    experiments/gameday.toml               the suite: the experiments picked, in order
    experiments/profiles/my-service.yaml   the team's service, commented, to make theirs
    experiments/<name>.json                each experiment picked, the kit's own copied

Nothing that exists is overwritten: one file in the way and nothing is written.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from chaoskit.kit.errors import KitError
from chaoskit.kit.files import unwritable_folder
from chaoskit.kit.shipped import EXPERIMENTS, SCHEMAS

__all__ = [
    "DEFAULT_EXPERIMENTS",
    "PROFILE",
    "SUITE",
    "StartingFolderError",
    "shipped_experiments",
    "starting_folder",
    "write_starting_folder",
]

# one for each layer a team's service meets, each shown to work with a service of one's
# own: the database's connections, the connector in front of it, the service's own pool
DEFAULT_EXPERIMENTS = (
    "smd-phase3-timeout",
    "vpc-connector-concurrent-connections",
    "cloudsql-pool-exhaustion",
)
SUITE = Path("experiments/gameday.toml")
PROFILE = Path("experiments/profiles/my-service.yaml")
_PROFILE_TEMPLATE = Path(__file__).with_name("starting-profile.yaml")


class StartingFolderError(KitError):
    """The starting folder cannot be written as asked; the message says why."""


def shipped_experiments() -> list[str]:
    """The names of the kit's own experiments."""
    return sorted(path.stem for path in EXPERIMENTS.glob("*.json"))


def _suite(names: Sequence[str]) -> str:
    entries = "".join(
        f'\n[[experiment]]\nname = "{name}"\nfile = "{name}.json"\nexpect = "reproduced"\n'
        for name in names
    )
    return f"""#:schema {SCHEMAS.resolve() / "suite.schema.json"}
# Your game day: `chaos gameday run` from the folder above experiments/ holds it (check
# it first, starting nothing: `chaos gameday run --dry-run`).
#
# [gameday]      name, profile (a var-file, relative to this file), time_limit_min (the
#                whole game day's budget), on_failure ("continue" or "stop").
# [[experiment]] name (it names the journal), file (relative to this file), expect
#                ("reproduced" while the failure reproduces, "tolerated" once your fix
#                holds), and optional [experiment.vars]: configuration over the profile.

[gameday]
name = "my-service"
profile = "profiles/{PROFILE.name}"
time_limit_min = 90
on_failure = "continue"
{entries}"""


def starting_folder(names: Sequence[str] = DEFAULT_EXPERIMENTS) -> dict[Path, str]:
    """Every file of the starting folder, by its path in it, with its text;
    StartingFolderError names an experiment the kit does not have."""
    known = shipped_experiments()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise StartingFolderError(
                f"--experiment {name}: not one of the kit's experiments{hint}; known: "
                f"{', '.join(known)}"
            )
    names = list(dict.fromkeys(names))  # each once, in the order given
    schema = SCHEMAS.resolve() / "profile.schema.json"
    files = {
        SUITE: _suite(names),
        PROFILE: f"# yaml-language-server: $schema={schema}\n{_PROFILE_TEMPLATE.read_text()}",
    }
    for name in names:
        files[SUITE.parent / f"{name}.json"] = (EXPERIMENTS / f"{name}.json").read_text()
    return files


def write_starting_folder(folder: Path, names: Sequence[str] = DEFAULT_EXPERIMENTS) -> list[Path]:
    """Write the starting folder into `folder`; returns the files written.
    StartingFolderError, with nothing written, when a file is in the way or an
    experiment is unknown."""
    files = starting_folder(names)
    why = unwritable_folder(folder)
    if why:
        raise StartingFolderError(f"{folder}: {why}: give a folder you may write to")
    taken = [folder / path for path in files if (folder / path).exists()]
    if taken:
        raise StartingFolderError(
            f"{taken[0]} exists: init never overwrites a file; give an empty folder "
            "(chaos gameday init DIR), or move it away"
        )
    written = []
    for path, text in files.items():
        target = folder / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x") as out:  # never over a file that appeared meanwhile
                out.write(text)
        except OSError as error:
            raise StartingFolderError(
                f"{target}: cannot be written ({error.strerror}): give a folder you may write to"
            ) from None
        written.append(target)
    return written
