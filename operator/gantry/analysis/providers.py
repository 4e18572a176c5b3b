"""Choosing the provider a ModelDeployment asks for (``analysis.provider``).

:class:`AnalysisProviders` is itself a :class:`~gantry.analysis.measurement.Provider`:
the operator keeps one in its memo and calls ``measure`` for every canary; it
dispatches on ``spec.provider.type`` and reuses one Prometheus provider per address.
Every provider sends through one aiohttp session, made on first use.
"""

from __future__ import annotations

from datetime import datetime

import aiohttp

from gantry.analysis.measurement import AnalysisTarget, Measurement
from gantry.analysis.prometheus import PrometheusProvider
from gantry.analysis.scrape import ScrapeProvider, SharedSession
from gantry.api.spec import AnalysisProviderType, AnalysisSpec

MAX_PROMETHEUS_ADDRESSES = 64


class AnalysisProviders:
    """Every provider the operator offers, behind one ``measure``.

    Args:
        client: An ``aiohttp.ClientSession`` shared by every provider (closed by its
            owner); without one a session is made here on first use and closed by
            :meth:`close`.
        default_prometheus: Prometheus URL for specs that name no ``provider.address``.
        scrape_timeout: Seconds one pod's scrape may take.
        query_timeout: Seconds one PromQL query may take.
    """

    def __init__(
        self,
        *,
        client: aiohttp.ClientSession | None = None,
        default_prometheus: str | None = None,
        scrape_timeout: float = 5.0,
        query_timeout: float = 10.0,
    ) -> None:
        # Made lazily: a session binds to the running loop, and this runs before one may.
        self._session = SharedSession(client)
        self._default_prometheus = default_prometheus
        self._query_timeout = query_timeout
        self.scrape = ScrapeProvider(client=self._session, timeout=scrape_timeout)
        self._prometheus: dict[str, PrometheusProvider] = {}

    async def close(self) -> None:
        """Close the HTTP session if it was made here."""
        await self._session.close()

    def _prometheus_for(self, address: str) -> PrometheusProvider:
        provider = self._prometheus.get(address)
        if provider is None:
            if len(self._prometheus) >= MAX_PROMETHEUS_ADDRESSES:
                # Addresses come from user specs: keep the cache bounded.
                self._prometheus.pop(next(iter(self._prometheus)))
            provider = PrometheusProvider(
                address, client=self._session, timeout=self._query_timeout
            )
            self._prometheus[address] = provider
        return provider

    def forget(self, key: str) -> None:
        """Drop per-ModelDeployment state (call when the CR is deleted)."""
        self.scrape.forget(key)

    async def measure(
        self, target: AnalysisTarget, spec: AnalysisSpec, now: datetime
    ) -> Measurement:
        """Measure with the provider ``spec.provider`` names."""
        if spec.provider.type is AnalysisProviderType.SCRAPE:
            return await self.scrape.measure(target, spec, now)
        address = spec.provider.address or self._default_prometheus
        if not address:
            return Measurement(
                time=now,
                revision=target.revision,
                source="prometheus",
                error="no Prometheus address: set analysis.provider.address or the "
                "operator's default Prometheus URL",
            )
        return await self._prometheus_for(address).measure(target, spec, now)
