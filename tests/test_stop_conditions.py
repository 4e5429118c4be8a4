"""Stop conditions: the golden path's probes judged against the live testbed on both sides
of their thresholds, and a run stopped by one, built-in or a team's own probe (its
rollbacks played, the verdict `aborted` with the values in the journal and on the
report's timeline)."""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from chaoslib.hypothesis import within_tolerance

from chaoskit.probes.stop_conditions import (
    golden_path_error_rate,
    golden_path_latency,
    service_pool_held,
)
from chaoskit.report.report import build_report, write_reports
from chaoskit.targets.database import database_sessions
from chaoskit.testbed.lifecycle import testbed_endpoints
from chaoskit.verification.stop_conditions import (
    DEFAULTS,
    arm_stop_conditions,
    check_stop_conditions,
    layered_stop_conditions,
    settle_stop_conditions,
)
from tests.browser import open_in_chromium
from tests.conftest import REPO, Testbed, eventually, kept_testbed, leftovers, sessions
from tests.test_testbed import chaos

SMD = "experiments/smd-phase3-timeout.json"


@pytest.fixture(scope="module")
def testbed(kit_dirs: Callable[[str], Path]) -> Iterator[Testbed]:
    with kept_testbed(kit_dirs("stop-conditions") / ".testbed") as kept:
        yield kept


@pytest.fixture
def configuration(testbed: Testbed) -> dict[str, Any]:
    """What the testbed's control gives a run: its endpoints."""
    return dict(testbed_endpoints(testbed.state))


def pool_held_pct(configuration: dict[str, Any]) -> float:
    """The long-running service's connections now, over its pool's most, in percent."""
    held = database_sessions(configuration["admin_database_url"])["by_application"]
    share = held.get(configuration["service_application_name"], 0)
    return round(100.0 * share / configuration["service_pool_capacity"], 1)


def free_loopback_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def test_the_profile_and_the_defaults_are_the_staging_strategys_thresholds() -> None:
    staging = json.loads((REPO / "experiments/profiles/staging.json").read_text())
    settled = settle_stop_conditions(dict(staging["configuration"]))
    assert {
        k: settled[k]
        for k in (
            "error_rate_pct",
            "latency_pct_of_baseline",
            "pool_pct",
            "cpu_pct",
            "cpu_window_s",
        )
    } == {
        "error_rate_pct": 5.0,
        "latency_pct_of_baseline": 200.0,
        "pool_pct": 90.0,
        "cpu_pct": 80.0,
        "cpu_window_s": 300.0,
    }
    assert settle_stop_conditions({"stop_conditions": '{"cpu_pct": null}'})["cpu_pct"] is None
    assert settle_stop_conditions({})["error_rate_pct"] == DEFAULTS["error_rate_pct"]


def test_the_pool_condition_is_breached_above_the_share_the_service_holds(
    configuration: dict[str, Any],
) -> None:
    held_pct = pool_held_pct(configuration)
    assert held_pct > 0  # the service holds its pool at rest
    below = service_pool_held(threshold_pct=held_pct - 1, configuration=configuration)
    at = service_pool_held(threshold_pct=held_pct, configuration=configuration)
    assert (below["status"], below["value"]) == ("breached", held_pct)
    assert (at["status"], at["value"]) == ("within", held_pct)
    assert below["capacity"] == configuration["service_pool_capacity"]


def test_the_error_rate_counts_failed_requests_of_the_golden_path(
    configuration: dict[str, Any],
) -> None:
    healthy = golden_path_error_rate(requests=4, configuration=configuration)
    assert (healthy["status"], healthy["value"], healthy["errors"]) == ("within", 0.0, 0)
    nothing_there = f"http://127.0.0.1:{free_loopback_port()}"
    down = golden_path_error_rate(requests=4, url=nothing_there, configuration=configuration)
    assert (down["status"], down["value"], down["errors"]) == ("breached", 100.0, 4)
    assert down["first_error"].startswith("ConnectError")  # the journal says why


@pytest.fixture
def closing_health_server() -> Iterator[str]:
    """A health endpoint that closes each connection after answering, without saying
    so (no `Connection: close`), as many small services do."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(answer, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()


def test_a_service_that_closes_after_each_answer_is_no_error(
    closing_health_server: str, configuration: dict[str, Any]
) -> None:
    # reusing its closed connection would reset a few requests in a hundred: a stop for
    # nothing the service did
    sample = golden_path_error_rate(
        requests=100, url=closing_health_server, configuration=configuration
    )
    assert (sample["status"], sample["errors"], sample["first_error"]) == ("within", 0, None)


def test_latency_is_judged_against_the_baseline_above_the_floor(
    configuration: dict[str, Any],
) -> None:
    # any response time is more than 0 % of the baseline: breached without a floor ...
    slower = golden_path_latency(baseline_ms=1.0, threshold_pct=0.0, configuration=configuration)
    assert slower["status"] == "breached" and slower["median_ms"] > 0
    # ... and never while the difference stays under the floor
    floored = golden_path_latency(
        baseline_ms=1.0, threshold_pct=0.0, floor_ms=60_000.0, configuration=configuration
    )
    assert floored["status"] == "within"
    assert floored["value"] > floored["threshold"]  # the journal keeps the true ratio
    nothing_there = f"http://127.0.0.1:{free_loopback_port()}"
    unanswered = golden_path_latency(baseline_ms=1.0, url=nothing_there)
    assert unanswered["status"] == "unobserved"  # the error rate's to judge, not a stop


def own_probe(url: str, name: str = "checkout-errors") -> dict[str, Any]:
    """A team's stop condition: an HTTP probe of `url`, 200 within."""
    probe = {
        "type": "probe",
        "name": "checkout-status",
        "provider": {"type": "http", "url": url, "timeout": 3},
        "tolerance": 200,
    }
    return {"name": name, "every_s": 0.1, "probe": probe}


