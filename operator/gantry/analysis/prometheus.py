"""The Prometheus provider: instant PromQL queries against ``/api/v1/query``.

Every value is the result of one instant query evaluated at ``now``:

* an empty vector is **no data** (None), never 0: Prometheus returns nothing
  for an unknown model or a selector that matches no pod, and treating that as
  0 requests or 0 errors would pass a canary nobody measured;
* NaN (e.g. 0/0) is no data too;
* a query that returns several series is an error for custom checks (the check
  must aggregate, e.g. ``sum(...)``); built-in queries always aggregate.

HTTP problems never raise: a failed request becomes an error reading, and a
failed request-count query makes the whole measurement an Error (without the
request count no interval can be judged).
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime
from typing import Any

import aiohttp

from gantry.analysis.measurement import AnalysisTarget, Measurement, Reading
from gantry.analysis.promql import builtin_queries, duration, render_custom
from gantry.analysis.scrape import SharedSession, session_of
from gantry.api.spec import AnalysisSpec

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CONCURRENCY = 4


class QueryError(Exception):
    """A query Prometheus refused or could not answer."""


def parse_result(payload: Any) -> float | None:
    """The single value of an instant-query response body.

    Returns:
        The value, or None for an empty vector or NaN.

    Raises:
        QueryError: the body is an error, malformed, or holds several series.
    """
    if not isinstance(payload, dict):
        raise QueryError("response is not a JSON object")
    if payload.get("status") != "success":
        raise QueryError(f"{payload.get('errorType', 'error')}: {payload.get('error', payload)}")
    data = payload.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        raw = result[1]
    elif kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            raise QueryError(f"query returned {len(result)} series; aggregate it to one")
        raw = result[0].get("value", [None, None])[1]
    else:
        raise QueryError(f"unsupported result type {kind!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"bad sample value {raw!r}") from exc
    return None if math.isnan(value) else value


class PrometheusProvider:
    """Measures a canary with PromQL against one Prometheus server.

    Args:
        address: Base URL of the Prometheus server, e.g. ``http://prometheus:9090``.
        client: An ``aiohttp.ClientSession`` (or ``SharedSession``) to share, closed by its
            owner; without one the provider makes its own on first use, closed by
            :meth:`close`.
        timeout: Seconds one query may take (also sent as the query ``timeout``).
        concurrency: Queries in flight at once.
    """

    def __init__(
        self,
        address: str,
        *,
        client: aiohttp.ClientSession | SharedSession | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self._owns_client = client is None
        self._session = session_of(client)
        self._url = address.rstrip("/") + "/api/v1/query"
        self._address = address
        self._timeout = timeout
        self._semaphore = asyncio.Semaphore(concurrency)

    async def close(self) -> None:
        """Close the HTTP client if the provider made it."""
        if self._owns_client:
            await self._session.close()

    async def _get(self, params: dict[str, str]) -> tuple[int, bytes]:
        """One query's status and body; redirects are answers (not followed), as before."""
        async with self._session().get(self._url, params=params, allow_redirects=False) as response:
            return response.status, await response.read()

    async def query(self, promql: str, now: datetime) -> Reading:
        """Evaluate one instant query at ``now``; errors come back in the reading."""
        params = {
            "query": promql,
            "time": f"{now.timestamp():.3f}",
            "timeout": duration(self._timeout),
        }
        async with self._semaphore:
            try:
                # aiohttp's own timeouts are TimeoutErrors too: both read as "no answer".
                async with asyncio.timeout(self._timeout):
                    status, body = await self._get(params)
            except TimeoutError:
                return Reading(None, query=promql, error=f"no answer within {self._timeout:g}s")
            except aiohttp.ClientError as exc:
                error = f"{self._address} unreachable: {exc or type(exc).__name__}"
                return Reading(None, query=promql, error=error)
        try:
            # Prometheus answers errors (400, 422, 503) with a JSON body that says why.
            payload = json.loads(body)
        except ValueError:
            error = f"HTTP {status} from {self._address}: body is not JSON"
            return Reading(None, query=promql, error=error)
        try:
            return Reading(parse_result(payload), query=promql)
        except QueryError as exc:
            return Reading(None, query=promql, error=str(exc))

    async def measure(
        self, target: AnalysisTarget, spec: AnalysisSpec, now: datetime
    ) -> Measurement:
        """Run the interval's queries and assemble the measurement.

        Args:
            target: The canary.
            spec: The analysis spec (interval, latency quantile, custom checks).
            now: Evaluation time (aware); the interval is ``[now - interval, now]``.

        Returns:
            The measurement; an Error measurement when the request count could not
            be queried.
        """
        q = builtin_queries(target, spec)
        custom = {c.name: render_custom(c, target, spec) for c in spec.custom}
        queries = [q.successes, q.failures, q.duration_us]
        if q.quantile_us is not None:
            queries.append(q.quantile_us)
        queries.extend(custom.values())
        readings = await asyncio.gather(*(self.query(text, now) for text in queries))
        successes, failures, duration_us = readings[:3]
        source = f"prometheus {self._address}"
        if successes.error is not None:
            return Measurement(
                time=now, revision=target.revision, source=source, error=successes.error
            )
        mean = None
        if successes.value and duration_us.value is not None:
            mean = duration_us.value / successes.value / 1000.0
        rest = list(readings[3:])
        quantile = None
        if q.quantile_us is not None:
            raw = rest.pop(0)
            value = raw.value / 1000.0 if raw.value is not None else None
            quantile = Reading(value, query=raw.query, error=raw.error)
        return Measurement(
            time=now,
            revision=target.revision,
            source=source,
            successes=successes,
            # No failure series while successes have data means no failures yet.
            failures=failures,
            latency_mean_ms=Reading(mean, query=duration_us.query, error=duration_us.error),
            latency_quantile_ms=quantile,
            custom=dict(zip(custom, rest, strict=True)),
        )
