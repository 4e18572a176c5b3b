"""Reconciler.reconcile + write_outcome end to end against the fake API server.

Each test is one or a few handler passes (reconcile, then write what it decided)
and asserts both the requests sent, in order, and what the server ends up storing.
"""

from __future__ import annotations

import copy
import socket
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gantry.api.status import ModelDeploymentStatus
from gantry.kube import ApiError
from gantry.kube import resources as kinds
from gantry.kube.client import APPLY_CONTENT_TYPE, MERGE_CONTENT_TYPE
from gantry.reconciler import SCALE_MANAGER, Outcome, Settings, write_outcome
from gantry.status.conditions import Transition
from tests.reconciler.reconcile_env import (
    DEPLOYMENTS,
    EVENTS,
    MD_PATH,
    NAME,
    NS,
    PDBS,
    PODS,
    SERVICES,
    child,
    md,
    pending_pod,
    reconcile_env,
    settle,
    spec,
)
from tests.status.builders import ORDER

pytestmark = pytest.mark.timeout(30)

CONDITION_TYPES = set(ORDER)
PAUSE_GATE = "serving.gantry.dev/pause"


def owned_children(objects: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in objects.items() if k != MD_PATH and not k.startswith(EVENTS)}


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


async def test_first_reconcile_creates_service_and_deployment_sized_through_scale() -> None:
    body = md()
    body["metadata"]["generation"] = 4
    async with reconcile_env(body) as env:
        outcome = await env.reconcile()
        fake = env.fake
        md_uid = fake.objects[MD_PATH]["metadata"]["uid"]

        applies = [r for r in fake.log if r.content_type == APPLY_CONTENT_TYPE]
        assert [r.path for r in applies] == [f"{SERVICES}/{NAME}", f"{DEPLOYMENTS}/{NAME}"]
        assert all(r.params == {"fieldManager": "gantry", "force": "true"} for r in applies)
        deployment = applies[1].body
        assert "replicas" not in deployment["spec"]
        assert deployment["metadata"]["ownerReferences"][0]["uid"] == md_uid

        (scale,) = [r for r in fake.log if r.sub == "scale"]
        assert scale.method == "PATCH"
        assert scale.path == f"{DEPLOYMENTS}/{NAME}/scale"
        assert scale.params == {"fieldManager": SCALE_MANAGER}
        assert scale.content_type == MERGE_CONTENT_TYPE
        assert scale.body == {"spec": {"replicas": 1}}
        assert fake.log.index(scale) > fake.log.index(applies[1])
        assert fake.objects[f"{DEPLOYMENTS}/{NAME}"]["spec"]["replicas"] == 1

        status = outcome.status
        assert status is not None
        assert status["observedGeneration"] == 4
        conds = conditions(status)
        assert set(conds) == CONDITION_TYPES
        assert all(c["observedGeneration"] == 4 for c in conds.values())
        assert conds["Progressing"]["status"] == "True"
        assert status["stable"]["deployment"] == NAME
        assert status["endpoints"]["http"] == f"http://{NAME}.{NS}.svc.cluster.local:8000"
        # Stored through a merge patch (nulls drop keys), it reads back as the same status.
        stored = fake.objects[MD_PATH]["status"]
        assert ModelDeploymentStatus.model_validate(stored) == ModelDeploymentStatus.model_validate(
            status
        )
        assert [e.reason for e in outcome.events] == ["Deploying"]