def test_a_teams_conditions_join_the_layers_below_by_name() -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}/"
    profile = {"probes": [own_probe(url, "checkout"), own_probe(url, "search")]}
    run_s = {"probes": [{**own_probe(url, "checkout"), "every_s": 30}, own_probe(url, "cart")]}
    layered = layered_stop_conditions(DEFAULTS, profile, run_s)
    assert [(c["name"], c["every_s"]) for c in layered["probes"]] == [
        ("checkout", 30),
        ("search", 0.1),
        ("cart", 0.1),
    ]
    assert layered_stop_conditions(layered, {"probes": None})["probes"] is None
    assert layered["error_rate_pct"] == DEFAULTS["error_rate_pct"]  # thresholds as before


def test_chaosgcps_own_probe_can_be_a_stop_condition() -> None:
    """As the README says: `get_slo_burn_rate` as it is, judged by a tolerance of the
    team's own (a function handed its output)."""
    probe = {
        "type": "probe",
        "name": "checkout-burn",
        "provider": {
            "type": "python",
            "module": "chaosgcp.monitoring.probes",
            "func": "get_slo_burn_rate",
            "secrets": ["gcp"],
            "arguments": {
                "name": "projects/p/services/s/serviceLevelObjectives/a",
                "loopback_period": "3600s",
            },
        },
        "tolerance": {
            "type": "probe",
            "name": "burn-rate-at-most-10",
            "provider": {
                "type": "python",
                "module": "tests.own_probes",
                "func": "burn_rate_at_most",
                "arguments": {"threshold": 10},
            },
        },
    }
    declared = {"probes": [{"name": "checkout-slo", "every_s": 60, "probe": probe}]}
    assert check_stop_conditions(declared) == declared
    shown = [{"points": [{"value": {"double_value": 14.4}}, {"value": {"double_value": 2.0}}]}]
    assert within_tolerance(copy.deepcopy(probe["tolerance"]), shown) is False
    assert within_tolerance(copy.deepcopy(probe["tolerance"]), shown[:0]) is True


def test_a_teams_probe_that_cannot_answer_fails_the_stop_condition() -> None:
    """Its probe raised (nothing listens there): a failure of the stop condition, which
    stops the run as a breach does, never a condition quietly gone."""
    configuration: dict[str, Any] = {
        "stop_conditions": {
            "error_rate_pct": None,
            "latency_pct_of_baseline": None,
            "pool_pct": None,
            "probes": [own_probe(f"http://127.0.0.1:{free_loopback_port()}/")],
        }
    }
    settle_stop_conditions(configuration)
    failed: list[tuple[str, BaseException]] = []
    stops = arm_stop_conditions(
        {},
        configuration,
        {},
        None,
        on_failure=lambda part, e: failed.append((part, e)),
        on_breach=lambda: None,
    )
    try:
        stops.start({}, configuration, {})
        assert eventually(lambda: bool(failed))
    finally:
        stops.disarm()
    ((part, error),) = failed
    assert part == "stop condition checkout-errors"
    assert "failed to connect" in str(error)
    assert stops.journal()["stopped_by"] is None


