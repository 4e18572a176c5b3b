"""Builders for rollout tests: specs, statuses, observations, measurements, a fake clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gantry.analysis.measurement import Measurement, Reading
from gantry.api.spec import ModelDeploymentSpec
from gantry.api.status import CanaryStatus, ModelDeploymentStatus, RevisionStatus
from gantry.rollout import Decision, DeploymentReadiness, Observations, decide

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
MD = "resnet"
OLD = "aaaaaaaaaa"
NEW = "bbbbbbbbbb"
NEWER = "cccccccccc"
CANARY_DEP = f"{MD}-{NEW}"

STEPS: list[dict[str, Any]] = [
    {"setWeight": 10},
    {"pause": {"duration": "60s"}},
    {"analysis": {"intervals": 2}},
    {"setWeight": 50},
    {"pause": {}},
]


def at(seconds: float) -> datetime:
    """The fake clock: T0 plus seconds."""
    return T0 + timedelta(seconds=seconds)


def build_spec(
    *,
    strategy: str = "canary",
    steps: list[dict[str, Any]] | None = None,
    routing: str = "replicas",
    replicas: int | None = 4,
    scaling: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    deadline: int = 600,
) -> ModelDeploymentSpec:
    traffic: dict[str, Any] = {"type": routing}
    if routing == "gatewayAPI":
        traffic["parentRefs"] = [{"name": "gw"}]
    body: dict[str, Any] = {
        "model": {"name": "resnet50", "uri": "s3://models/resnet50", "version": "3"},
        "rollout": {
            "strategy": strategy,
            "progressDeadlineSeconds": deadline,
        },
    }
    if replicas is not None:
        body["replicas"] = replicas
    if scaling is not None:
        body["scaling"] = scaling
    if strategy == "canary":
        body["rollout"]["canary"] = {
            "steps": STEPS if steps is None else steps,
            "analysis": {
                "interval": "30s",
                "failureLimit": 2,
                "inconclusiveLimit": 2,
                "minRequestCount": 10,
                "successRate": {"min": 0.99},
                **(analysis or {}),
            },
            "trafficRouting": traffic,
        }
    return ModelDeploymentSpec.model_validate(body)


def stable(revision: str = OLD, deployment: str = MD) -> RevisionStatus:
    return RevisionStatus(revision=revision, deployment=deployment)


def status(
    *, stable_rev: RevisionStatus | None = None, canary: CanaryStatus | None = None
) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(stable=stable_rev, canary=canary)


def ready(
    replicas: int, *, available: int | None = None, model_ready: int | None = None
) -> DeploymentReadiness:
    avail = replicas if available is None else available
    return DeploymentReadiness(
        replicas=replicas, ready=avail, available=avail, model_ready=model_ready
    )


def observe(
    deployments: Mapping[str, DeploymentReadiness] | None = None,
    *,
    annotations: Mapping[str, str] | None = None,
    measurement: Measurement | None = None,
) -> Observations:
    return Observations(
        deployments=dict(deployments if deployments is not None else {MD: ready(4)}),
        annotations=dict(annotations or {}),
        measurement=measurement,
    )


def measurement(
    now: datetime,
    *,
    ok: float = 1000,
    failed: float = 0,
    revision: str = NEW,
    error: str | None = None,
    warming: bool = False,
    no_data: bool = False,
) -> Measurement:
    if no_data:
        return Measurement(time=now, revision=revision, source="test")
    return Measurement(
        time=now,
        revision=revision,
        source="test",
        successes=Reading(ok, query="ok"),
        failures=Reading(failed, query="failed"),
        error=error,
        warming=warming,
    )


def good(now: datetime, revision: str = NEW) -> Measurement:
    return measurement(now, revision=revision)


def bad(now: datetime, revision: str = NEW) -> Measurement:
    return measurement(now, ok=900, failed=100, revision=revision)


def quiet(now: datetime, revision: str = NEW) -> Measurement:
    return measurement(now, ok=3, revision=revision)


Measurer = Callable[[datetime], Measurement]


def run_decide(
    spec: ModelDeploymentSpec,
    st: ModelDeploymentStatus,
    obs: Observations,
    now: datetime,
    *,
    revision: str = NEW,
) -> Decision:
    return decide(spec, st, obs, now, desired_revision=revision, md_name=MD)


def tick(
    spec: ModelDeploymentSpec,
    st: ModelDeploymentStatus,
    obs: Observations,
    now: datetime,
    *,
    revision: str = NEW,
    measurer: Measurer | None = None,
) -> tuple[Decision, ModelDeploymentStatus]:
    """One shell tick following the documented protocol; returns the decision and new status."""
    d = run_decide(spec, st, obs, now, revision=revision)
    if d.measure:
        assert measurer is not None, "the decision asked for a measurement"
        d = run_decide(
            spec, st, dataclasses.replace(obs, measurement=measurer(now)), now, revision=revision
        )
        assert not d.measure, "a decision given its measurement must not ask again"
    return d, apply(st, d)


def apply(st: ModelDeploymentStatus, d: Decision) -> ModelDeploymentStatus:
    return st.model_copy(update={"stable": d.stable, "canary": d.canary})


def replicas(d: Decision) -> dict[str, int | None]:
    return {p.name: p.replicas for p in d.plan.deployments}


def reasons(d: Decision) -> list[str]:
    return [e.reason for e in d.events]


@dataclasses.dataclass
class Walker:
    """Drives the machine through the documented protocol on a fake clock.

    The simulated cluster does what the last plan asked at once (Deployments at
    their planned size, every pod ready) unless a tick says otherwise.
    """

    spec: ModelDeploymentSpec
    st: ModelDeploymentStatus
    clock: float = 0.0
    revision: str = NEW
    last: Decision | None = None
    steady: int = 4  # the stable's pods before the first plan, and an autoscaled size

    @property
    def now(self) -> datetime:
        return at(self.clock)

    def planned(self) -> dict[str, int]:
        if self.last is None:
            return {self.st.stable.deployment: self.steady} if self.st.stable else {}
        return {
            p.name: self.steady if p.replicas is None else p.replicas
            for p in self.last.plan.deployments
        }

    def obs(
        self,
        *,
        annotations: Mapping[str, str] | None = None,
        canary_ready: int | None = None,
    ) -> Observations:
        deployments = {name: ready(n) for name, n in self.planned().items()}
        if canary_ready is not None and self.st.canary is not None:
            want = deployments.get(self.st.canary.deployment, ready(0)).replicas
            deployments[self.st.canary.deployment] = ready(want, available=canary_ready)
        return observe(deployments, annotations=annotations)

    def tick(
        self,
        after: float = 0.0,
        *,
        annotations: Mapping[str, str] | None = None,
        canary_ready: int | None = None,
        measurer: Measurer | None = good,
    ) -> Decision:
        self.clock += after
        obs = self.obs(annotations=annotations, canary_ready=canary_ready)
        d, self.st = tick(
            self.spec, self.st, obs, self.now, revision=self.revision, measurer=measurer
        )
        self.last = d
        return d

    def until(self, predicate: Callable[[ModelDeploymentStatus], bool], *, limit: int = 50) -> None:
        """Tick at each requeue until the status matches (bounded)."""
        for _ in range(limit):
            if predicate(self.st):
                return
            wait = self.last.requeue_after if self.last and self.last.requeue_after else 1.0
            self.tick(wait)
        c = self.st.canary
        where = f"{c.phase} {c.reason} step {c.step_index}" if c else "no canary"
        raise AssertionError(f"state not reached in {limit} ticks ({where})")


def started(spec: ModelDeploymentSpec | None = None) -> Walker:
    """A walker whose canary of NEW just started beside a stable of OLD (4 replicas)."""
    w = Walker(spec or build_spec(), status(stable_rev=stable()))
    w.tick()
    return w


def at_step(index: int, spec: ModelDeploymentSpec | None = None) -> Walker:
    w = started(spec)
    w.until(lambda s: s.canary is not None and s.canary.step_index == index)
    return w
