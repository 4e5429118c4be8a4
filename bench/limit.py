"""Benchmark: a breaking point over a range of 1,000, to a resolution of 1, on a testbed
kept up for the sweep; goal <= 12 probes, each probe as fast as one `chaos run`.

    .venv/bin/python bench/limit.py [--from 1] [--to 1000]

Side by side in one run, on one kept testbed: a plain `chaos run` of smd-phase3-timeout,
then `chaos gameday limit` over flood_connections in [--from, --to]; prints the probe
count and the ratio of a probe's time to the plain run's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENT = "experiments/smd-phase3-timeout.json"


def chaos(*args: str, env: dict[str, str]) -> float:
    """Seconds `chaos ARGS` took, start to end."""
    started = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).with_name("chaos")),
            "--no-version-check",
            "--no-log-file",
            *args,
        ],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="low", type=int, default=1)
    parser.add_argument("--to", dest="high", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-limit-") as scratch:
        env = {**os.environ, "TESTBED_HOME": str(Path(scratch) / ".testbed")}
        chaos("testbed", "up", env=env)
        try:
            run_path = Path(scratch) / "run.json"
            chaos("run", "--journal-path", str(run_path), EXPERIMENT, env=env)
            single = json.loads(run_path.read_text())["duration"]
            sweep_s = chaos(
                "gameday",
                "limit",
                EXPERIMENT,
                "--knob",
                "flood_connections",
                "--from",
                str(args.low),
                "--to",
                str(args.high),
                "--journals",
                scratch,
                env=env,
            )
            (limit_path,) = Path(scratch).glob("limit-*/limit.json")
            limit = json.loads(limit_path.read_text())
        finally:
            chaos("testbed", "down", env=env)
    probes = len(limit["probes"])
    per_probe = sum(p["duration_s"] for p in limit["probes"]) / probes
    print(
        f"breaking point {limit['knob']}={limit['breaking_point']} over [{args.low}, "
        f"{args.high}] in {probes} probes (goal <= 12); sweep {sweep_s:.1f} s\n"
        f"one chaos run {single:.2f} s; a probe {per_probe:.2f} s on average "
        f"(ratio {per_probe / single:.2f}, goal about 1: no testbed start per probe)"
    )


if __name__ == "__main__":
    main()
