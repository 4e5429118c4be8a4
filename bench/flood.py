"""Benchmark: the flood's connection rate against `pgbench -C -S`, side by side in one run.

Both open real connections to the same embedded PostgreSQL (max_connections=1000) with
the same password authentication. pgbench -C opens a new connection per transaction,
so its TPS is its connection rate. The flood holds 900 connections, then releases them.

    .venv/bin/python bench/flood.py [--rounds 3] [--connections 900]

Prints each round and the ratio of medians (goal: >= 1.2), and the release time of
900 held connections (goal: <= 1 s).
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
from pathlib import Path

from chaoskit.actions.flood import start_connection_flood, stop_connection_flood
from chaoskit.testbed.postgres import EmbeddedPostgres, run_pgbench


def pgbench_connections_per_s(dsn: str, clients: int, seconds: int) -> float:
    out = run_pgbench(dsn, "-C", "-S", "-n", "-c", str(clients), "-j", "2", "-T", str(seconds))
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=900)
    parser.add_argument("--pgbench-clients", type=int, default=8)
    parser.add_argument("--pgbench-seconds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-flood-") as home:
        server = EmbeddedPostgres(Path(home) / "postgres")
        endpoint = server.start(max_connections=args.connections + 100)
        try:
            run_pgbench(endpoint.app_dsn, "-i", "-q", "-s", "1")
            ours, theirs, releases = [], [], []
            for round_ in range(1, args.rounds + 1):
                ramped = start_connection_flood(
                    args.connections, endpoint.app_dsn, hold_s=60, connect_timeout_s=30
                )
                released = stop_connection_flood()
                assert ramped["established"] == args.connections, ramped
                assert released["released"] == args.connections, released
                ours.append(ramped["connections_per_s"])
                releases.append(released["release_s"])
                theirs.append(
                    pgbench_connections_per_s(
                        endpoint.app_dsn, args.pgbench_clients, args.pgbench_seconds
                    )
                )
                print(
                    f"round {round_}: flood {ours[-1]:8.1f} conn/s "
                    f"(held {args.connections}, released in {releases[-1]:.3f} s) | "
                    f"pgbench -C -S -c {args.pgbench_clients} {theirs[-1]:8.1f} conn/s"
                )
        finally:
            server.stop()

    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"flood / pgbench -C connection rate: {ratio:.2f}x (goal >= 1.2)")
    print(
        f"release of {args.connections} held connections: max {max(releases):.3f} s (goal <= 1 s)"
    )


if __name__ == "__main__":
    main()