@pytest.mark.parametrize(
    ("overrides", "kinds", "scaled_to"),
    [
        pytest.param({"replicas": 3}, ["Service", "Deployment", "PodDisruptionBudget"], 3, id="3"),
        pytest.param(
            {"scaling": {"minReplicas": 1, "maxReplicas": 4}},
            ["Service", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"],
            None,
            id="autoscaled",
        ),
    ],
)
async def test_children_and_scale_follow_the_spec(
    overrides: dict[str, Any], kinds: list[str], scaled_to: int | None
) -> None:
    async with reconcile_env(md(spec(**overrides))) as env:
        await env.reconcile()
        applies = [r for r in env.fake.log if r.content_type == APPLY_CONTENT_TYPE]
        assert [r.body["kind"] for r in applies] == kinds
        assert all(
            "replicas" not in r.body["spec"] for r in applies if r.body["kind"] == "Deployment"
        )
        scales = [r.body["spec"]["replicas"] for r in env.fake.log if r.sub == "scale"]
        # With an autoscaler the HPA owns the count: the operator never scales.
        assert scales == ([] if scaled_to is None else [scaled_to])


async def test_reconcile_with_nothing_changed_writes_nothing() -> None:
    async with reconcile_env() as env:
        await env.reconcile()
        # The first status was observed before its own apply (no Deployment yet); the
        # next pass sees the Deployment and reports it, then the world stands still.
        settle(env.fake, NAME)
        second = await env.reconcile()
        assert second.status is not None
        assert conditions(second.status)["Available"]["status"] == "True"
        version = env.fake.objects[MD_PATH]["metadata"]["resourceVersion"]
        mark = len(env.fake.log)

        third = await env.reconcile()  # a later `now`: timestamps must not churn

        assert (third.status, third.events, third.consumed_annotations) == (None, (), ())
        writes = [r for r in env.fake.log[mark:] if r.content_type != APPLY_CONTENT_TYPE]
        assert [r for r in writes if r.method != "GET"] == []
        assert env.fake.objects[MD_PATH]["metadata"]["resourceVersion"] == version


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"scaling": {"minReplicas": 3, "maxReplicas": 1}}, "spec.scaling"),
        ({"runtime": {"ports": {"http": 9000, "grpc": 9000}}}, "spec.runtime"),
        ({"rollout": {"strategy": "canary"}}, "spec.rollout"),
        (
            {
                "rollout": {
                    "strategy": "canary",
                    "canary": {"steps": [{"setWeight": 50}, {"setWeight": 10}]},
                }
            },
            "spec.rollout.canary.steps",
        ),
    ],
)
async def test_invalid_spec_fails_without_touching_children(
    bad: dict[str, Any], field: str
) -> None:
    async with reconcile_env() as env:
        await env.reconcile()
        stable = env.fake.objects[MD_PATH]["status"]["stable"]
        children = copy.deepcopy(owned_children(env.fake.objects))
        stored = env.fake.objects[MD_PATH]
        stored["spec"] = spec(**bad)
        stored["metadata"]["generation"] += 1
        mark = len(env.fake.log)

        outcome = await env.reconcile(write=False)

        assert {r.method for r in env.fake.log[mark:]} == {"GET"}
        status = outcome.status
        assert status is not None
        assert status["phase"] == "Failed"
        assert status["observedGeneration"] == stored["metadata"]["generation"]
        degraded = conditions(status)["Degraded"]
        assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
        assert degraded["message"].startswith(f"{field}:")
        assert status["stable"] == stable  # still reports what serves

        await write_outcome(env.kube, env.body(), outcome, now=env.now())
        writes = env.fake.writes()[-2:]
        assert [(r.method, r.sub) for r in writes] == [("PATCH", "status"), ("POST", "")]
        assert (writes[1].body["type"], writes[1].body["reason"]) == ("Warning", "InvalidSpec")
        assert owned_children(env.fake.objects) == children  # not one write to any child


async def test_invalid_spec_on_a_new_object_applies_nothing() -> None:
    async with reconcile_env(md(spec(scaling={"minReplicas": 2, "maxReplicas": 1}))) as env:
        outcome = await env.reconcile(write=False)
        assert [str(r) for r in env.fake.log] == [f"GET {DEPLOYMENTS}"]
        assert outcome.status is not None
        assert outcome.status["phase"] == "Failed"
        assert outcome.consumed_annotations == ()


async def test_garbage_collection_deletes_owned_leftovers_by_uid_only() -> None:
    async with reconcile_env() as env:
        fake = env.fake
        md_uid = fake.objects[MD_PATH]["metadata"]["uid"]
        old = fake.put(
            f"{DEPLOYMENTS}/{NAME}-old",
            child("apps/v1", "Deployment", f"{NAME}-old", owner_uid=md_uid),
        )
        pdb = fake.put(
            f"{PDBS}/{NAME}", child("policy/v1", "PodDisruptionBudget", NAME, owner_uid=md_uid)
        )
        foreign = child("apps/v1", "Deployment", f"{NAME}-foreign", owner_uid="uid-of-someone-else")
        foreign["status"] = {"replicas": 5, "readyReplicas": 5}
        fake.put(f"{DEPLOYMENTS}/{NAME}-foreign", foreign)
        fake.put(
            f"{DEPLOYMENTS}/{NAME}-loose",
            child("apps/v1", "Deployment", f"{NAME}-loose", owner_uid=None),
        )

        outcome = await env.reconcile()

        deletes = fake.requests("DELETE")
        assert {r.path: r.body for r in deletes} == {
            f"{DEPLOYMENTS}/{NAME}-old": {
                "propagationPolicy": "Background",
                "preconditions": {"uid": old["metadata"]["uid"]},
            },
            f"{PDBS}/{NAME}": {
                "propagationPolicy": "Background",
                "preconditions": {"uid": pdb["metadata"]["uid"]},
            },
        }
        assert f"{DEPLOYMENTS}/{NAME}-foreign" in fake.objects
        assert f"{DEPLOYMENTS}/{NAME}-loose" in fake.objects
        assert f"{DEPLOYMENTS}/{NAME}-old" not in fake.objects
        # Collection comes after every apply and scale of the tick.
        last_apply = max(i for i, r in enumerate(fake.log) if r.content_type == APPLY_CONTENT_TYPE)
        assert all(fake.log.index(r) > last_apply for r in deletes)
        assert outcome.status is not None
        assert outcome.status["replicas"] == 0  # the namesake's 5 pods are not ours


