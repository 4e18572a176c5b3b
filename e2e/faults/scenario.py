"""Drive many ModelDeployments through their life (``e2e.faults.lifecycle``) at once.

One ``kubectl get`` a tick shows every ModelDeployment and every child; the pure
:func:`~e2e.faults.lifecycle.advance` says what to do for each; this module does it with
kubectl (straight to the API server, never through a fault proxy) and keeps what a test
judges: end states, the most Deployments one ModelDeployment ever had, rollout events,
children left behind. Every wait is bounded by ``timeout``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from e2e.cluster import Kubectl
from e2e.faults.lifecycle import Action, Do, EndState, Seen, Stage, advance

CHILD_KINDS = "deployments,services,poddisruptionbudgets,horizontalpodautoscalers"
LEFTOVER_KINDS = f"{CHILD_KINDS},replicasets,pods"
MANAGED = "app.kubernetes.io/managed-by=gantry"


def rollout_decision(event: Mapping[str, Any]) -> str | None:
    """Started, Promoted or RolledBack for the events that record a canary decision.

    A rollback's event has the abort's reason (ManualAbort, AnalysisFailed, ...), which the
    Degraded condition's transition event shares; the rollout's own says "rolled back".
    """
    reason, message = event.get("reason"), str(event.get("message") or "")
    if reason == "CanaryStarted":
        return "Started"
    if reason == "CanaryPromoted":
        return "Promoted"
    if message.startswith("canary ") and " rolled back (" in message:
        return "RolledBack"
    return None


Manifest = Callable[[str, int], Mapping[str, Any]]


class ScenarioTimeout(AssertionError):
    """The ModelDeployments did not all finish in time; says which stage each was in."""


@dataclass
class Tracked:
    name: str
    stage: Stage = Stage.PENDING
    uids: set[str] = field(default_factory=set)
    end: EndState | None = None
    max_deployments: int = 0
    max_services: int = 0
    history: list[tuple[float, Stage]] = field(default_factory=list)
    last: Seen | None = None

    def describe(self) -> str:
        """The stage and, while deleting, what is still there: for a timeout's message."""
        seen = self.last
        if self.stage is not Stage.DELETING or seen is None:
            return str(self.stage)
        still = "the ModelDeployment" if seen.md is not None else "no ModelDeployment"
        return f"{self.stage} ({still}; children left {sorted(seen.leftovers)})"


@dataclass
class Result:
    """What one run of the scenario left to judge."""

    end_states: dict[str, EndState]
    max_deployments: dict[str, int]
    max_services: dict[str, int]
    rollout_events: dict[str, Counter[str]]
    leftovers: list[str]
    seconds: float
    ticks: int


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


