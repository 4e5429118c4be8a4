"""Run the connector model: `python -m chaoskit.testbed.connector --upstream 127.0.0.1:5432 ...`.

Stops cleanly on SIGTERM or SIGINT (uvicorn's handlers), cutting every connection.
"""

from __future__ import annotations

import argparse
import json
import sys

import uvicorn

from chaoskit.testbed.connector.api import create_api
from chaoskit.testbed.connector.config import ConfigError, ConnectorConfig
from chaoskit.testbed.connector.proxy import ConnectorProxy


async def serve(args: argparse.Namespace, config: ConnectorConfig) -> None:
    host, _, port = args.upstream.rpartition(":")
    proxy = ConnectorProxy(host, int(port), config, listen_port=args.listen_port)
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
    parser = argparse.ArgumentParser(description="The VPC connector model (a TCP proxy).")
    parser.add_argument("--upstream", required=True, help="PostgreSQL host:port")
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--config", default="{}", help="settings as a JSON object")
    args = parser.parse_args()
    try:
        config = ConnectorConfig().updated(json.loads(args.config))
    except (ConfigError, ValueError) as error:
        print(f"error: --config {error}", file=sys.stderr)
        sys.exit(2)
    import uvloop

    uvloop.run(serve(args, config))


if __name__ == "__main__":
    main()