async def test_write_outcome_orders_status_then_gates_then_events() -> None:
    async with reconcile_env(md(annotations={PAUSE_GATE: "true", "team": "vision"})) as env:
        md_uid = env.fake.objects[MD_PATH]["metadata"]["uid"]
        body, now = env.body(), env.now()
        outcome = await env.reconciler.reconcile(body, now=now)
        assert outcome.consumed_annotations == (PAUSE_GATE,)
        mark = len(env.fake.log)

        await write_outcome(env.kube, body, outcome, now=now)

        sent = env.fake.log[mark:]
        assert [(r.method, r.path) for r in sent] == [
            ("PATCH", f"{MD_PATH}/status"),
            ("PATCH", MD_PATH),
        ] + [("POST", EVENTS)] * len(outcome.events)
        # Written onto the version decided from: a newer one answers 409.
        assert sent[0].body == {
            "status": outcome.status,
            "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
        }
        assert sent[1].body == {"metadata": {"annotations": {PAUSE_GATE: None}}}
        assert env.fake.objects[MD_PATH]["metadata"]["annotations"] == {"team": "vision"}
        events = [r.body for r in sent[2:]]
        assert [e["reason"] for e in events] == [e.reason for e in outcome.events]
        assert "Deploying" in [e["reason"] for e in events]
        for event in events:
            assert event["involvedObject"]["uid"] == md_uid
            assert event["involvedObject"]["kind"] == "ModelDeployment"
            assert event["metadata"]["namespace"] == NS
            assert event["metadata"]["name"].startswith(f"{NAME}.")
            assert event["firstTimestamp"] == now.strftime("%Y-%m-%dT%H:%M:%SZ")
        # Named by what they report: a resent create (its answer lost) cannot duplicate one.
        assert len({e["metadata"]["name"] for e in events}) == len(events)


async def test_a_status_decided_from_an_old_version_is_refused_not_written() -> None:
    async with reconcile_env() as env:
        body, now = env.body(), env.now()
        outcome = await env.reconciler.reconcile(body, now=now)
        assert outcome.status is not None
        # Someone (or our own write whose answer was lost) changed the object meanwhile.
        await env.kube.patch_merge(
            kinds.MODEL_DEPLOYMENT, NAME, NS, {"metadata": {"labels": {"team": "x"}}}
        )
        with pytest.raises(ApiError) as refused:
            await write_outcome(env.kube, body, outcome, now=now)
        assert refused.value.conflict
        assert "status" not in env.fake.objects[MD_PATH]


async def test_write_outcome_without_changes_sends_nothing() -> None:
    async with reconcile_env() as env:
        await write_outcome(env.kube, env.body(), Outcome(status=None), now=env.now())
        assert env.fake.log == []


async def test_event_times_are_utc_for_any_aware_now() -> None:
    async with reconcile_env() as env:
        plus_two = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
        outcome = Outcome(status=None, events=(Transition("Normal", "Deploying", "x"),))
        await write_outcome(env.kube, env.body(), outcome, now=plus_two)
        (event,) = [r.body for r in env.fake.requests("POST", EVENTS)]
        assert event["firstTimestamp"] == "2025-03-01T12:00:00Z"


async def test_unschedulable_pods_of_this_model_only_reach_the_status() -> None:
    gpu = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    async with reconcile_env() as env:
        env.fake.put(f"{PODS}/{NAME}-a", pending_pod(f"{NAME}-a", message=gpu))
        # Listed first by the fake and also short of GPUs: counted, its message would win.
        other = "0/9 nodes are available: 9 Insufficient nvidia.com/gpu."
        env.fake.put(f"{PODS}/a-other", pending_pod("a-other", instance="other", message=other))

        outcome = await env.reconcile()

        (pods,) = env.fake.requests("GET", PODS)
        assert pods.params["labelSelector"] == (
            "app.kubernetes.io/component=predictor,app.kubernetes.io/instance=resnet,"
            "app.kubernetes.io/managed-by=gantry"
        )
        assert outcome.status is not None
        scheduled = conditions(outcome.status)["Scheduled"]
        assert (scheduled["status"], scheduled["reason"]) == ("False", "InsufficientGPU")
        assert scheduled["message"] == gpu


def closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed when the socket is: connections are refused


async def test_running_pod_whose_model_does_not_answer_is_not_model_ready() -> None:
    port = closed_loopback_port()
    body = md(spec(runtime={"ports": {"http": port, "grpc": port + 1, "metrics": port + 2}}))
    async with reconcile_env(body, settings=Settings(probe_timeout=0.2)) as env:
        await env.reconcile()
        settle(env.fake, NAME)
        pod = pending_pod(f"{NAME}-a")
        pod["metadata"]["labels"]["serving.gantry.dev/deployment"] = NAME
        pod["status"] = {"phase": "Running", "podIP": "127.0.0.1"}
        env.fake.put(f"{PODS}/{NAME}-a", pod)

        outcome = await env.reconcile()

        assert outcome.status is not None
        model = conditions(outcome.status)["ModelReady"]
        assert (model["status"], model["reason"]) == ("False", "ServerUnreachable")
        assert model["message"].startswith("model ready on 0/1 pod(s)")
        assert outcome.status["phase"] != "Ready"


PROMOTE_GATE = "serving.gantry.dev/promote"


def canary_name(env_objects: dict[str, Any]) -> str:
    (name,) = {p.rsplit("/", 1)[1] for p in env_objects if p.startswith(f"{DEPLOYMENTS}/")} - {NAME}
    return name


async def test_promote_finishes_a_canary_paused_for_lack_of_traffic() -> None:
    """The demo's report: a canary paused Inconclusive (no traffic), promoted with the
    gate while its pods still start, was paused again at weight 100 by the streak it
    had before the gate (the old Deployment at 0), and a second promote was ignored
    there. The scrape provider finds no canary pod to read here (the fake runs no
    pods), so every interval is Inconclusive, as without traffic."""
    canary = {
        "steps": [{"setWeight": 34}, {"analysis": {"intervals": 2}}],
        "analysis": {
            "interval": "30s",  # one interval per handler pass
            "inconclusiveLimit": 1,
            "minRequestCount": 3,
            "provider": {"type": "scrape"},
        },
    }
    body = md(spec(replicas=2, rollout={"strategy": "canary", "canary": canary}))
    async with reconcile_env(body) as env:
        await env.reconcile()
        settle(env.fake, NAME)
        env.fake.objects[MD_PATH]["spec"]["model"]["version"] = "4"
        await env.reconcile()
        new = canary_name(env.fake.objects)
        for _ in range(8):
            settle(env.fake, new)
            await env.reconcile()
            if env.fake.objects[MD_PATH]["status"]["canary"]["phase"] == "Paused":
                break
        paused = env.fake.objects[MD_PATH]["status"]["canary"]
        assert (paused["phase"], paused["reason"]) == ("Paused", "InconclusiveAnalysis")
        mark = len(env.fake.log)

        env.fake.objects[MD_PATH]["metadata"]["annotations"] = {PROMOTE_GATE: "true"}
        gate = await env.reconcile()
        assert gate.consumed_annotations == (PROMOTE_GATE,)
        await env.reconcile()  # the second canary pod still starting: one interval
        outcomes = []
        for _ in range(4):
            settle(env.fake, new)
            outcomes.append(await env.reconcile())
            if env.fake.objects[MD_PATH]["status"]["stable"]["deployment"] == new:
                break

        status = env.fake.objects[MD_PATH]["status"]
        assert status["canary"]["phase"] == "Promoted", status["canary"]["message"]
        assert status["stable"]["deployment"] == new
        assert f"{DEPLOYMENTS}/{NAME}" not in env.fake.objects, "the old Deployment is retired"
        assert PROMOTE_GATE not in env.fake.objects[MD_PATH]["metadata"].get("annotations", {})
        removals = [
            r
            for r in env.fake.log[mark:]
            if r.method == "PATCH" and r.path == MD_PATH and "annotations" in r.body["metadata"]
        ]
        assert [r.body["metadata"]["annotations"] for r in removals] == [{PROMOTE_GATE: None}]
        promoted = [
            o
            for p, o in env.fake.objects.items()
            if p.startswith(EVENTS) and o.get("reason") == "CanaryPromoted"
        ]
        assert len(promoted) == 1
