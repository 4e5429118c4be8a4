"""Run the connector model: `python -m chaoskit.testbed.connector --upstream 127.0.0.1:5432 ...`.

Stops cleanly on SIGTERM or SIGINT (uvicorn's handlers), cutting every connection. A bad
argument (a port out of 1-65535, an upstream without its port, a --config that is not a
JSON object of valid settings) is one line naming it, and exit 2.
"""

from __future__ import annotations

import argparse
import json

import uvicorn

from chaoskit.kit.errors import shown
from chaoskit.testbed.connector.api import create_api
from chaoskit.testbed.connector.config import ConfigError, ConnectorConfig
from chaoskit.testbed.connector.proxy import ConnectorProxy


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a port: give 1 to 65535")
    return port


def _upstream(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        raise argparse.ArgumentTypeError(f"{shown(text)}: give host:port, e.g. 127.0.0.1:5432")
    return host, _port(port)


def _config(text: str) -> ConnectorConfig:
    try:
        changes = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error})") from None
    if not isinstance(changes, dict):
        raise argparse.ArgumentTypeError(
            f"{shown(changes)}: give a JSON object of settings, e.g. '{{\"instances\": 3}}'"
        )
    try:
        return ConnectorConfig().updated(changes)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


async def serve(args: argparse.Namespace, config: ConnectorConfig) -> None:
    host, port = args.upstream
    proxy = ConnectorProxy(host, port, config, listen_port=args.listen_port)
    await proxy.start()
    server = uvicorn.Server(
        uvicorn.Config(
            create_api(proxy),
            host="127.0.0.1",
            port=args.api_port,
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
    )
    try:
        await server.serve()
    finally:
        await proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m chaoskit.testbed.connector",
        description="The VPC connector model (a TCP proxy).",
    )
    parser.add_argument("--upstream", type=_upstream, required=True, help="PostgreSQL host:port")
    parser.add_argument("--listen-port", type=_port, required=True)
    parser.add_argument("--api-port", type=_port, required=True)
    parser.add_argument("--config", type=_config, default="{}", help="settings as a JSON object")
    args = parser.parse_args()  # a bad argument: one line naming it, exit 2
    import uvloop

    uvloop.run(serve(args, args.config))


if __name__ == "__main__":
    main()