class Driver:
    """Runs ``names`` through the lifecycle in ``namespace``, ``concurrency`` at a time.

    Args:
        manifest: The ModelDeployment of a name at a model version (1, 2, 3).
        on_tick: Called once a tick with the driver (a kill loop kills the operator there).
    """

    def __init__(
        self,
        kubectl: Kubectl,
        namespace: str,
        names: Sequence[str],
        manifest: Manifest,
        *,
        concurrency: int,
        timeout: float,
        interval: float = 1.0,
        on_tick: Callable[[Driver], None] | None = None,
    ) -> None:
        self.kubectl, self.namespace, self.manifest = kubectl, namespace, manifest
        self.tracked = {name: Tracked(name) for name in names}
        self.concurrency, self.timeout, self.interval = concurrency, timeout, interval
        self.on_tick = on_tick
        self.started = time.monotonic()
        self.ticks = 0

    def stages(self) -> dict[str, Stage]:
        return {t.name: t.stage for t in self.tracked.values()}

    def run(self) -> Result:
        self.started = time.monotonic()
        deadline = self.started + self.timeout
        while any(t.stage is not Stage.DONE for t in self.tracked.values()):
            if time.monotonic() > deadline:
                where = {t.name: t.describe() for t in self.tracked.values()}
                raise ScenarioTimeout(f"not done in {self.timeout:.0f}s: {where}")
            self.tick()
            if self.on_tick is not None:
                self.on_tick(self)
            time.sleep(self.interval)
        return Result(
            end_states={n: t.end for n, t in self.tracked.items() if t.end is not None},
            max_deployments={n: t.max_deployments for n, t in self.tracked.items()},
            max_services={n: t.max_services for n, t in self.tracked.items()},
            rollout_events=self.rollout_events(),
            leftovers=self.leftovers(),
            seconds=time.monotonic() - self.started,
            ticks=self.ticks,
        )

    # -- one tick -----------------------------------------------------------------------------

    def tick(self) -> None:
        self.ticks += 1
        items = self.kubectl.json("get", f"modeldeployments,{CHILD_KINDS}", "-n", self.namespace)
        mds = {i["metadata"]["name"]: i for i in items["items"] if i["kind"] == "ModelDeployment"}
        owned: dict[str, set[tuple[str, str]]] = {}
        for item in items["items"]:
            uid = _controller_uid(item)
            if uid is not None and item["kind"] != "ModelDeployment":
                owned.setdefault(uid, set()).add((item["kind"], item["metadata"]["name"]))
        active = sum(t.stage not in (Stage.PENDING, Stage.DONE) for t in self.tracked.values())
        for t in self.tracked.values():
            seen = self._seen(t, mds.get(t.name), owned)
            t.last = seen
            stage, action = advance(t.stage, seen, slot_free=active < self.concurrency)
            if t.stage is Stage.PENDING and stage is not Stage.PENDING:
                active += 1
            if action is not None:
                self._do(t, action, seen)
            if stage is not t.stage:
                t.history.append((time.monotonic() - self.started, stage))
                t.stage = stage

    def _seen(self, t: Tracked, md: Mapping[str, Any] | None, owned: Mapping[str, Any]) -> Seen:
        uid = str(md["metadata"]["uid"]) if md is not None else None
        if uid is not None:
            t.uids.add(uid)
        children = frozenset(owned.get(uid, set())) if uid else frozenset()
        deployments = frozenset(n for k, n in children if k == "Deployment")
        t.max_deployments = max(t.max_deployments, len(deployments))
        t.max_services = max(t.max_services, sum(k == "Service" for k, _ in children))
        left = {c for u in t.uids - {uid} for c in owned.get(u, set())}
        return Seen(md, deployments, children, frozenset(left))

    def _do(self, t: Tracked, action: Action, seen: Seen) -> None:
        ns = self.namespace
        if action.do is Do.APPLY:
            self.kubectl.apply(self.manifest(t.name, action.version), namespace=ns)
        elif action.do is Do.ANNOTATE:
            self.kubectl("annotate", "md", t.name, "-n", ns, f"{action.annotation}=true")
        elif action.do is Do.RECORD_AND_DELETE:
            t.end = EndState.of(seen)
            self.kubectl("delete", "md", t.name, "-n", ns, "--wait=false")

    # -- after the run ------------------------------------------------------------------------

    def rollout_events(self) -> dict[str, Counter[str]]:
        """Canary decisions per ModelDeployment (:func:`rollout_decision`), each event's
        ``count`` included."""
        items = self.kubectl.json("get", "events", "-n", self.namespace)["items"]
        counted: dict[str, Counter[str]] = {name: Counter() for name in self.tracked}
        for e in items:
            involved = e.get("involvedObject") or {}
            decision = rollout_decision(e)
            if involved.get("kind") == "ModelDeployment" and decision is not None:
                counted.setdefault(involved["name"], Counter())[decision] += e.get("count") or 1
        return counted

    def leftovers(self, *, timeout: float = 180.0) -> list[str]:
        """Gantry's children still in the namespace once garbage collection had ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            items = self.kubectl.json("get", LEFTOVER_KINDS, "-n", self.namespace, "-l", MANAGED)
            left = [f"{i['kind']}/{i['metadata']['name']}" for i in items["items"]]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(self.interval)