def run(
    testbed: Testbed, journal: Path, stop_conditions: dict[str, Any], **env: str
) -> tuple[int, dict]:
    result = chaos(
        "run",
        "--journal-path",
        str(journal),
        SMD,
        home=testbed.home,
        timeout_s=300,
        CHAOS_STOP_CONDITIONS=json.dumps(stop_conditions),
        **env,
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result.returncode, json.loads(journal.read_text())


class CheckoutEndpoint:
    """A team's own health endpoint on loopback, which the test controls: it answers 200
    until `bad` is set, then 503."""

    def __init__(self) -> None:
        self.bad = threading.Event()
        self.asked = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                endpoint.asked += 1
                body = b"degraded" if endpoint.bad.is_set() else b"ok"
                self.send_response(503 if endpoint.bad.is_set() else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/checkout"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def condition(self) -> dict[str, Any]:
        """The stop condition a team declares on it: an HTTP probe, 200 within."""
        probe = {
            "type": "probe",
            "name": "checkout-status",
            "provider": {"type": "http", "url": self.url, "timeout": 3},
            "tolerance": 200,
        }
        return {"name": "checkout-errors", "every_s": 0.5, "probe": probe}

    def turn_bad_once(self, happened: Callable[[], bool], done: threading.Event) -> None:
        """In the background: answer 503 once `happened()` (until `done`)."""

        def watch() -> None:
            while not done.is_set():
                if happened():
                    self.bad.set()
                    return
                done.wait(0.05)

        threading.Thread(target=watch, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.mark.slow
def test_a_breached_stop_condition_stops_the_run_with_its_rollbacks(
    testbed: Testbed, configuration: dict[str, Any], tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("TESTBED_HOME", str(testbed.home))  # the kept testbed's state
    held_pct = pool_held_pct(configuration)
    fast = {"every_s": 0.5, "pool_pct": held_pct - 1}
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    code, journal = run(testbed, tmp_path / "pool.json", fast)
    kit = journal["startup_chaos_kit"]
    assert (code, kit["verdict"], journal["status"]) == (1, "aborted", "interrupted")
    assert kit["reason"].startswith(f"stopped by the stop condition pool_pct: {held_pct} above")
    breach = kit["stop_conditions"]["stopped_by"]
    assert (breach["condition"], breach["sample"]["value"]) == ("pool_pct", held_pct)
    assert journal["safeguards"]["triggered_by"] == "stop-condition-pool"
    # stopped during the method, the flood released, nothing left behind
    assert [r.get("status") for r in journal["run"]] != ["succeeded"] * 3
    assert journal["rollbacks"][0]["activity"]["name"] == "stop-connection-flood"
    assert sessions(testbed.admin_dsn, "chaos-") == 0
    assert leftovers(testbed.home) == []

    # a team's own probe: their endpoint turns bad once the flood holds its sessions
    checkout = CheckoutEndpoint()
    done = threading.Event()
    try:
        checkout.turn_bad_once(lambda: sessions(testbed.admin_dsn, "chaos-flood-") > 0, done)
        own = {
            "every_s": 0.5,
            "error_rate_pct": None,
            "latency_pct_of_baseline": None,
            "pool_pct": None,
            "probes": [checkout.condition()],
        }
        # Phase 3 waits long enough for any machine to sample and judge the breach
        code, journal = run(
            testbed, stopped / "own-probe.json", own, CHAOS_INITIALIZATION_TIMEOUT_S="30"
        )
        done.set()
        kit = journal["startup_chaos_kit"]
        assert checkout.bad.is_set()
        assert (code, kit["verdict"], journal["status"]) == (1, "aborted", "interrupted")
        assert kit["reason"] == (
            "stopped by the stop condition checkout-errors: its probe "
            "returned HTTP 503, outside its tolerance 200"
        )
        breach = kit["stop_conditions"]["stopped_by"]
        assert breach["condition"] == "checkout-errors"
        assert (breach["sample"]["value"]["status"], breach["sample"]["tolerance"]) == (503, 200)
        assert kit["stop_conditions"]["armed"]["checkout-errors"] == {
            "kind": "probe",
            "every_s": 0.5,
            "probe": own["probes"][0]["probe"],
        }
        assert journal["safeguards"]["triggered_by"] == "checkout-errors"
        assert journal["rollbacks"][0]["activity"]["name"] == "stop-connection-flood"
        assert journal["rollbacks"][0]["status"] == "succeeded"
        assert sessions(testbed.admin_dsn, "chaos-") == 0
        assert leftovers(testbed.home) == []

        # the other side: at the share the service holds, and their endpoint answering
        # 200 all along, the run goes on to its verdict
        checkout.bad.clear()
        asked = checkout.asked
        at = {"every_s": 0.5, "pool_pct": held_pct, "probes": [checkout.condition()]}
        code, journal = run(testbed, tmp_path / "went-on.json", at)
    finally:
        done.set()
        checkout.close()
    assert (code, journal["startup_chaos_kit"]["verdict"]) == (0, "reproduced")
    stops = journal["startup_chaos_kit"]["stop_conditions"]
    assert stops["stopped_by"] is None and "checkout-errors" in stops["armed"]
    assert checkout.asked > asked  # it was sampled, and within

    # the report draws each stop on its run's timeline (its charts show the newest run of
    # an experiment: the pool's stop is read from the report's data)
    (pool_run,) = build_report([tmp_path / "pool.json"])["_current"]
    assert "stopped: pool_pct" in [m["label"] for m in pool_run["markers"]]
    html = tmp_path / "report.html"
    write_reports([stopped], html)

    def read(page: Any) -> dict[str, Any]:
        texts = page.locator("#timeline-charts svg text").all_text_contents()
        return {
            "markers": [t.strip() for t in texts],
            "rows": page.locator("#summary tbody tr").all_inner_texts(),
        }

    seen, errors = open_in_chromium(html, read, tmp_path / "report.png")
    assert errors == []
    assert "stopped: checkout-errors" in seen["markers"]
    # the summary says why the run is not as expected: its reason, not an expectation
    assert "(aborted) stopped by the stop condition checkout-errors" in seen["rows"][0]
