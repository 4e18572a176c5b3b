"""The scrape provider: read the canary pods' Triton ``/metrics`` directly.

No Prometheus needed: on every measurement the provider fetches each canary
pod's metrics endpoint (bounded concurrency, a total timeout per pod, a cap on
the body size), sums the model's counters and returns the increase since the
previous measurement of the same ModelDeployment (see ``counters`` for the
delta rules and why the first measurement after a restart is only "warming").

Pods that fail to answer keep their previous counters in the snapshot, so their
requests are counted on the next successful scrape instead of being lost or
counted twice. Only when no pod answers is the measurement an Error.

HTTP goes through aiohttp, the stack the rest of the operator (kopf, the Kubernetes
client, the model probes) already runs on. :class:`SharedSession` and :func:`read_capped`
are shared with the Prometheus provider and the autoscaler's metrics reader.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from gantry.analysis.counters import CounterSnapshot, PodCounters, measure_between, pod_counters
from gantry.analysis.measurement import AnalysisTarget, Measurement, PodEndpoint
from gantry.analysis.textformat import parse
from gantry.api.spec import AnalysisSpec

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_PODS = 256


class SharedSession:
    """One ``aiohttp.ClientSession`` for every request of its owner: connections are reused.

    A session binds to the event loop that makes it, so one made here is made on first
    use, inside the running loop, never in a constructor. A session handed in belongs to
    whoever made it; :meth:`close` closes only one made here.

    Args:
        session: A session to use instead of making one.
    """

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owned = session is None

    def __call__(self) -> aiohttp.ClientSession:
        """The session, made now if this is its first use."""
        if self._session is None:
            # No trust_env: pod IPs and an in-cluster Prometheus are never reached through
            # an egress proxy, and aiohttp's trust_env reads ~/.netrc on a thread per request.
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the session if it was made here (a later use makes a new one)."""
        if self._owned and self._session is not None:
            session, self._session = self._session, None
            await session.close()


def session_of(client: aiohttp.ClientSession | SharedSession | None) -> SharedSession:
    """The :class:`SharedSession` behind a provider's ``client`` argument."""
    return client if isinstance(client, SharedSession) else SharedSession(client)


async def read_capped(session: aiohttp.ClientSession, url: str, *, max_bytes: int) -> str:
    """GET ``url`` and return its body as text, refusing a body over ``max_bytes``.

    The caller bounds it with ``asyncio.timeout`` (one deadline for the whole read, body
    included).

    Raises:
        aiohttp.ClientError: the request failed, or the answer is not a 2xx (redirects
            are not followed: a metrics endpoint that redirects is misconfigured).
        TimeoutError: one of aiohttp's own timeouts (the session's) fired.
        ValueError: the body is larger than ``max_bytes``.
    """
    async with session.get(url, allow_redirects=False) as response:
        if not 200 <= response.status < 300:
            raise aiohttp.ClientResponseError(
                response.request_info,
                response.history,
                status=response.status,
                message=response.reason or "",
            )
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > max_bytes:
                raise ValueError(f"metrics body larger than {max_bytes} bytes")
    return body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _PodResult:
    pod: PodEndpoint
    counters: PodCounters | None = None
    error: str | None = None


class ScrapeProvider:
    """Measures a canary by scraping its pods; keeps one counter snapshot per ModelDeployment.

    Args:
        client: An ``aiohttp.ClientSession`` (or :class:`SharedSession`) to share, closed
            by its owner; without one the provider makes its own on first use, closed by
            :meth:`close`.
        timeout: Seconds one pod's whole scrape may take.
        concurrency: Pods scraped at the same time.
        max_bytes: Largest metrics body read from a pod.
        max_pods: Pods scraped per measurement at most (the rest are ignored).
    """

    def __init__(
        self,
        *,
        client: aiohttp.ClientSession | SharedSession | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pods: int = DEFAULT_MAX_PODS,
    ) -> None:
        self._owns_client = client is None
        self._session = session_of(client)
        self._timeout = timeout
        self._semaphore = asyncio.Semaphore(concurrency)
        self._max_bytes = max_bytes
        self._max_pods = max_pods
        # One entry per ModelDeployment (bounded by the CRs the operator serves);
        # ``forget`` drops it when the CR goes away.
        self._snapshots: dict[str, CounterSnapshot] = {}

    async def close(self) -> None:
        """Close the HTTP client if the provider made it."""
        if self._owns_client:
            await self._session.close()

    def forget(self, key: str) -> None:
        """Drop the snapshot of a ModelDeployment (``AnalysisTarget.key``)."""
        self._snapshots.pop(key, None)

    def snapshot(self, key: str) -> CounterSnapshot | None:
        """The last snapshot kept for a ModelDeployment."""
        return self._snapshots.get(key)

    async def _scrape(self, pod: PodEndpoint, target: AnalysisTarget) -> _PodResult:
        async with self._semaphore:
            try:
                # aiohttp's own timeouts are TimeoutErrors too: both read as "no answer".
                async with asyncio.timeout(self._timeout):
                    text = await read_capped(self._session(), pod.url, max_bytes=self._max_bytes)
            except TimeoutError:
                return _PodResult(pod, error=f"{pod.name}: no answer within {self._timeout:g}s")
            except (aiohttp.ClientError, ValueError) as exc:
                return _PodResult(pod, error=f"{pod.name}: {exc or type(exc).__name__}")
        counters = pod_counters(
            parse(text).samples, model=target.model, version=target.model_version
        )
        return _PodResult(pod, counters=counters)

    async def measure(
        self, target: AnalysisTarget, spec: AnalysisSpec, now: datetime
    ) -> Measurement:
        """Scrape the canary pods and return the increase since the last measurement.

        Args:
            target: The canary; ``target.pods`` lists the endpoints to scrape.
            spec: The analysis spec (for the latency quantile).
            now: The measurement time (aware).

        Returns:
            The interval's measurement; warming when no previous snapshot exists;
            an Error measurement when no pod could be scraped.
        """
        quantile = spec.latency.quantile if spec.latency else None
        pods = target.pods[: self._max_pods]
        if not pods:
            return Measurement(
                time=now, revision=target.revision, source="scrape: the canary has no ready pods"
            )
        results = await asyncio.gather(*(self._scrape(p, target) for p in pods))
        errors = [r.error for r in results if r.error]
        if len(errors) == len(results):
            # Keep the previous snapshot: the next good scrape measures from it.
            return Measurement(
                time=now,
                revision=target.revision,
                source="scrape",
                error=f"no canary pod could be scraped ({len(errors)}): {errors[0]}",
            )
        previous = self._snapshots.get(target.key)
        if previous is not None and previous.revision != target.revision:
            previous = None
        counters = {r.pod.name: r.counters for r in results if r.counters is not None}
        if previous is not None:
            for r in results:
                if r.error and r.pod.name in previous.pods:
                    counters[r.pod.name] = previous.pods[r.pod.name]
        current = CounterSnapshot(time=now, revision=target.revision, pods=counters)
        self._snapshots[target.key] = current
        source = f"scrape of {len(pods)} pod(s)"
        if errors:
            source += f"; {len(errors)} did not answer ({errors[0]})"
        return measure_between(
            previous,
            current,
            model=target.model,
            version=target.model_version,
            quantile=quantile,
            source=source,
        )
