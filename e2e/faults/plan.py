"""What the fault proxy does to one request: pure decisions from a seeded draw.

The proxy (``e2e.faults.proxy``) only orders the steps; which fault a request gets, how long a
delay lasts and when a watch stream is cut are decided here from numbers drawn by one seeded
``random.Random``, so a run is reproducible up to the order in which requests arrive.

Kinds of fault, each at its own rate (a probability per request, all summing to at most 1):

=================  ==================================================================
``http_429``       429 Too Many Requests with ``Retry-After``, nothing forwarded
``http_500``       500 Internal Server Error, nothing forwarded
``http_503``       503 Service Unavailable, nothing forwarded
``http_409``       409 Conflict, writes only, nothing forwarded
``reset``          the connection is reset before the request is forwarded
``reset_after``    the request is forwarded, then the connection is reset: the write
                   may have happened and the client never hears of it
``delay``          the answer is held back for a random time up to ``max_delay_s``
``watch_cut``      a watch stream is ended after a random number of events or seconds
=================  ==================================================================
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qs


class Fault(StrEnum):
    HTTP_429 = "http_429"
    HTTP_500 = "http_500"
    HTTP_503 = "http_503"
    HTTP_409 = "http_409"
    RESET = "reset"
    RESET_AFTER = "reset_after"
    DELAY = "delay"
    WATCH_CUT = "watch_cut"


#: Faults that answer in place of the API server (status code of each).
STATUS_FAULTS: Mapping[Fault, int] = {
    Fault.HTTP_429: 429,
    Fault.HTTP_500: 500,
    Fault.HTTP_503: 503,
    Fault.HTTP_409: 409,
}
WRITE_ONLY = frozenset({Fault.HTTP_409, Fault.RESET_AFTER})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class FaultConfigError(ValueError):
    """A fault configuration that cannot be used; the message names the field."""


@dataclass(frozen=True)
class FaultConfig:
    """Rates and bounds of the injected faults.

    Attributes:
        rates: Probability per request of each fault (watch_cut: per watch request).
        seed: Seed of the proxy's random draws.
        max_faults: At most this many faults in all; then every request passes untouched.
        max_delay_s: Longest injected delay.
        retry_after_s: ``Retry-After`` of a 429.
        watch_max_events: A cut watch ends after 1..this many events ...
        watch_max_s: ... or after up to this many seconds, whichever comes first.
    """

    rates: Mapping[Fault, float] = field(default_factory=dict)
    seed: int = 0
    max_faults: int = 1000
    max_delay_s: float = 1.0
    retry_after_s: int = 1
    watch_max_events: int = 20
    watch_max_s: float = 10.0

    def __post_init__(self) -> None:
        for kind, rate in self.rates.items():
            if not isinstance(kind, Fault):
                raise FaultConfigError(f"rates: unknown fault {kind!r}; known: {list(Fault)}")
            if not 0.0 <= rate <= 1.0:
                raise FaultConfigError(f"rates.{kind}: {rate} is not a probability in [0, 1]")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise FaultConfigError(f"rates: they add up to {sum(self.rates.values())} > 1")
        bounds = {
            "max_faults": self.max_faults,
            "max_delay_s": self.max_delay_s,
            "retry_after_s": self.retry_after_s,
            "watch_max_events": self.watch_max_events,
            "watch_max_s": self.watch_max_s,
        }
        for name, value in bounds.items():
            if value < 0:
                raise FaultConfigError(f"{name}: {value} must not be negative")
        if self.watch_max_events < 1:
            raise FaultConfigError("watch_max_events: a cut watch needs at least 1 event")


@dataclass(frozen=True)
class RequestInfo:
    """What the proxy knows of a request: its Kubernetes verb and whether it is a watch."""

    verb: str
    watch: bool = False

    @property
    def write(self) -> bool:
        return self.verb in WRITE_VERBS


def verb_of(method: str, path: str, query: str = "") -> RequestInfo:
    """The Kubernetes verb of an HTTP request, as the API server's audit log names it.

    ``GET`` is ``watch`` with ``watch=true`` (or 1), ``list`` on a collection, ``get`` on one
    object or a non-resource path; ``DELETE`` on a collection is ``deletecollection``.
    """
    params = parse_qs(query)
    watch = params.get("watch", [""])[0].lower() in ("true", "1")
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        rest = parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        rest = parts[3:]
    else:
        rest = []  # /version, /openapi, /healthz, discovery: never an object
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]  # namespaced: /namespaces/NS/RESOURCE[/NAME[/SUB]]
    collection = len(rest) == 1
    method = method.upper()
    if method == "GET":
        if watch:
            return RequestInfo("watch", watch=True)
        return RequestInfo("list" if collection else "get")
    if method == "DELETE":
        return RequestInfo("deletecollection" if collection else "delete")
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch"}
    return RequestInfo(verbs.get(method, method.lower()))


def choose(draw: float, request: RequestInfo, rates: Mapping[Fault, float]) -> Fault | None:
    """The fault for a request, from one uniform draw in [0, 1); None: pass it through.

    The draw falls into consecutive slices of ``rates`` in the order of :class:`Fault`; a
    slice whose fault does not apply to this request (409 to a read, a cut to a non-watch)
    passes it through, so every kind keeps its rate among the requests it applies to.
    """
    start = 0.0
    for kind in Fault:
        rate = rates.get(kind, 0.0)
        if start <= draw < start + rate:
            if kind in WRITE_ONLY and not request.write:
                return None
            if kind is Fault.WATCH_CUT and not request.watch:
                return None
            return kind
        start += rate
    return None


@dataclass(frozen=True)
class WatchCut:
    """When to end a watch stream: after ``events`` events or ``seconds``, which comes first."""

    events: int
    seconds: float


class Planner:
    """Seeded draws for the proxy: the fault of each request, delays and watch cuts.

    Not thread-safe: the proxy calls it from its one event loop.
    """

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._random = random.Random(config.seed)
        self.injected = 0

    def fault_for(self, request: RequestInfo) -> Fault | None:
        if self.injected >= self.config.max_faults:
            return None
        fault = choose(self._random.random(), request, self.config.rates)
        if fault is not None:
            self.injected += 1
        return fault

    def delay(self) -> float:
        return self._random.uniform(0.0, self.config.max_delay_s)

    def watch_cut(self) -> WatchCut:
        return WatchCut(
            events=self._random.randint(1, self.config.watch_max_events),
            seconds=self._random.uniform(0.0, self.config.watch_max_s),
        )
