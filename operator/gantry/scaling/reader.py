"""Reads the stable's pods' Triton ``/metrics`` for the builtin scaler (the only I/O here).

Each read scrapes every given pod at once (bounded concurrency, a timeout per
pod, a cap on the body), parses with ``gantry.analysis.textformat`` and turns
the previous and current samples of each pod into its value
(``readings.pod_value``). Samples are kept in memory per ModelDeployment and
pod: a restarted operator needs one scrape interval before a rate metric has a
value again (its pods read as *warming*, the size held), which costs less than
writing counters into the status on every scrape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from gantry.analysis.scrape import SharedSession, read_capped
from gantry.analysis.textformat import parse
from gantry.api.spec import ScalingMetricType
from gantry.scaling.readings import PodValue, TritonSample, pod_value, triton_sample

DEFAULT_MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ScrapeTarget:
    """One serving pod: its name and its metrics URL."""

    name: str
    url: str


class MetricsReader:
    """Scrapes pods and keeps each pod's last sample, per ModelDeployment.

    Args:
        timeout: Seconds one pod's scrape may take.
        concurrency: Pods scraped at the same time.
        max_bytes: Largest metrics body read.
    """

    def __init__(
        self, *, timeout: float = 3.0, concurrency: int = 16, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        # One session for every scrape, made on first use inside the running loop.
        self._session = SharedSession()
        self._timeout = timeout
        self._gate = asyncio.Semaphore(concurrency)
        self._max_bytes = max_bytes
        # Bounded by the ModelDeployments served and their live pods: pods that
        # were not scraped this time are dropped on every read, ``forget`` drops a CR.
        self._samples: dict[str, dict[str, TritonSample]] = {}
        self._last_read: dict[str, datetime] = {}

    async def close(self) -> None:
        await self._session.close()

    def forget(self, key: str) -> None:
        self._samples.pop(key, None)
        self._last_read.pop(key, None)

    def due(self, key: str, now: datetime, interval: float) -> bool:
        """Whether the pods of ``key`` were last read ``interval`` seconds ago or more."""
        last = self._last_read.get(key)
        return last is None or (now - last).total_seconds() >= interval

    async def _sample(self, target: ScrapeTarget, model: str, now: datetime) -> TritonSample | str:
        async with self._gate:
            try:
                async with asyncio.timeout(self._timeout):
                    text = await read_capped(self._session(), target.url, max_bytes=self._max_bytes)
            except TimeoutError:
                return f"{target.url} gave no answer within {self._timeout:g}s"
            except (aiohttp.ClientError, ValueError) as exc:
                return f"{target.url}: {exc or type(exc).__name__}"
        return triton_sample(parse(text).samples, model=model, now=now)

    async def read(
        self,
        key: str,
        pods: Sequence[ScrapeTarget],
        *,
        model: str,
        metric: ScalingMetricType,
        now: datetime,
    ) -> Mapping[str, PodValue]:
        """Each pod's value of ``metric`` since its previous read, by pod name."""
        results = await asyncio.gather(*(self._sample(p, model, now) for p in pods))
        before = self._samples.get(key, {})
        kept: dict[str, TritonSample] = {}
        values: dict[str, PodValue] = {}
        for pod, got in zip(pods, results, strict=True):
            if isinstance(got, str):
                values[pod.name] = PodValue(problem=got)
                if pod.name in before:  # the next success measures from the last one
                    kept[pod.name] = before[pod.name]
                continue
            values[pod.name] = pod_value(metric, before.get(pod.name), got)
            kept[pod.name] = got
        self._samples[key] = kept
        self._last_read[key] = now
        return values
