"""Benchmark: the connector model against a direct connection and HAProxy, side by side.

Interleaved rounds (default 3) of:
  * `pgbench -S -c 8` TPS direct, through HAProxy (TCP mode, loopback) and through the
    connector with no limits set;
  * raw bulk MB/s through the connector with no limits, and direct;
  * throttled bulk MB/s through the connector against the rate it was set to.

    .venv/bin/python bench/connector.py [--rounds 3] [--seconds 5]

HAProxy comes from Debian (`apt-get install haproxy`); the bench installs it if absent.
Goals: >= 1.0x HAProxy TPS, >= 2 GB/s unthrottled bulk, throttled rate within 5 %.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from chaoskit.kit.processes import stop_pid
from chaoskit.testbed.connector.launch import launch_connector
from chaoskit.testbed.postgres import EmbeddedPostgres, find_free_port, run_pgbench

NO_LIMITS = {
    "rate_per_min": None,
    "mbps_per_instance": None,
    "autoscale": False,
    "connections_per_instance": 1000,
}
_SOURCE = textwrap.dedent(
    """
    import asyncio, sys, uvloop
    CHUNK = b"x" * (1 << 20)
    async def serve(reader, writer):
        line = await reader.readline()
        if not line:  # a readiness probe
            return
        total = int(line)
        while total > 0:
            writer.write(CHUNK[: min(total, len(CHUNK))])
            total -= len(CHUNK)
            await writer.drain()
        writer.close()
    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
        await server.serve_forever()
    uvloop.run(main())
    """
)


def ensure_haproxy() -> str:
    found = shutil.which("haproxy")
    if found:
        return found
    print("installing haproxy (Debian package) ...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "haproxy"], check=True)
    return shutil.which("haproxy")


def start_haproxy(binary: str, upstream_port: int, workdir: Path) -> tuple[subprocess.Popen, int]:
    port = find_free_port()
    config = workdir / "haproxy.cfg"
    config.write_text(
        textwrap.dedent(
            f"""
            global
                maxconn 4096
            defaults
                mode tcp
                timeout connect 5s
                timeout client 60s
                timeout server 60s
            listen postgres
                bind 127.0.0.1:{port}
                server pg 127.0.0.1:{upstream_port}
            """
        )
    )
    process = subprocess.Popen([binary, "-f", str(config)], stdout=subprocess.DEVNULL)
    wait_for_port(port)
    return process, port


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def with_port(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    return parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{port}").geturl()


def tps(dsn: str, seconds: int) -> float:
    out = run_pgbench(dsn, "-S", "-n", "-c", "8", "-j", "2", "-T", str(seconds))
    return float(next(line for line in out.splitlines() if "tps =" in line).split()[2])


def bulk_mb_per_s(port: int, total_bytes: int) -> float:
    """Read `total_bytes` from the source server on `port`; return MB/s (10^6 bytes)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        started = time.perf_counter()
        sock.sendall(f"{total_bytes}\n".encode())
        received = 0
        buffer = bytearray(4 << 20)
        while received < total_bytes:
            n = sock.recv_into(buffer)
            if not n:
                break
            received += n
        elapsed = time.perf_counter() - started
    assert received == total_bytes, (received, total_bytes)
    return total_bytes / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--bulk-mb", type=int, default=2000)
    parser.add_argument("--throttle-mbps", type=float, default=400.0)
    args = parser.parse_args()
    haproxy_binary = ensure_haproxy()

    with tempfile.TemporaryDirectory(prefix="bench-connector-") as home:
        workdir = Path(home)
        server = EmbeddedPostgres(workdir / "postgres")
        endpoint = server.start(max_connections=100)
        source_port = find_free_port()
        source = subprocess.Popen([sys.executable, "-c", _SOURCE, str(source_port)])
        children = []
        try:
            run_pgbench(endpoint.app_dsn, "-i", "-q", "-s", "1")
            haproxy, haproxy_port = start_haproxy(haproxy_binary, server.port(), workdir)
            children.append(haproxy)
            pg_connector = launch_connector(endpoint.app_dsn, NO_LIMITS, workdir / "pg.log")
            bulk_connector = launch_connector(
                f"postgresql://x@127.0.0.1:{source_port}/x", NO_LIMITS, workdir / "bulk.log"
            )
            for connector in (pg_connector, bulk_connector):
                connector.wait_ready(15)
                children.append(connector.pid)
            wait_for_port(source_port)
            bulk_port = urlsplit(bulk_connector.database_url).port
            results: dict[str, list[float]] = {}

            def record(name: str, value: float) -> float:
                results.setdefault(name, []).append(value)
                return value

            total = args.bulk_mb * 1_000_000
            throttled_total = int(args.throttle_mbps / 8 * 1e6 * args.seconds)
            for round_ in range(1, args.rounds + 1):
                direct = record("tps_direct", tps(endpoint.app_dsn, args.seconds))
                via_haproxy = record(
                    "tps_haproxy", tps(with_port(endpoint.app_dsn, haproxy_port), args.seconds)
                )
                via_connector = record(
                    "tps_connector", tps(pg_connector.database_url, args.seconds)
                )
                httpx.put(f"{bulk_connector.api_url}/config", json={"throughput_cap_mbps": None})
                bulk = record("bulk_connector", bulk_mb_per_s(bulk_port, total))
                bulk_direct = record("bulk_direct", bulk_mb_per_s(source_port, total))
                httpx.put(
                    f"{bulk_connector.api_url}/config",
                    json={"throughput_cap_mbps": args.throttle_mbps},
                )
                throttled = record("throttled", bulk_mb_per_s(bulk_port, throttled_total))
                print(
                    f"round {round_}: pgbench -S -c 8 TPS direct {direct:9.0f} | haproxy "
                    f"{via_haproxy:9.0f} | connector {via_connector:9.0f} || bulk MB/s "
                    f"connector {bulk:7.0f} | direct {bulk_direct:7.0f} || throttled "
                    f"{throttled:6.1f} MB/s (set {args.throttle_mbps / 8:.1f})",
                    flush=True,
                )
        finally:
            source.terminate()
            for child in children:
                if isinstance(child, int):
                    stop_pid(child)
                else:
                    child.terminate()
                    child.wait()
            server.stop()

    median = {name: statistics.median(values) for name, values in results.items()}
    set_rate = args.throttle_mbps / 8
    print(json.dumps({k: round(v, 1) for k, v in median.items()}))
    tps_vs_haproxy = median["tps_connector"] / median["tps_haproxy"]
    print(f"connector / haproxy TPS: {tps_vs_haproxy:.2f}x (goal >= 1.0)")
    print(f"connector / direct TPS:  {median['tps_connector'] / median['tps_direct']:.2f}x")
    bulk_gb = median["bulk_connector"] / 1000
    bulk_vs_direct = median["bulk_connector"] / median["bulk_direct"]
    print(f"unthrottled bulk: {bulk_gb:.2f} GB/s (goal >= 2), {bulk_vs_direct:.2f}x direct")
    print(f"throttled rate / set rate: {median['throttled'] / set_rate:.3f} (goal within 5 %)")


if __name__ == "__main__":
    main()
