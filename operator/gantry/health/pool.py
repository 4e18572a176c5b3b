"""Model-health probes at scale: one pooled session, a global rate bound, cached answers.

At a thousand ModelDeployments the probes are the operator's biggest source of
traffic, and each one used to open a fresh HTTP client (a TCP handshake or
three per pod per reconcile). :class:`ProbePool` changes three things:

* **One session for every endpoint**: its connector keeps a few connections per
  pod alive between probes (aiohttp's keep-alive), so a steady pod is asked over
  a kept connection, and a thousand pods cost a thousand sockets, not a
  thousand sessions. Each endpoint gets a light client bound to that session,
  forgotten (with its cached answer) after ``idle_close`` seconds without use.
* **A bound across all objects**: at most ``concurrency`` probes in flight and
  ``rate`` probes started per second (a token bucket), however many
  reconciles run at once.
* **Answers reused while nothing changed**: a pod whose model answered ready is
  asked again only after ``ready_interval`` seconds or as soon as its
  ``revision`` (the caller's summary of the pod: uid, readiness) changes. A
  pod that is not ready is asked every time: that is where news comes from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from gantry.health.probe import (
    Client,
    ModelProbe,
    ProbeReason,
    new_client,
    new_session,
    probe_endpoint,
)

__all__ = ["PoolStats", "ProbePool", "ProbeTarget"]


@dataclass(frozen=True)
class ProbeTarget:
    """One endpoint to probe, and what, when it changes, makes a cached answer stale."""

    endpoint: str
    revision: str = ""


@dataclass
class PoolStats:
    sent: int = 0  # probes actually sent
    reused: int = 0  # answers served from the cache
    clients_opened: int = 0  # endpoints bound to the session
    clients_closed: int = 0  # bindings dropped (idle, or the pool closed)


@dataclass
class _Cached:
    revision: str
    model: str
    version: str | None
    probe: ModelProbe
    at: float


def refill(tokens: float, elapsed: float, *, rate: float, burst: float) -> float:
    """Tokens in a bucket after ``elapsed`` seconds (never more than ``burst``)."""
    return min(burst, tokens + max(0.0, elapsed) * rate)


def wait_for_token(tokens: float, *, rate: float) -> float:
    """Seconds until one whole token is there (0 when one already is)."""
    return 0.0 if tokens >= 1 else (1 - tokens) / rate


class _TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(1, burst))
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:  # FIFO: waiters are served in arrival order
            while True:
                now = time.monotonic()
                elapsed, self._stamp = now - self._stamp, now
                self._tokens = refill(self._tokens, elapsed, rate=self.rate, burst=self.burst)
                wait = wait_for_token(self._tokens, rate=self.rate)
                if wait == 0:
                    self._tokens -= 1
                    return
                await asyncio.sleep(wait)


@dataclass
class ProbePool:
    """Probes for every reconcile of one operator (see the module docstring)."""

    timeout: float = 2.0
    concurrency: int = 16
    rate: float = 50.0
    ready_interval: float = 30.0
    idle_close: float = 300.0
    headers: Mapping[str, str] | None = None
    stats: PoolStats = field(default_factory=PoolStats)

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.rate <= 0:
            raise ValueError("concurrency must be >= 1 and rate > 0")
        self._gate = asyncio.Semaphore(self.concurrency)
        self._bucket = _TokenBucket(self.rate, self.concurrency)
        self._session: aiohttp.ClientSession | None = None  # made in the loop, on first use
        self._clients: dict[str, Client] = {}
        self._used: dict[str, float] = {}
        self._cache: dict[str, _Cached] = {}

    async def probe(
        self, targets: Sequence[ProbeTarget], model: str, version: str | None
    ) -> list[ModelProbe]:
        """One answer per target, in order; cached where still good."""
        await self._sweep()
        return list(await asyncio.gather(*(self._one(t, model, version) for t in targets)))

    async def _one(self, target: ProbeTarget, model: str, version: str | None) -> ModelProbe:
        now = time.monotonic()
        cached = self._cache.get(target.endpoint)
        if (
            cached is not None
            and cached.revision == target.revision
            and cached.model == model
            and cached.version == version
            and cached.probe.reason is ProbeReason.MODEL_READY
            and now - cached.at < self.ready_interval
        ):
            self.stats.reused += 1
            return cached.probe
        async with self._gate:
            await self._bucket.take()
            self.stats.sent += 1
            self._used[target.endpoint] = time.monotonic()
            result = await probe_endpoint(
                target.endpoint,
                model,
                version,
                timeout=self.timeout,
                headers=self.headers,
                client=self._client_for(target.endpoint),
            )
        self._cache[target.endpoint] = _Cached(
            target.revision, model, version, result, time.monotonic()
        )
        return result

    def _client_for(self, endpoint: str) -> Client:
        client = self._clients.get(endpoint)
        if client is None:
            if self._session is None:
                self._session = new_session()
            client = new_client(endpoint, timeout=self.timeout, session=self._session)
            self._clients[endpoint] = client
            self.stats.clients_opened += 1
        return client

    async def _sweep(self) -> None:
        """Drop clients and answers of endpoints not probed for ``idle_close`` s."""
        cutoff = time.monotonic() - self.idle_close
        for endpoint in [e for e, used in self._used.items() if used < cutoff]:
            await self._drop(endpoint)

    async def _drop(self, endpoint: str) -> None:
        self._used.pop(endpoint, None)
        self._cache.pop(endpoint, None)
        client = self._clients.pop(endpoint, None)
        if client is not None:
            self.stats.clients_closed += 1
            await client.close()

    async def close(self) -> None:
        """Drop every client and close the session (a later probe makes a new one)."""
        for endpoint in list(self._clients):
            await self._drop(endpoint)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
