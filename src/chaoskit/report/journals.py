"""Reading journals for review: every run found, and every file that is not one.

A journal that does not parse, lacks what a finished Chaos Toolkit run always has, or
has a field of the wrong type anywhere the report reads (journal_schema) is listed as
such with the reason; it never stops the review. So are a game day's summary and a
sweep's limit.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic_core import from_json

from chaoskit.report.journal_schema import check_journal, check_limit, check_summary

__all__ = ["Corrupt", "GameDay", "Journals", "RunRecord", "read_journals"]

_REQUIRED = ("experiment", "status", "start")
# the reference service's database phase: a journal that does not name its own
_DEFAULT_DATABASE_PHASE = "database"


@dataclass
class RunRecord:
    path: Path
    gameday_id: str | None
    journal: dict[str, Any]

    @property
    def kit(self) -> dict[str, Any]:
        """The kit's section of the journal (empty when the kit did not verify the run)."""
        return self.journal.get("startup_chaos_kit") or {}

    @property
    def experiment(self) -> str:
        """The experiment's name: its file's, where the kit recorded which file ran or
        a game day named the journal after it; else its title."""
        ran = self.kit.get("experiment_file")
        if ran:
            return Path(ran).stem
        title = self.journal["experiment"].get("title")
        return self.path.stem if self.gameday_id or not title else title

    @property
    def database_phase(self) -> str:
        """The name of the phase that opens the pool (what the chains call Phase 3), as
        the journal names it: the kit's record of the system under test, else the
        chain's expectation of it, else the reference service's."""
        if self.kit.get("database_phase"):
            return self.kit["database_phase"]
        for expectation in self.kit.get("expectations") or []:
            expected = expectation.get("expected") or ""
            if expectation["name"] == "phase3_is_database" and expected.startswith("== "):
                return expected[3:]
        return _DEFAULT_DATABASE_PHASE

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
    """What a game day's summary.json says of it."""

    gameday_id: str
    started_at: str
    expected: dict[str, str]  # experiment -> the verdict the suite expected
    files: dict[str, str] = field(default_factory=dict)  # experiment -> its file
    name: str | None = None
    suite: str | None = None
    target: str | None = None
    profiles: list[str] = field(default_factory=list)
    status: str | None = None
    ended_at: str | None = None
    preflight: dict[str, Any] | None = None


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
    """The document in `path`, parsed by pydantic's JSON parser (a third of the standard
    library's time, which counts over a thousand journals), or why it cannot be read."""
    try:
        return from_json(path.read_bytes()), None
    except FileNotFoundError:
        return None, "no such file"
    except IsADirectoryError:
        return None, "a folder, not a file"
    except PermissionError:
        return None, "not readable (permission denied)"
    except ValueError as error:
        return None, f"not valid JSON ({error}): partial or corrupt"


def _gameday(summary: dict[str, Any]) -> GameDay:
    entries = summary.get("experiments") or []
    preflight = summary.get("preflight")
    return GameDay(
        summary["gameday_id"],
        summary.get("started_at") or "",
        {e["name"]: e["expected"] for e in entries},
        {e["name"]: e["file"] for e in entries if e.get("file")},
        summary.get("name"),
        summary.get("suite"),
        summary.get("target"),
        list(summary.get("profiles") or []),
        summary.get("status"),
        summary.get("ended_at"),
        {"healthy": preflight.get("healthy"), "reasons": preflight.get("reasons") or []}
        if preflight
        else None,
    )


def _since(started: str, since: datetime | None) -> bool:
    if since is None:
        return True
    moment = datetime.fromisoformat(started)  # checked: an ISO 8601 time
    # Chaos Toolkit writes its times in UTC, without the offset
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) >= since


def read_journals(sources: list[Path], since: datetime | None = None) -> Journals:
    """Every journal, game-day summary and breaking-point sweep under `sources` (files
    or folders); only what started at or after `since` (timezone-aware), when given."""
    runs: list[RunRecord] = []
    corrupt: list[Corrupt] = []
    gamedays: dict[str, GameDay] = {}
    sweeps: list[dict[str, Any]] = []
    for path in _files(sources):
        document, problem = _load(path)
        if problem:
            corrupt.append(Corrupt(path, problem))
            continue
        if not isinstance(document, dict):
            corrupt.append(Corrupt(path, "not a journal: the document is not an object"))
            continue
        if path.name == "summary.json" and "gameday_id" in document:
            problem = check_summary(document)
            if problem:
                corrupt.append(Corrupt(path, f"malformed game-day summary: {problem}"))
            elif not document.get("started_at") or _since(document["started_at"], since):
                gamedays[document["gameday_id"]] = _gameday(document)
            continue
        if path.name == "limit.json" and "probes" in document:
            problem = check_limit(document)
            if problem:
                corrupt.append(Corrupt(path, f"malformed limit.json: {problem}"))
            else:
                sweeps.append({**document, "path": str(path)})
            continue
        missing = [key for key in _REQUIRED if key not in document]
        if missing:
            corrupt.append(Corrupt(path, f"partial journal: no {', '.join(missing)}"))
            continue
        problem = check_journal(document)
        if problem:
            corrupt.append(Corrupt(path, f"malformed journal: {problem}"))
            continue
        parent = path.parent.name
        record = RunRecord(path, parent if parent.startswith("gd-") else None, document)
        if _since(record.started, since):
            runs.append(record)
    runs.sort(key=lambda r: r.started)
    gamedays_in_order = sorted(gamedays.values(), key=lambda g: g.started_at)
    return Journals(runs, corrupt, gamedays_in_order, sweeps)
