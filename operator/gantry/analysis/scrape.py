"""The scrape provider: read the canary pods' Triton ``/metrics`` directly.

No Prometheus needed: on every measurement the provider fetches each canary
pod's metrics endpoint (bounded concurrency, a total timeout per pod, a cap on
the body size), sums the model's counters and returns the increase since the
previous measurement of the same ModelDeployment (see ``counters`` for the
delta rules and why the first measurement after a restart is only "warming").

Pods that fail to answer keep their previous counters in the snapshot, so their
requests are counted on the next successful scrape instead of being lost or
counted twice. Only when no pod answers is the measurement an Error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import httpx

from gantry.analysis.counters import CounterSnapshot, PodCounters, measure_between, pod_counters
from gantry.analysis.measurement import AnalysisTarget, Measurement, PodEndpoint
from gantry.analysis.textformat import parse
from gantry.api.spec import AnalysisSpec

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_PODS = 256


@dataclass(frozen=True)
class _PodResult:
    pod: PodEndpoint
    counters: PodCounters | None = None
    error: str | None = None


class ScrapeProvider:
    """Measures a canary by scraping its pods; keeps one counter snapshot per ModelDeployment.

    Args:
        client: An ``httpx.AsyncClient`` to share (closed by its owner); without one
            the provider makes its own, closed by :meth:`close`.
        timeout: Seconds one pod's whole scrape may take.
        concurrency: Pods scraped at the same time.
        max_bytes: Largest metrics body read from a pod.
        max_pods: Pods scraped per measurement at most (the rest are ignored).
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pods: int = DEFAULT_MAX_PODS,
    ) -> None:
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
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
            await self._client.aclose()

    def forget(self, key: str) -> None:
        """Drop the snapshot of a ModelDeployment (``AnalysisTarget.key``)."""
        self._snapshots.pop(key, None)

    def snapshot(self, key: str) -> CounterSnapshot | None:
        """The last snapshot kept for a ModelDeployment."""
        return self._snapshots.get(key)

    async def _read(self, url: str) -> str:
        async with self._client.stream("GET", url) as response:
            response.raise_for_status()
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise ValueError(f"metrics body larger than {self._max_bytes} bytes")
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")

    async def _scrape(self, pod: PodEndpoint, target: AnalysisTarget) -> _PodResult:
        async with self._semaphore:
            try:
                async with asyncio.timeout(self._timeout):
                    text = await self._read(pod.url)
            except TimeoutError:
                return _PodResult(pod, error=f"{pod.name}: no answer within {self._timeout:g}s")
            except (httpx.HTTPError, ValueError) as exc:
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
