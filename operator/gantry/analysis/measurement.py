"""What an analysis provider measures, and the Protocol providers implement (pure types).

The rollout state machine consumes a :class:`Measurement`; it never talks to a
provider itself. Everything here is plain data so that ``gantry.rollout`` can
import it without pulling in an HTTP client.

Counting rules shared by every provider:

* ``successes`` and ``failures`` are request counts *within one interval*
  (counter increases, never raw cumulative counter values).
* ``None`` always means "no data" (no series, empty vector, NaN); it is never
  turned into 0, because a 0 would let an idle or broken canary look healthy.
  The one exception is the failure counter when successes do have data: Triton
  only exposes ``nv_inference_request_failure{reason=...}`` series once a
  failure of that reason happened, so "no failure series" means no failures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gantry.api.spec import AnalysisSpec


@dataclass(frozen=True)
class PodEndpoint:
    """One canary pod's Triton metrics endpoint (for the scrape provider).

    Attributes:
        name: Pod name; counter snapshots are keyed by it (pod IPs get reused).
        url: Full metrics URL, e.g. ``http://10.1.2.3:8002/metrics``.
    """

    name: str
    url: str


@dataclass(frozen=True)
class AnalysisTarget:
    """The canary a measurement is about.

    Attributes:
        namespace: Namespace of the ModelDeployment.
        name: ModelDeployment name (providers keep per-CR state under ``key``).
        deployment: The canary Deployment; its pods are ``<deployment>-<rs>-<pod>``.
        revision: The canary's revision; a measurement is only used for this revision.
        model: Triton model name (the ``model`` label).
        model_version: Triton model version (the ``version`` label); None for all.
        pods: Canary pods to scrape (scrape provider only; the shell lists them).
        selector: PromQL label matchers that select the canary's series, overriding
            the default ``namespace``/``pod`` regex (e.g. when the scrape config
            attaches the revision label): ``revision="abc",namespace="ml"``.
    """

    namespace: str
    name: str
    deployment: str
    revision: str
    model: str
    model_version: str | None = None
    pods: tuple[PodEndpoint, ...] = ()
    selector: str | None = None

    @property
    def key(self) -> str:
        """Identity of the ModelDeployment, for per-CR provider state."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Reading:
    """One measured quantity and how it was obtained.

    Attributes:
        value: The value over the interval; None when there was no data.
        query: The PromQL query or scrape description behind the value.
        error: Why the value could not be obtained (query error, not "no data").
    """

    value: float | None
    query: str = ""
    error: str | None = None


NO_DATA = Reading(None)


@dataclass(frozen=True)
class Measurement:
    """One analysis interval of the canary, as measured by a provider.

    Attributes:
        time: When the measurement was taken (the end of the interval).
        revision: The canary revision measured; stale measurements are ignored.
        source: Human-readable origin, e.g. ``prometheus http://prom:9090``.
        successes: Successful requests in the interval.
        failures: Failed requests in the interval.
        latency_mean_ms: Mean request latency of the successful requests.
        latency_quantile_ms: Latency quantile (``latency.quantile``), when requested.
        custom: Custom check name -> its value.
        error: The provider could not measure at all (unreachable, every pod failed):
            the interval's verdict is Error.
        warming: No previous counter snapshot existed (first scrape, or the operator
            restarted): this measurement only starts an interval and has no verdict.
    """

    time: datetime
    revision: str
    source: str = ""
    successes: Reading = NO_DATA
    failures: Reading = NO_DATA
    latency_mean_ms: Reading = NO_DATA
    latency_quantile_ms: Reading | None = None
    custom: Mapping[str, Reading] = field(default_factory=dict)
    error: str | None = None
    warming: bool = False

    @property
    def requests(self) -> float | None:
        """Requests in the interval (successes + failures); None when there is no data."""
        if self.successes.value is None:
            return None
        return self.successes.value + (self.failures.value or 0.0)


class Provider(Protocol):
    """Something that measures a canary over the last analysis interval.

    Implementations never raise for measurement problems: an unreachable backend
    comes back as ``Measurement(error=...)`` so the rollout can count it.
    """

    async def measure(
        self, target: AnalysisTarget, spec: AnalysisSpec, now: datetime
    ) -> Measurement: ...
