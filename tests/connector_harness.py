"""A real connector proxy on its own event loop thread, for tests that drive it directly."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from chaoskit.testbed.connector.config import ConnectorConfig
from chaoskit.testbed.connector.launch import through_connector
from chaoskit.testbed.connector.proxy import ConnectorProxy
from chaoskit.testbed.postgres import PostgresEndpoint

T = TypeVar("T")


class ProxyThread:
    def __init__(self, postgres: PostgresEndpoint, config: ConnectorConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        host_port = postgres.app_dsn.rsplit("@", 1)[1].split("/")[0]
        host, port = host_port.split(":")
        self.proxy = ConnectorProxy(host, int(port), config)
        self.port = self.run(self.proxy.start())
        self.app_dsn = through_connector(postgres.app_dsn, self.port)
        self.stray_tasks: list[asyncio.Task] = []

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def call(self, function: Callable[[], T]) -> T:
        async def on_loop() -> T:
            return function()

        return self.run(on_loop())

    def state(self) -> dict[str, Any]:
        return self.call(self.proxy.snapshot)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.run(self.proxy.stop())

        async def leftovers() -> list[asyncio.Task]:
            return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

        self.stray_tasks = self.run(leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
