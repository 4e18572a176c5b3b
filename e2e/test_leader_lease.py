"""Lease leader election against the real API server: one leads, a hung leader steps down
before its Lease can expire, the standby takes over, a graceful stop releases at once.

Two electors run in this one process with distinct identities. The hung leader is an elector
whose every Lease request blocks (the API server unreachable for it alone), injected by
wrapping its store: the real API server cannot be made to hang for one client only.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import Kubectl
from gantry.kube import KubeClient, load
from gantry.leader import ElectionConfig, KubeLeaseStore, LeaderElector

pytestmark = pytest.mark.timeout(180)

LEASE = "gantry-leader"
# Short but proportioned like client-go's 15/10/2: 2s between a hung leader's last possible
# write and the earliest takeover.
CONFIG = ElectionConfig(lease_duration=6, renew_deadline=4.0, retry_period=0.5)


class HangableStore:
    """A real Lease store that, while ``hung`` is set, never answers."""

    def __init__(self, inner: KubeLeaseStore) -> None:
        self.inner = inner
        self.hung = False
        self._resume = asyncio.Event()

    async def _gate(self) -> None:
        if self.hung:
            await self._resume.wait()

    def resume(self) -> None:
        self.hung = False
        self._resume.set()

    async def read(self) -> dict[str, Any] | None:
        await self._gate()
        return await self.inner.read()

    async def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        await self._gate()
        return await self.inner.create(spec)

    async def update(self, spec: dict[str, Any], resource_version: str) -> dict[str, Any]:
        await self._gate()
        return await self.inner.update(spec, resource_version)


class Journal:
    """What each elector reported, in the order it happened."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def elector(self, identity: str, store: Any) -> LeaderElector:
        return LeaderElector(
            store,
            identity=identity,
            config=CONFIG,
            on_started_leading=lambda: self.events.append((identity, "started")),
            on_stopped_leading=lambda: self.events.append((identity, "stopped")),
        )


async def until(predicate: Any, *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
def client(kubeconfig: Path | None) -> KubeClient:
    # Closed with the test's event loop (an async fixture would run on another loop).
    return KubeClient(load(str(kubeconfig) if kubeconfig else None))


def lease_spec(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = kubectl.json("get", "lease", LEASE, "-n", namespace)["spec"]
    return spec


async def test_hung_leader_steps_down_before_the_standby_takes_over(
    client: KubeClient, kubectl: Kubectl, namespace: str
) -> None:
    journal = Journal()
    store_a = HangableStore(KubeLeaseStore(client, name=LEASE, namespace=namespace))
    a = journal.elector("replica-a", store_a)
    b = journal.elector("replica-b", KubeLeaseStore(client, name=LEASE, namespace=namespace))
    run_a = asyncio.create_task(a.run())
    try:
        await until(a.is_leader, within=30, what="replica-a to lead")
        run_b = asyncio.create_task(b.run())
        try:
            await until(lambda: b.leader == "replica-a", within=30, what="b to see a lead")
            assert not b.is_leader()
            before = lease_spec(kubectl, namespace)
            assert before["holderIdentity"] == "replica-a"

            store_a.hung = True
            await until(b.is_leader, within=4 * CONFIG.lease_duration, what="b to take over")
            assert not a.is_leader()
            # a gave up before b could have started: never two leaders at once.
            assert journal.events == [
                ("replica-a", "started"),
                ("replica-a", "stopped"),
                ("replica-b", "started"),
            ]
            after = lease_spec(kubectl, namespace)
            assert after["holderIdentity"] == "replica-b"
            assert after["leaseTransitions"] == before["leaseTransitions"] + 1

            # a comes back: it follows b instead of fighting for the Lease.
            store_a.resume()
            await until(lambda: a.leader == "replica-b", within=30, what="a to see b lead")
            assert not a.is_leader()

            b.stop()
            await asyncio.wait_for(run_b, timeout=30)
        finally:
            run_b.cancel()
        released = lease_spec(kubectl, namespace)
        assert released["holderIdentity"] == ""
        assert released["leaseDurationSeconds"] == 1
        # Released, a takes over at its next try, long before b's lease would have run out.
        await until(a.is_leader, within=30, what="a to take the released Lease")
        assert journal.events[-2:] == [("replica-b", "stopped"), ("replica-a", "started")]
        assert lease_spec(kubectl, namespace)["leaseTransitions"] == after["leaseTransitions"] + 1
    finally:
        a.stop()
        store_a.resume()
        await asyncio.wait_for(run_a, timeout=30)
        await client.close()


async def test_racing_candidates_elect_exactly_one(
    client: KubeClient, kubectl: Kubectl, namespace: str
) -> None:
    journal = Journal()
    electors = [
        journal.elector(f"replica-{i}", KubeLeaseStore(client, name=LEASE, namespace=namespace))
        for i in range(3)
    ]
    runs = [asyncio.create_task(e.run()) for e in electors]
    try:
        await until(lambda: any(e.is_leader() for e in electors), within=30, what="someone to lead")
        # Several retry periods of contention: the Lease's resourceVersion lets one writer win.
        for _ in range(10):
            await asyncio.sleep(CONFIG.retry_period)
            assert sum(e.is_leader() for e in electors) <= 1
        leaders = [e.identity for e in electors if e.is_leader()]
        assert leaders == [lease_spec(kubectl, namespace)["holderIdentity"]]
        assert [event for event in journal.events if event[1] == "started"] == [
            (leaders[0], "started")
        ]
    finally:
        for elector in electors:
            elector.stop()
        await asyncio.wait_for(asyncio.gather(*runs), timeout=30)
        await client.close()


async def test_first_elector_creates_the_lease(
    client: KubeClient, kubectl: Kubectl, namespace: str
) -> None:
    store = KubeLeaseStore(client, name=LEASE, namespace=namespace)
    try:
        await store.create({"holderIdentity": "replica-a", "leaseDurationSeconds": 6})
    finally:
        await client.close()
    assert lease_spec(kubectl, namespace)["holderIdentity"] == "replica-a"
