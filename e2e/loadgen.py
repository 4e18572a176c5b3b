"""A bounded load generator: KServe v2 HTTP inference spread over the backed pods.

It plays the clients of the ModelDeployment's Service: requests go round-robin
to every pod whose model answers ready (as a Service's endpoints hold only
ready pods), so with ``trafficRouting: replicas`` a 1-of-3 canary gets a third
of the traffic, exactly the share the operator reports as the effective weight.

Each request is ``POST /v2/models/<name>/versions/<v>/infer`` with the input
``x`` (FP32, shape [1, 4], all ones) to the pod's own model version.

Bounds: a fixed rate (never bursts to catch up), a cap on requests in flight,
a per-request timeout, a cap on the total number of requests and on the run
time (the generator stops itself when either is reached), and loopback targets
only (anything else is refused before a byte is sent).
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from e2e.backing import PodBacker

__all__ = ["LoadGenerator", "PodStats", "Target", "backer_targets"]

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1.0] * 4}]}


@dataclass(frozen=True)
class Target:
    """One pod's inference endpoint."""

    pod: str
    host: str
    port: int
    model: str
    version: int

    def __post_init__(self) -> None:
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"load generator targets loopback only, not {self.host}")

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}/v2/models/{self.model}/versions/{self.version}"


@dataclass
class PodStats:
    """What one pod answered (times are ``time.monotonic()``)."""

    model_version: int
    ready_at: float | None = None
    ok: int = 0
    failed: int = 0
    unreachable: int = 0
    latency_s: float = 0.0
    last_error: str = ""

    @property
    def sent(self) -> int:
        return self.ok + self.failed + self.unreachable


def backer_targets(backer: PodBacker) -> Callable[[], list[Target]]:
    """The backer's live pods as targets (pod name, IP, HTTP port, model and version)."""

    def targets() -> list[Target]:
        return [
            Target(
                pod=name,
                host=proc.ports.host,
                port=proc.ports.http,
                model=proc.model_name,
                version=proc.model_version,
            )
            for name, proc in sorted(backer.processes.items())
        ]

    return targets


@dataclass
class _State:
    ready: dict[str, Target] = field(default_factory=dict)
    checked_at: dict[str, float] = field(default_factory=dict)


class LoadGenerator:
    """Sends inference requests at a fixed rate to every ready target, round-robin.

    Args:
        targets: The current targets (called on every tick; pods come and go).
        rate: Requests per second in total.
        max_requests: The generator stops after this many requests.
        max_duration: ... or after this many seconds.
        timeout: Seconds per request (and per readiness check).
        max_in_flight: Requests outstanding at once; a tick with all of them busy is skipped.
    """

    def __init__(
        self,
        targets: Callable[[], Sequence[Target]],
        *,
        rate: float = 20.0,
        max_requests: int = 6000,
        max_duration: float = 300.0,
        timeout: float = 2.0,
        max_in_flight: int = 8,
    ) -> None:
        if not 0 < rate <= 200:
            raise ValueError(f"rate must be within (0, 200] requests/s, got {rate}")
        self.targets = targets
        self.rate = rate
        self.max_requests = max_requests
        self.max_duration = max_duration
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.stats: dict[str, PodStats] = {}
        self.errors: list[str] = []
        self.stopped_because = ""
        self.sent = 0
        self._lock = threading.Lock()
        self._in_flight = 0
        self._state = _State()
        self._stop = threading.Event()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="loadgen")
        self._thread = threading.Thread(target=self._run, name="loadgen", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LoadGenerator:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait (bounded by the request timeout) for requests in flight."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout + 10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    # -- reading the results ---------------------------------------------------------------

    def snapshot(self) -> dict[str, PodStats]:
        with self._lock:
            return {k: PodStats(**vars(v)) for k, v in self.stats.items()}

    def totals(self, *, version: int | None = None) -> PodStats:
        """Counts summed over pods (of one model version, when given)."""
        total = PodStats(model_version=version or 0)
        for s in self.snapshot().values():
            if version is None or s.model_version == version:
                total.ok += s.ok
                total.failed += s.failed
                total.unreachable += s.unreachable
        return total

    def check(self) -> None:
        assert not self.errors, f"load generator errors: {self.errors[:5]}"

    # -- the loop --------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=self.timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _stats(self, target: Target) -> PodStats:
        stats = self.stats.get(target.pod)
        if stats is None:
            stats = self.stats[target.pod] = PodStats(model_version=target.version)
        return stats

    def _refresh(self, now: float) -> list[Target]:
        """Ready targets, checking new ones (model version ready) at most once a second."""
        state = self._state
        current = {t.pod: t for t in self.targets()}
        for pod in set(state.ready) - set(current):
            del state.ready[pod]
        for pod, target in current.items():
            if pod in state.ready or now - state.checked_at.get(pod, 0.0) < 1.0:
                continue
            state.checked_at[pod] = now
            with contextlib.suppress(httpx.HTTPError):
                response = self._client().get(f"{target.base}/ready", timeout=0.5)
                if response.status_code == 200:
                    state.ready[pod] = target
                    with self._lock:
                        self._stats(target).ready_at = time.monotonic()
        return [state.ready[p] for p in sorted(state.ready)]

    def _run(self) -> None:
        started = time.monotonic()
        period = 1.0 / self.rate
        next_at = started
        turn = 0
        last_refresh = 0.0
        ready: list[Target] = []
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - started >= self.max_duration:
                    self.stopped_because = f"max_duration {self.max_duration:g}s reached"
                    return
                if self.sent >= self.max_requests:
                    self.stopped_because = f"max_requests {self.max_requests} reached"
                    return
                if now - last_refresh >= 0.25:
                    ready = self._refresh(now)
                    last_refresh = now
                if now < next_at:
                    self._stop.wait(min(next_at - now, 0.25))
                    continue
                # Fixed rate: a late tick is not made up with a burst.
                next_at = max(next_at + period, now)
                if not ready:
                    continue
                with self._lock:
                    if self._in_flight >= self.max_in_flight:
                        continue
                    self._in_flight += 1
                target = ready[turn % len(ready)]
                turn += 1
                self.sent += 1
                self._pool.submit(self._send, target)
        except Exception as exc:  # surfaced by check()
            self.errors.append(repr(exc))
        finally:
            if not self.stopped_because:
                self.stopped_because = "stopped"

    def _send(self, target: Target) -> None:
        began = time.monotonic()
        outcome, error = "ok", ""
        try:
            response = self._client().post(f"{target.base}/infer", json=BODY)
            if response.status_code != 200:
                outcome, error = "failed", f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            outcome, error = "unreachable", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug here must not vanish inside the pool
            outcome, error = "unreachable", repr(exc)
            self.errors.append(repr(exc))
        finally:
            elapsed = time.monotonic() - began
            with self._lock:
                self._in_flight -= 1
                stats = self._stats(target)
                setattr(stats, outcome, getattr(stats, outcome) + 1)
                if outcome == "ok":
                    stats.latency_s += elapsed
                if error:
                    stats.last_error = error
