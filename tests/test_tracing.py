"""OpenTelemetry: with the toolkit's control (chaostracing.oltp, the `otel` extra) a
run's activities reach a tracing backend as spans, the experiment's carrying the kit's
verdict; an endpoint that cannot be reached is one warning, and the run goes on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Testbed, kept_testbed
from tests.otlp_receiver import OtlpReceiver
from tests.test_testbed import chaos

pytestmark = pytest.mark.slow
EXPERIMENT = "experiments/smd-phase3-timeout.json"
OTEL_CONTROL = {"opentelemetry": {"provider": {"type": "python", "module": "chaostracing.oltp"}}}


@pytest.fixture(scope="module")
def testbed(kit_dirs: Callable[[str], Path]) -> Iterator[Testbed]:
    with kept_testbed(kit_dirs("tracing") / ".testbed") as kept:
        yield kept


def _traced_run(testbed: Testbed, tmp_path: Path, endpoint: str) -> tuple[int, str, dict]:
    controls = tmp_path / "otel.json"
    controls.write_text(json.dumps(OTEL_CONTROL))
    journal = tmp_path / "journal.json"
    result = chaos(
        "run",
        "--control-file",
        str(controls),
        "--journal-path",
        str(journal),
        EXPERIMENT,
        home=testbed.home,
        timeout_s=300,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=endpoint,
        OTEL_SERVICE_NAME="startup-chaos-kit",
    )
    return result.returncode, result.stderr, json.loads(journal.read_text())


def test_a_run_reaches_the_tracing_backend_with_its_verdict(
    testbed: Testbed, tmp_path: Path
) -> None:
    with OtlpReceiver() as receiver:
        code, stderr, journal = _traced_run(testbed, tmp_path, receiver.endpoint)
    assert code == 0, stderr
    verdict = journal["startup_chaos_kit"]["verdict"]
    (root,) = [s for s in receiver.spans if s["name"] == "experiment"]
    assert root["attributes"]["chaostoolkit.experiment.title"] == journal["experiment"]["title"]
    assert root["attributes"]["chaoskit.verdict"] == verdict == "reproduced"
    traced = {s["attributes"].get("chaostoolkit.activity.name") for s in receiver.spans}
    method = {run["activity"]["name"] for run in journal["run"] + journal["rollbacks"]}
    assert method <= traced


def test_an_unreachable_tracing_endpoint_is_one_warning(testbed: Testbed, tmp_path: Path) -> None:
    code, stderr, journal = _traced_run(testbed, tmp_path, "http://otlp.invalid:4318/v1/traces")
    assert code == 0 and journal["startup_chaos_kit"]["verdict"] == "reproduced"
    (warning,) = [line for line in stderr.splitlines() if "otlp" in line.lower()]
    assert "OpenTelemetry: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://otlp.invalid:4318" in warning
    assert "the run goes on, untraced" in warning
