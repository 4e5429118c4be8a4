"""The connector proxy: admits each client connection through the limits, then pipes bytes.

Admission: the rate limit, then a capacity slot (wait or refuse), then a connection to
PostgreSQL. Piping: each direction asks `Throughput` and `Latency` when a chunk may
leave, keeps chunks in order, and pauses its source while the bandwidth budget or the
destination's buffer says so. When either side closes, the other is closed once its
pending bytes are out. `stop()` leaves no task and no socket behind.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import replace
from typing import Any

from chaoskit.testbed.connector.autoscaler import Autoscaler
from chaoskit.testbed.connector.capacity import Capacity, NoSlot
from chaoskit.testbed.connector.config import ConnectorConfig
from chaoskit.testbed.connector.events import EventLog
from chaoskit.testbed.connector.pacing import Latency, Throughput
from chaoskit.testbed.connector.rate import RateLimit

__all__ = ["ConnectorProxy"]

_TICK_S = 0.05
_RATE_WINDOW_S = 1.0


class _Pipe:
    """One direction of one connection."""

    def __init__(self, link: _Link, direction: str) -> None:
        self.link = link
        self.direction = direction
        self.source: asyncio.Transport | None = None
        self.dest: asyncio.Transport | None = None
        self._queue: deque[tuple[float, bytes]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._last_at = 0.0
        self._throttled_until = 0.0
        self._pauses: set[str] = set()
        self._finishing = False

    def send(self, data: bytes) -> None:
        self.link.proxy.bytes[self.direction] += len(data)
        self._schedule(data)

    def repace(self) -> None:
        """The pacing changed: schedule the chunks still waiting anew, from now, at the
        pacing in force, so that a reset connector does not hold them to an old delay."""
        waiting = [data for _, data in self._queue]
        self.cancel()
        self._last_at = self._throttled_until = 0.0
        if "throttle" in self._pauses:
            self.resume("throttle")
        for data in waiting:
            self._schedule(data)

    def _schedule(self, data: bytes) -> None:
        proxy = self.link.proxy
        latency_s, mbps = proxy.pacing
        if not latency_s and mbps is None and not self._queue and self.dest is not None:
            self.dest.write(data)  # no pacing set: the fast path
            return
        now = proxy.loop.time()
        at = max(proxy.latency.departure(now, latency_s), self._last_at)
        at = proxy.throughput.departure(self.direction, len(data), at, mbps)
        self._last_at = at
        if at <= now and not self._queue and self.dest is not None:
            self.dest.write(data)
            return
        self._queue.append((at, data))
        if at > now + latency_s:  # held back by bandwidth: stop reading meanwhile
            self._throttled_until = at
            self.pause("throttle")
        if self._timer is None:
            self._timer = proxy.loop.call_at(self._queue[0][0], self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self.dest is None:  # bytes that came before the upstream did: sent once it is
            return
        loop = self.link.proxy.loop
        now = loop.time()
        while self._queue and self._queue[0][0] <= now:
            self.dest.write(self._queue.popleft()[1])
        if self._queue:
            self._timer = loop.call_at(self._queue[0][0], self._flush)
        if "throttle" in self._pauses and now >= self._throttled_until:
            self.resume("throttle")
        if self._finishing and not self._queue:
            self.dest.close()

    def attach_dest(self, transport: asyncio.Transport) -> None:
        self.dest = transport
        if self._queue and self._timer is None:
            self._timer = self.link.proxy.loop.call_at(self._queue[0][0], self._flush)

    def attach_source(self, transport: asyncio.Transport) -> None:
        self.source = transport
        if self._pauses:
            transport.pause_reading()

    def pause(self, reason: str) -> None:
        if not self._pauses and self.source is not None:
            self.source.pause_reading()
        self._pauses.add(reason)

    def resume(self, reason: str) -> None:
        self._pauses.discard(reason)
        if not self._pauses and self.source is not None and not self.source.is_closing():
            self.source.resume_reading()

    def finish(self) -> None:
        """The source is done: close the destination once pending bytes are out."""
        self._finishing = True
        if not self._queue and self.dest is not None:
            self.dest.close()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()


class _Side(asyncio.Protocol):
    """The protocol of one socket (client or upstream) of a link."""

    def __init__(self, link: _Link, outgoing: _Pipe, incoming: _Pipe) -> None:
        self.link = link
        self.outgoing = outgoing  # bytes this socket receives go out through here
        self.incoming = incoming  # bytes for this socket come through here

    def data_received(self, data: bytes) -> None:
        self.outgoing.send(data)

    def eof_received(self) -> bool:
        self.outgoing.finish()
        return False

    def pause_writing(self) -> None:
        self.incoming.pause("destination_full")

    def resume_writing(self) -> None:
        self.incoming.resume("destination_full")

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.side_lost(self)


class _ClientSide(_Side):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link.client_connected(transport)


class _UpstreamSide(_Side):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link.upstream_connected(transport)


class _Link:
    """One client connection through the connector."""

    def __init__(self, proxy: ConnectorProxy) -> None:
        self.proxy = proxy
        self.up = _Pipe(self, "upstream")
        self.down = _Pipe(self, "downstream")
        self.client_side = _ClientSide(self, self.up, self.down)
        self.upstream_side = _UpstreamSide(self, self.down, self.up)
        self.client: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.admission: asyncio.Task[None] | None = None
        self.holds_slot = False
        self._lost: set[str] = set()

    def client_connected(self, transport: asyncio.BaseTransport) -> None:
        self.client = transport
        self.down.attach_dest(transport)
        self.up.pause("admission")  # nothing flows before admission
        self.up.attach_source(transport)
        self.proxy.accepted(self)

    def upstream_connected(self, transport: asyncio.BaseTransport) -> None:
        self.upstream = transport
        self.up.attach_dest(transport)
        self.down.attach_source(transport)

    def side_lost(self, side: _Side) -> None:
        name = "client" if side is self.client_side else "upstream"
        self._lost.add(name)
        if name == "client" and self.admission is not None:
            self.proxy.counts["abandoned"] += 1
            self.admission.cancel()  # the client gave up while it waited
        # what this side sent still goes out; then the other side is closed
        side.outgoing.finish()
        if self.upstream is None or self._lost == {"client", "upstream"}:
            self.done()

    def abort(self) -> None:
        for pipe in (self.up, self.down):
            pipe.cancel()
        for transport in (self.client, self.upstream):
            if transport is not None:
                transport.abort()

    def done(self) -> None:
        self.up.cancel()
        self.down.cancel()
        self.proxy.finished(self)


class ConnectorProxy:
    """The connector: listens on loopback, forwards to PostgreSQL through the limits."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        config: ConnectorConfig | None = None,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        self.listen_host, self.listen_port = listen_host, listen_port
        config = config or ConnectorConfig()
        config.validate()
        self.baseline = config
        self.events = EventLog()
        self.capacity = Capacity(config.capacity)
        self.rate = RateLimit()
        self.throughput = Throughput()
        self.latency = Latency()
        self.autoscaler = Autoscaler(self.events.record)
        self.counts: Counter[str] = Counter()
        self.bytes = {"upstream": 0, "downstream": 0}
        self._samples: deque[tuple[float, int, int]] = deque()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop
        self._apply(config)

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> int:
        """Listen; return the port."""
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(
            lambda: _Link(self).client_side, self.listen_host, self.listen_port
        )
        self.listen_port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._tick_forever())
        self.events.record("started", config=self.config.to_dict())
        return self.listen_port

    async def stop(self) -> None:
        """Stop listening, cut every connection, and wait until all is closed."""
        if self._server is None:
            return
        self._server.close()
        if self._ticker is not None:
            self._ticker.cancel()
        admissions = [link.admission for link in self._links if link.admission is not None]
        for link in list(self._links):
            if link.admission is not None:
                link.admission.cancel()
            link.abort()
        await asyncio.gather(self._ticker, *admissions, return_exceptions=True)
        await self._server.wait_closed()
        for _ in range(100):  # the transports deliver connection_lost on the next turns
            if not self._links:
                break
            await asyncio.sleep(0.01)
        self._server = None

    # --- admission -----------------------------------------------------------------

    def accepted(self, link: _Link) -> None:
        self._links.add(link)
        self.counts["accepted"] += 1
        link.admission = asyncio.ensure_future(self._admit(link))

    async def _admit(self, link: _Link) -> None:
        if await self.rate.acquire(lambda: self.config.rate_per_min):
            self.counts["rate_delayed"] += 1
        try:
            await self.capacity.acquire(self.config.overflow, self.config.queue_timeout_s)
        except NoSlot as refusal:
            self.counts[refusal.reason] += 1
            self.events.record(f"connection_{refusal.reason}", active=self.capacity.active)
            link.admission = None
            link.abort()
            return
        link.holds_slot = True
        try:
            await self.loop.create_connection(
                lambda: link.upstream_side, self.upstream_host, self.upstream_port
            )
        except OSError as error:
            self.counts["upstream_errors"] += 1
            self.events.record("upstream_error", error=type(error).__name__)
            link.admission = None
            link.abort()
            return
        link.admission = None
        self.counts["admitted"] += 1
        link.up.resume("admission")

    def finished(self, link: _Link) -> None:
        if link in self._links:
            self._links.discard(link)
            if link.holds_slot:
                link.holds_slot = False
                self.capacity.release()

    # --- control -------------------------------------------------------------------

    def reconfigure(self, changes: dict[str, Any]) -> ConnectorConfig:
        """Apply validated `changes` (ConfigError names a bad field; nothing changes then)."""
        config = self.config.updated(changes)
        self._apply(config)
        self.events.record("reconfigured", changes=changes)
        return config

    def reset(self) -> ConnectorConfig:
        """Back to the configuration the connector started with; counters are kept."""
        self._apply(self.baseline)
        self.autoscaler.reset()
        self.events.record("reset", config=self.baseline.to_dict())
        return self.baseline

    def _apply(self, config: ConnectorConfig) -> None:
        previous = getattr(self, "config", None)
        self.config = config
        self.pacing = (config.latency_s, config.throughput_mbps)
        self.capacity.resize(config.capacity)
        if previous is None:
            return
        # what waits at this moment waits by the new settings, not the old ones
        if previous.rate_per_min != config.rate_per_min:
            self.rate.changed()
        if (previous.latency_s, previous.throughput_mbps) != self.pacing:
            self.throughput.reset()
            for link in self._links:
                link.up.repace()
                link.down.repace()

    # --- observation ---------------------------------------------------------------

    def drift(self) -> list[str]:
        """What differs from the starting configuration: settings by name, and the
        autoscaler's clock when a scale-out was requested or made since the start or
        the last reset (`POST /reset` clears all of it)."""
        changed = [
            name
            for name, value in self.config.to_dict().items()
            if self.baseline.to_dict()[name] != value
        ]
        if self.autoscaler.status(self.loop.time(), self.config)["clock_running"]:
            changed.append("autoscaler_clock")
        return changed

    def demand(self) -> float:
        return (self.capacity.active + self.capacity.waiting) / self.config.capacity

    def snapshot(self) -> dict[str, Any]:
        config = self.config
        rates = self._byte_rates()
        return {
            "instances": config.instances,
            "capacity": config.capacity,
            "active": self.capacity.active,
            "waiting": self.capacity.waiting,
            "utilisation": round(self.capacity.active / config.capacity, 4),
            "demand": round(self.demand(), 4),
            "scale_out_pending": self.autoscaler.pending,
            "autoscaler": self.autoscaler.status(self.loop.time(), config),
            "throughput_mbps": config.throughput_mbps,
            "bytes_per_s": rates,
            "bytes_total": dict(self.bytes),
            "counts": {
                key: self.counts[key]
                for key in (
                    "accepted",
                    "admitted",
                    "refused",
                    "queue_timeout",
                    "rate_delayed",
                    "abandoned",
                    "upstream_errors",
                )
            },
            "config": config.to_dict(),
            "baseline": self.baseline.to_dict(),
            "drift": self.drift(),
            "recent_events": self.events.recent(),
        }

    def _byte_rates(self) -> dict[str, float]:
        if len(self._samples) < 2:
            return {"upstream": 0.0, "downstream": 0.0}
        (t0, up0, down0), (t1, up1, down1) = self._samples[0], self._samples[-1]
        span = max(t1 - t0, 1e-6)
        return {
            "upstream": round((up1 - up0) / span, 1),
            "downstream": round((down1 - down0) / span, 1),
        }

    async def _tick_forever(self) -> None:
        while True:
            now = self.loop.time()
            self._samples.append(
                (time.monotonic(), self.bytes["upstream"], self.bytes["downstream"])
            )
            while self._samples and self._samples[0][0] < self._samples[-1][0] - _RATE_WINDOW_S:
                self._samples.popleft()
            instances = self.autoscaler.tick(now, self.demand(), self.config)
            if instances != self.config.instances:
                self._apply(replace(self.config, instances=instances))
            await asyncio.sleep(_TICK_S)
