"""Reading a service's startup from its own words: patterns, durations in any unit,
moments, causes mapped from what services really print, and what a log does not say
judged inconclusive, never unmet."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from chaoskit.kit.failures import CAUSES, cause_in_text
from chaoskit.testbed.instances import startup_report
from chaoskit.testbed.startup_log import StartupLogError, startup_log
from chaoskit.verification.expectations import evaluate_expectation
from chaoskit.verification.verdict import decide_verdict
from tests.conftest import REPO

SMD = json.loads((REPO / "experiments/profiles/smd-service.json").read_text())
SMD_LOG = startup_log(SMD["configuration"]["service"]["startup_log"])
# the incident's service's own lines, as its startup printed them
INCIDENT = [
    " CYCLE:  PHASE TRANSITION  ->  INIT",
    " PASS:  PHASE COMPLETED: INIT (0.012s)",
    " CYCLE:  PHASE TRANSITION  ->  DEPENDENCIES",
    " PASS:  PHASE COMPLETED: DEPENDENCIES (0.010s)",
    " CYCLE:  PHASE TRANSITION  ->  DATABASE",
    " FAIL:  PHASE FAILED: DATABASE - Database initialization timeout after 3.0s",
    "ERROR:    Application startup failed. Exiting.",
]


def test_the_incidents_own_lines_read_as_a_phase3_timeout_with_phases_4_to_7_blocked() -> None:
    phases, startup_failed = SMD_LOG.read(INCIDENT)
    assert [(p["phase"], p["name"], p["status"]) for p in phases] == [
        (1, "INIT", "succeeded"),
        (2, "DEPENDENCIES", "succeeded"),
        (3, "DATABASE", "timeout"),
        (4, "CACHE", "blocked"),
        (5, "SERVICES", "blocked"),
        (6, "WEBSOCKET", "blocked"),
        (7, "FINALIZE", "blocked"),
    ]
    assert (phases[0]["elapsed_s"], phases[2]["elapsed_s"]) == (0.012, 3.0)
    assert startup_failed is True
    # the timeout line matches `failed` too: a timeout is the first of the two
    assert phases[2]["cause"] is None


def test_a_cause_the_log_never_names_is_unreported_and_its_expectation_inconclusive() -> None:
    phases, startup_failed = SMD_LOG.read(INCIDENT)
    report = startup_report(phases, startup_failed, SMD_LOG, ready=False, exit_code=3)
    assert report["unreported"] == ["failed_phase.cause", "failure_at"]
    outputs = {"observe": report}
    cause = evaluate_expectation(
        {
            "name": "phase3_cause",
            "step": 3,
            "observe": "observe.failed_phase.cause",
            "expect": "== too_many_connections",
        },
        outputs,
        {},
    )
    exit_code = evaluate_expectation(
        {"name": "failure_exit_code", "step": 5, "observe": "observe.exit_code", "expect": "== 3"},
        outputs,
        {},
    )
    assert cause["inconclusive"] == ("the service's startup log does not report failed_phase.cause")
    assert exit_code["met"] is True and not exit_code.get("inconclusive")
    startup = evaluate_expectation(
        {"name": "startup_succeeded", "observe": "observe.ready", "expect": "== true"},
        outputs,
        {},
    )
    flood = {
        "name": "flood_applied",
        "kind": "pressure",
        "met": True,
        "expected": "== true",
        "observed": True,
    }
    verdict, reason = decide_verdict(
        {"status": "completed"}, [flood, cause, exit_code], startup, None, None
    )
    assert (verdict, reason) == (
        "reproduced",
        "pressure applied and all 1 outcome expectations met",
    )


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("FATAL:  sorry, too many clients already", "too_many_connections"),
        (
            "FATAL: remaining connection slots are reserved for roles with the SUPERUSER attribute",
            "too_many_connections",
        ),
        ("psycopg.errors.TooManyConnections: SQLSTATE 53300", "too_many_connections"),
        ("asyncpg.exceptions.TooManyConnectionsError: sorry", "too_many_connections"),
        (
            "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, "
            "connection timed out, timeout 3.00",
            "pool_timeout",
        ),
        ("psycopg_pool.PoolTimeout: couldn't get a connection after 30.00 sec", "pool_timeout"),
        ("FATAL:  the database system is starting up", "starting_up"),
        ('FATAL:  password authentication failed for user "app"', "auth_failed"),
        ('FATAL:  database "nope" does not exist', "unknown_database"),
        ('relation "schema_migrations" does not exist', "schema_missing"),
        ("ERROR: canceling statement due to lock timeout", "slow_schema_query"),
        ('could not translate host name "db.invalid" to address', "unknown_host"),
        ('connection to server at "127.0.0.1", port 9 failed: Connection refused', "refused"),
        ("ConnectionResetError: [Errno 104] Connection reset by peer", "reset"),
        ("psycopg2.OperationalError: timeout expired", "connect_timeout"),
        ("too_many_connections", "too_many_connections"),
        ("Database initialization timeout after 3.0s", None),
        ("the cache warmed up", None),
    ],
)
def test_what_services_really_print_maps_onto_the_kits_causes(text: str, cause: str) -> None:
    assert cause_in_text(text) == cause


def _failing_log(**description: object) -> dict:
    log = startup_log(
        {
            "format": "regex",
            "phases": ["config", "db", "http"],
            "started": r"begin (?P<phase>\w+)",
            "succeeded": r"ok (?P<phase>\w+) (?P<elapsed_ms>\d+)ms",
            "failed": r"fail (?P<phase>\w+): (?P<cause>.+)",
            **description,
        }
    )
    lines = [
        "begin config",
        "ok config 12ms",
        "begin db",
        "retry: FATAL: sorry, too many clients already",
        "fail db: pool exhausted",
    ]
    phases, _ = log.read(lines)
    return next(p for p in phases if p["status"] == "failed")


def test_a_profile_maps_its_own_words_first() -> None:
    failed = _failing_log(causes={"pool exhausted": "pool_timeout"})
    assert (failed["cause"], failed["cause_text"]) == ("pool_timeout", "pool exhausted")


def test_an_unmapped_cause_is_taken_from_the_phases_closest_line_naming_one() -> None:
    failed = _failing_log()
    assert failed["cause"] == "too_many_connections"
    assert failed["cause_text"] == "retry: FATAL: sorry, too many clients already"


def test_a_cause_nothing_maps_is_kept_as_text_and_judged_inconclusive() -> None:
    log = startup_log({"format": "regex", "failed": r"fail (?P<phase>\w+): (?P<cause>.+)"})
    phases, _ = log.read(["fail db: the moon is in the wrong phase"])
    report = startup_report(phases, None, log, ready=False, exit_code=1)
    assert report["failed_phase"]["cause"] is None
    assert report["failed_phase"]["cause_text"] == "the moon is in the wrong phase"
    result = evaluate_expectation(
        {
            "name": "phase3_cause",
            "step": 3,
            "observe": "o.failed_phase.cause",
            "expect": "== too_many_connections",
        },
        {"o": report},
        {},
    )
    assert result["inconclusive"] == (
        "the service's cause 'the moon is in the wrong phase' is none the kit knows: map it "
        "to one in service.startup_log.causes"
    )


@pytest.mark.parametrize(
    ("group", "text", "seconds"),
    [
        ("elapsed_s", "3.25", 3.25),
        ("elapsed_ms", "3250", 3.25),
        ("elapsed_us", "3250000", 3.25),
        ("elapsed", "3250ms", 3.25),
        ("elapsed", "1m5.5s", 65.5),
        ("elapsed", "750us", 0.00075),
    ],
)
def test_durations_are_read_in_any_unit(group: str, text: str, seconds: float) -> None:
    log = startup_log(
        {"format": "regex", "timeout": rf"(?P<phase>\w+) gave up after (?P<{group}>\S+)"}
    )
    phases, _ = log.read([f"db gave up after {text}"])
    assert phases[0]["elapsed_s"] == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("stamp", "moment"),
    [
        ("2026-12-04T07:00:01.250Z", datetime(2026, 12, 4, 7, 0, 1, 250000, UTC)),
        ("2026-12-04 07:00:01,250+00:00", datetime(2026, 12, 4, 7, 0, 1, 250000, UTC)),
        ("1796367601.25", datetime(2026, 12, 4, 7, 0, 1, 250000, UTC)),
        ("1796367601250", datetime(2026, 12, 4, 7, 0, 1, 250000, UTC)),
    ],
)
def test_a_timestamp_group_gives_the_phases_moments_and_duration(
    stamp: str, moment: datetime
) -> None:
    log = startup_log(
        {
            "format": "regex",
            "started": r"\[(?P<timestamp>[^]]+)\] begin (?P<phase>\w+)",
            "timeout": r"\[(?P<timestamp>[^]]+)\] gave up (?P<phase>\w+)",
        }
    )
    later = stamp.replace("01.250", "04.750").replace("01,250", "04,750")
    later = later.replace("1796367601.25", "1796367604.75").replace(
        "1796367601250", "1796367604750"
    )
    phases, _ = log.read([f"[{stamp}] begin db", f"[{later}] gave up db"])
    report = startup_report(phases, None, log, ready=False, exit_code=1)
    assert datetime.fromisoformat(phases[0]["started_at"]) == moment
    assert phases[0]["elapsed_s"] == pytest.approx(3.5)
    assert datetime.fromisoformat(report["failure_at"]) == datetime(
        2026, 12, 4, 7, 0, 4, 750000, UTC
    )
    assert "failure_at" not in report["unreported"]


def test_a_time_of_day_is_taken_on_the_day_the_instance_started() -> None:
    log = startup_log(
        {
            "format": "regex",
            "started": r"(?P<timestamp>\S+) begin (?P<phase>\w+)",
            "succeeded": r"ok (?P<phase>\w+)",
        }
    )
    since = datetime(2026, 12, 4, 7, 0, 0, tzinfo=UTC).astimezone()
    local = since.strftime("%H:%M:%S") + ",120"
    phases, _ = log.read([f"{local} begin db", "ok db"], since=since)
    assert datetime.fromisoformat(phases[0]["started_at"]) == since.replace(microsecond=120000)


@pytest.mark.parametrize(
    ("description", "message"),
    [
        (
            {"format": "regex", "succeeded": r"(?P<phase>\w+) done in (?P<elapsed_sec>\d+)"},
            "service.startup_log.succeeded: the group `elapsed_sec` is not read (for another "
            "unit, use elapsed with the unit inside the group, e.g. (?P<elapsed>\\d+ns)): name "
            "groups phase, elapsed_s, elapsed_ms, elapsed_us, elapsed, cause, timestamp",
        ),
        (
            {"format": "regex", "succeeded": r"(?P<phaze>\w+) done"},
            "service.startup_log.succeeded: the group `phaze` is not read (did you mean phase?)",
        ),
        (
            {"format": "regex", "succeeded": r"(?P<phase>\w+)", "causes": {"full": "db_full"}},
            "service.startup_log.causes['full']: 'db_full' is not one of the kit's causes",
        ),
        (
            {"format": "regex", "succeeded": r"(?P<phase>\w+)", "cause": {"x": "error"}},
            "service.startup_log: unknown cause (did you mean causes?) for format regex",
        ),
    ],
)
def test_a_profile_the_kit_cannot_read_is_refused_by_name(description: dict, message: str) -> None:
    with pytest.raises(StartupLogError) as refused:
        startup_log(description, "service.startup_log")
    assert str(refused.value).startswith(message)


def test_every_cause_the_vocabulary_names_maps_to_itself() -> None:
    assert all(cause_in_text(cause) == cause for cause in CAUSES)


def test_a_duration_without_its_unit_is_not_read_and_the_trace_says_so() -> None:
    log = startup_log(
        {"format": "regex", "succeeded": r"\[(?P<phase>\w+)\] ok in (?P<elapsed>\d+)us"}
    )
    (line,) = log.trace(["[db] ok in 3250us"])
    assert line.matched == "succeeded" and "elapsed_s" not in line.read
    assert line.read["unread"] == [
        "elapsed '3250' has no unit inside the group: write it in, e.g. (?P<elapsed>\\d+us), or "
        "use elapsed_s, elapsed_ms, elapsed_us"
    ]
