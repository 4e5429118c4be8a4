"""Reading journals for review: every run found, and every file that is not one.

A journal that does not parse, or lacks what a finished Chaos Toolkit run always has, is
listed as such with the reason; it never stops the review.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Corrupt", "GameDay", "Journals", "RunRecord", "read_journals"]

_REQUIRED = ("experiment", "status", "start")
# what the report reads from a journal, and the type each must have
_TYPES: dict[str, type | tuple[type, ...]] = {
    "experiment": dict,
    "status": str,
    "start": str,
    "run": list,
    "rollbacks": list,
    "duration": (int, float),
    "startup_chaos_kit": dict,
}


def _malformed(journal: dict[str, Any]) -> str | None:
    """Why a journal with every required key still cannot be read, if it cannot."""
    for key, kind in _TYPES.items():
        if key in journal and journal[key] is not None and not isinstance(journal[key], kind):
            return f"malformed journal: {key} is {type(journal[key]).__name__}, not as written"
    for key in ("run", "rollbacks"):
        for run in journal.get(key) or []:
            if not isinstance(run, dict) or not isinstance(run.get("activity"), dict):
                return f"malformed journal: an entry of {key} is not an activity's run"
    kit = journal.get("startup_chaos_kit") or {}
    for key in ("expectations", "timeline"):
        if not isinstance(kit.get(key) or [], list):
            return f"malformed journal: startup_chaos_kit.{key} is not a list"
    return None


@dataclass
class RunRecord:
    path: Path
    gameday_id: str | None
    journal: dict[str, Any]

    @property
    def experiment(self) -> str:
        """The experiment's name: its file's, where the kit recorded which file ran or
        a game day named the journal after it; else its title."""
        ran = (self.journal.get("startup_chaos_kit") or {}).get("experiment_file")
        if ran:
            return Path(ran).stem
        return self.path.stem if self.gameday_id else self.journal["experiment"].get("title", "?")

    @property
    def sweep_probe(self) -> bool:
        """A probe of a breaking-point sweep (its knob overridden), not a plain run."""
        return self.path.parent.name.startswith("limit-")

    @property
    def started(self) -> str:
        return self.journal["start"]


@dataclass
class Corrupt:
    path: Path
    reason: str


@dataclass
class GameDay:
    gameday_id: str
    started_at: str
    expected: dict[str, str]  # experiment -> the verdict the suite expected


@dataclass
class Journals:
    runs: list[RunRecord]
    corrupt: list[Corrupt]
    gamedays: list[GameDay]
    sweeps: list[dict[str, Any]]  # `chaos gameday limit`'s limit.json, with its `path`


def _files(sources: list[Path]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(p for p in source.rglob("*.json") if not p.name.startswith("."))
        else:
            files.append(source)
    return files


def _load(path: Path) -> tuple[Any, str | None]:
    try:
        return json.loads(path.read_text()), None
    except FileNotFoundError:
        return None, "no such file"
    except UnicodeDecodeError:
        return None, "not text"
    except json.JSONDecodeError as error:
        return None, f"not valid JSON ({error.msg} at line {error.lineno}): partial or corrupt"


def read_journals(sources: list[Path]) -> Journals:
    """Every journal, game-day summary and breaking-point sweep under `sources` (files
    or folders)."""
    runs: list[RunRecord] = []
    corrupt: list[Corrupt] = []
    gamedays: dict[str, GameDay] = {}
    sweeps: list[dict[str, Any]] = []
    for path in _files(sources):
        document, problem = _load(path)
        if problem:
            corrupt.append(Corrupt(path, problem))
            continue
        if path.name == "summary.json" and isinstance(document, dict) and "gameday_id" in document:
            gamedays[document["gameday_id"]] = GameDay(
                document["gameday_id"],
                document.get("started_at", ""),
                {e["name"]: e["expected"] for e in document.get("experiments", [])},
            )
            continue
        if path.name == "limit.json" and isinstance(document, dict) and "probes" in document:
            sweeps.append({**document, "path": str(path)})
            continue
        if not isinstance(document, dict):
            corrupt.append(Corrupt(path, "not a journal: the document is not an object"))
            continue
        missing = [key for key in _REQUIRED if key not in document]
        if missing:
            corrupt.append(Corrupt(path, f"partial journal: no {', '.join(missing)}"))
            continue
        problem = _malformed(document)
        if problem:
            corrupt.append(Corrupt(path, problem))
            continue
        parent = path.parent.name
        runs.append(RunRecord(path, parent if parent.startswith("gd-") else None, document))
    runs.sort(key=lambda r: r.started)
    gamedays_in_order = sorted(gamedays.values(), key=lambda g: g.started_at)
    return Journals(runs, corrupt, gamedays_in_order, sweeps)
