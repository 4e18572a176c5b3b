"""The builtin scaler wired into the reconciler: scrape when due, size through /scale, explain.

The API server is the project's fake (tests/reconciler/fake_apiserver.py); the
pods are real loopback HTTP servers, one per pod IP (127.0.0.x), answering the
KServe v2 health endpoints the probe reads and serving Triton's ``/metrics``
text, so the reconciler's own probe and scrape run over real sockets.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from gantry.metrics import OperatorMetrics
from gantry.reconciler import SCALE_MANAGER, Outcome, Reconciler, Settings
from tests.reconciler.reconcile_env import (
    DEPLOYMENTS,
    EVENTS,
    MD_PATH,
    NAME,
    NS,
    PODS,
    SELECTOR,
    Env,
    md,
    reconcile_env,
    settle,
    spec,
)

pytestmark = pytest.mark.timeout(60)

MODEL, VERSION = "resnet50", "3"
INTERVAL = 15.0


@dataclass
class Pod:
    """What one fake pod answers: its model's readiness and its /metrics."""

    ip: str
    version: str = VERSION
    model_ready: bool = True
    pending: float = 0.0
    metrics_status: int = 200
    scrapes: int = 0

    def text(self) -> str:
        m = f'model="{MODEL}",version="{self.version}"'
        return (
            "# TYPE nv_inference_pending_request_count gauge\n"
            f"nv_inference_pending_request_count{{{m}}} {self.pending:g}\n"
            "# TYPE nv_inference_request_success counter\n"
            f"nv_inference_request_success{{{m}}} 10\n"
        )


@dataclass
class Pods:
    """Fake pods on 127.0.0.2, .3, ...: each answers on the spec's http and metrics ports."""

    http: int
    metrics: int
    by_ip: dict[str, Pod] = field(default_factory=dict)
    runners: list[web.AppRunner] = field(default_factory=list)

    async def start(self, ip: str, version: str) -> Pod:
        pod = self.by_ip[ip] = Pod(ip, version)

        async def answer(request: web.Request) -> web.Response:
            if request.path == "/metrics":
                pod.scrapes += 1
                if pod.metrics_status != 200:
                    return web.Response(status=pod.metrics_status, text="broken")
                return web.Response(text=pod.text(), content_type="text/plain")
            if request.path == "/v2/health/ready":
                return web.Response(status=200)
            if request.path == f"/v2/models/{MODEL}/versions/{pod.version}/ready":
                return web.Response(status=200 if pod.model_ready else 400)
            if request.path == "/v2/repository/index":
                state = "READY" if pod.model_ready else "LOADING"
                index = [{"name": MODEL, "version": pod.version, "state": state}]
                return web.json_response(index)
            return web.Response(status=404)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        self.runners.append(runner)
        for port in (self.http, self.metrics):
            await web.TCPSite(runner, ip, port).start()
        return pod

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# On the test's own loop: the servers must answer while the test awaits the reconciler.
@pytest_asyncio.fixture(loop_scope="function")
async def pods() -> AsyncIterator[Pods]:
    fakes = Pods(http=free_port(), metrics=free_port())
    try:
        yield fakes
    finally:
        await fakes.close()


def scaling_md(pods: Pods, **scaling: Any) -> dict[str, Any]:
    ports = {"http": pods.http, "grpc": free_port(), "metrics": pods.metrics}
    section = {
        "minReplicas": 1,
        "maxReplicas": 4,
        "metric": {"type": "inflight", "target": 5},
        **scaling,
    }
    return md(spec(runtime={"ports": ports}, scaling=section))


async def add_pod(
    env: Env, pods: Pods, n: int, *, deployment: str = NAME, version: str = VERSION
) -> Pod:
    """A Running pod of ``deployment`` on 127.0.0.<n+1>, served by a fake Triton.

    Its container names the model version it serves, as Gantry's template does.
    """
    ip = f"127.0.0.{n + 1}"
    name = f"{deployment}-{n}"
    labels = {**SELECTOR, "serving.gantry.dev/deployment": deployment}
    env_vars = [
        {"name": "GANTRY_MODEL_NAME", "value": MODEL},
        {"name": "GANTRY_MODEL_VERSION", "value": version},
    ]
    env.fake.put(
        f"{PODS}/{name}",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"containers": [{"name": "triton", "env": env_vars}]},
            "status": {
                "phase": "Running",
                "podIP": ip,
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
    )
    return await pods.start(ip, version)


def scales(env: Env) -> list[int]:
    return [
        r.body["spec"]["replicas"]
        for r in env.fake.log
        if r.sub == "scale" and r.path == f"{DEPLOYMENTS}/{NAME}/scale"
    ]


def condition(outcome: Outcome | dict[str, Any], kind: str) -> dict[str, Any]:
    status = outcome.status if isinstance(outcome, Outcome) else outcome
    assert status is not None
    (found,) = [c for c in status["conditions"] if c["type"] == kind]
    return dict(found)


def stored_status(env: Env) -> dict[str, Any]:
    status: dict[str, Any] = env.fake.objects[MD_PATH]["status"]
    return status


def rescaled_events(env: Env) -> list[str]:
    return [
        str(o["message"])
        for path, o in env.fake.objects.items()
        if path.startswith(EVENTS) and o.get("reason") == "Rescaled"
    ]


async def started(env: Env, pods: Pods, count: int = 1) -> list[Pod]:
    """The stable created at minReplicas, its pods running and serving."""
    await env.reconcile()
    settle(env.fake, NAME)
    return [await add_pod(env, pods, i + 1) for i in range(count)]


async def test_load_above_target_scales_up_through_scale_and_says_why(pods: Pods) -> None:
    async with reconcile_env(scaling_md(pods)) as env:
        (pod,) = await started(env, pods)
        pod.pending = 15  # 3x the target of 5 per pod

        outcome = await env.reconcile()

        (scale,) = [r for r in env.fake.log if r.sub == "scale"]
        assert scale.params == {"fieldManager": SCALE_MANAGER}
        assert scale.body == {"spec": {"replicas": 3}}
        assert env.fake.objects[f"{DEPLOYMENTS}/{NAME}"]["spec"]["replicas"] == 3
        scaling = stored_status(env)["scaling"]
        assert {k: scaling[k] for k in ("provider", "metric", "currentValue", "target")} == {
            "provider": "builtin",
            "metric": "inflight",
            "currentValue": "15",
            "target": "5",
        }
        assert (scaling["currentReplicas"], scaling["desiredReplicas"]) == (1, 3)
        assert scaling["reason"] == "Autoscaling"
        assert scaling["lastScaleTime"] is not None
        active = condition(outcome, "ScalingActive")
        assert (active["status"], active["reason"]) == ("True", "Autoscaling")
        assert "1 -> 3 replicas" in active["message"]
        (event,) = rescaled_events(env)
        assert event.startswith("New size: 3 (was 1)")
        # The next read of the pods is due one interval later, whatever else is.
        assert outcome.requeue_after is not None
        assert outcome.requeue_after <= INTERVAL


async def test_pods_are_read_only_when_a_scrape_is_due(pods: Pods) -> None:
    async with reconcile_env(scaling_md(pods), settings=Settings(scale_interval=INTERVAL)) as env:
        (pod,) = await started(env, pods)
        first = env.now()
        await env.reconcile(at=first)
        assert pod.scrapes == 1
        pod.pending = 50  # would ask for the maximum, but no read is due yet

        await env.reconcile(at=first + timedelta(seconds=INTERVAL / 2))

        assert pod.scrapes == 1
        assert scales(env) == []
        # The account of the last read is carried between reads.
        active = condition(stored_status(env), "ScalingActive")
        assert (active["status"], active["reason"]) == ("True", "Autoscaling")

        await env.reconcile(at=first + timedelta(seconds=INTERVAL))

        assert pod.scrapes == 2
        # 10 per the metric; Gantry's default behavior adds at most 2 pods per 120 s.
        assert scales(env) == [3]
        assert "limited" in stored_status(env)["scaling"]["message"]


async def test_no_scale_up_while_added_pods_load_their_model(pods: Pods) -> None:
    fast = {"scaleUp": {"policies": [{"type": "Pods", "value": 8, "periodSeconds": 15}]}}
    async with reconcile_env(scaling_md(pods, maxReplicas=8, behavior=fast)) as env:
        (pod,) = await started(env, pods)
        pod.pending = 15
        await env.reconcile()
        assert scales(env) == [3]
        settle(env.fake, NAME)
        loading = [await add_pod(env, pods, n) for n in (2, 3)]
        for p in loading:
            p.model_ready = False
        pod.pending = 60  # far above target: 12 replicas by the metric alone

        outcome = await env.reconcile()

        assert scales(env) == [3], "no scale-up while the capacity asked for still loads"
        assert [p.scrapes for p in loading] == [0, 0], "a loading pod is not scraped"
        active = condition(outcome, "ScalingActive")
        assert (active["status"], active["reason"]) == ("True", "WaitingForModelLoad")
        assert f"{NAME}-2" in active["message"]
        assert f"{NAME}-3" in active["message"]

        for p in loading:
            p.model_ready = True
            p.pending = 60
        await env.reconcile()

        assert scales(env) == [3, 8]


async def test_a_serving_pod_without_metrics_holds_the_size_and_is_named(pods: Pods) -> None:
    async with reconcile_env(scaling_md(pods)) as env:
        await env.reconcile()
        env.fake.objects[f"{DEPLOYMENTS}/{NAME}"]["spec"]["replicas"] = 2
        settle(env.fake, NAME)
        quiet = await add_pod(env, pods, 1)
        broken = await add_pod(env, pods, 2)
        broken.metrics_status = 500
        quiet.pending = 0  # idle: the metric alone would scale down to 1

        outcome = await env.reconcile()

        assert scales(env) == [], "the size is held, not dropped"
        active = condition(outcome, "ScalingActive")
        assert (active["status"], active["reason"]) == ("False", "MetricUnavailable")
        assert f"{NAME}-2" in active["message"]
        assert "500" in active["message"]
        scaling = stored_status(env)["scaling"]
        assert scaling["podsWithoutMetrics"] == [f"{NAME}-2"]
        assert scaling["desiredReplicas"] == 2
        warnings = [
            o
            for path, o in env.fake.objects.items()
            if path.startswith(EVENTS) and o.get("reason") == "MetricUnavailable"
        ]
        assert [w["type"] for w in warnings] == ["Warning"]

        broken.metrics_status = 200
        await env.reconcile()

        active = condition(stored_status(env), "ScalingActive")
        assert active["status"] == "True", active


async def test_stabilization_window_survives_an_operator_restart(pods: Pods) -> None:
    window = {"scaleDown": {"stabilizationWindowSeconds": 300}}
    async with reconcile_env(scaling_md(pods, behavior=window)) as env:
        (pod,) = await started(env, pods)
        pod.pending = 15
        up = env.now()
        await env.reconcile(at=up)
        assert scales(env) == [3]
        settle(env.fake, NAME)
        for n in (2, 3):
            await add_pod(env, pods, n)
        # Load gone; a new operator process (nothing in memory) reads the pods.
        await env.reconciler.scaler.close()
        await env.reconciler.analysis.close()
        env.reconciler = Reconciler(env.kube, Settings(), OperatorMetrics())
        pod.pending = 0

        await env.reconcile(at=up + timedelta(seconds=120))

        assert scales(env) == [3], "the window started before the restart still holds"
        message = stored_status(env)["scaling"]["message"]
        assert "stabilized" in message, message

        await env.reconcile(at=up + timedelta(seconds=301))

        assert scales(env)[-1] < 3


@pytest.mark.parametrize(
    ("scaling", "provider", "reason"),
    [
        pytest.param({"minReplicas": 2, "maxReplicas": 2}, None, "FixedReplicas", id="fixed"),
        pytest.param(
            {"provider": "hpa", "metric": {"type": "cpu", "target": 80}},
            "hpa",
            "AwaitingMetrics",  # the fake has no HPA controller: the HPA has no status yet
            id="hpa",
        ),
    ],
)
async def test_other_sizers_never_scrape_the_pods(
    pods: Pods, scaling: dict[str, Any], provider: str | None, reason: str
) -> None:
    async with reconcile_env(scaling_md(pods, **scaling)) as env:
        (pod,) = await started(env, pods)
        pod.pending = 100
        before = scales(env)

        outcome = await env.reconcile()

        assert pod.scrapes == 0
        assert scales(env) == before
        assert (stored_status(env).get("scaling") or {}).get("provider") == provider
        assert condition(outcome, "ScalingActive")["reason"] == reason
        # Nothing of the builtin scaler's cadence: the requeue is the rollout's own.
        assert outcome.requeue_after is None


async def test_gpus_held_by_running_pods_are_counted(pods: Pods) -> None:
    gpu = spec(resources={"gpu": {"count": 2}})
    async with reconcile_env(md(gpu)) as env:
        await env.reconcile()
        settle(env.fake, NAME)
        pod = env.fake.objects[f"{DEPLOYMENTS}/{NAME}"]["spec"]["template"]
        env.fake.put(
            f"{PODS}/{NAME}-1",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{NAME}-1", "namespace": NS, **pod["metadata"]},
                "spec": pod["spec"],
                "status": {"phase": "Running", "podIP": "127.0.0.9"},
            },
        )
        t = env.now()
        await env.reconcile(at=t)
        await env.reconcile(at=t + timedelta(seconds=30))

        assert stored_status(env)["gpus"] == {"allocated": 2, "resource": "nvidia.com/gpu"}
        registry = env.reconciler.metrics.registry
        (revision,) = {pod["metadata"]["labels"]["serving.gantry.dev/revision"]}
        labels = {
            "namespace": NS,
            "modeldeployment": NAME,
            "revision": revision,
            "resource": "nvidia.com/gpu",
        }
        assert registry.get_sample_value("gantry_gpu_seconds_total", labels) == 60.0
        env.reconciler.forget(NS, NAME)
        assert registry.get_sample_value("gantry_gpu_seconds_total", labels) is None


async def test_the_stable_is_frozen_during_a_canary_and_scaled_again_after(pods: Pods) -> None:
    canary = {"strategy": "canary", "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
    body = scaling_md(pods)
    body["spec"]["rollout"] = canary
    async with reconcile_env(body) as env:
        stable = await started(env, pods, 2)
        env.fake.objects[f"{DEPLOYMENTS}/{NAME}"]["spec"]["replicas"] = 2
        settle(env.fake, NAME)
        for p in stable:
            p.pending = 5  # on target
        await env.reconcile()
        scraped = [p.scrapes for p in stable]
        assert scraped == [1, 1]
        assert scales(env) == []
        # A new model version: the canary starts beside the stable.
        env.fake.objects[MD_PATH]["spec"]["model"]["version"] = "4"
        await env.reconcile()
        deployments = {p.rsplit("/", 1)[1] for p in env.fake.objects if p.startswith(DEPLOYMENTS)}
        (canary_name,) = deployments - {NAME}
        settle(env.fake, canary_name)
        await add_pod(env, pods, 5, deployment=canary_name, version="4")
        for p in stable:
            p.pending = 50  # far above target: the stable would grow if it were not frozen

        for _ in range(3):
            outcome = await env.reconcile()

        assert [p.scrapes for p in stable] == scraped, "a frozen stable is not read"
        assert scales(env) == [], "the stable's size does not change during the canary"
        active = condition(outcome, "ScalingActive")
        assert (active["status"], active["reason"]) == ("False", "FrozenForCanary")
        assert stored_status(env)["scaling"]["reason"] == "FrozenForCanary"

        # Promoted: the canary grows to the stable's size, then becomes the stable...
        env.fake.objects[MD_PATH]["metadata"]["annotations"] = {
            "serving.gantry.dev/promote": "true"
        }
        await env.reconcile()
        settle(env.fake, canary_name)
        grown = [p for p in pods.by_ip.values() if p.version == "4"]
        grown.append(await add_pod(env, pods, 6, deployment=canary_name, version="4"))
        for p in grown:
            p.pending = 20
        for _ in range(3):
            await env.reconcile()
            if stored_status(env)["stable"]["deployment"] == canary_name:
                break
        assert stored_status(env)["stable"]["deployment"] == canary_name
        # ... and the builtin scaler sizes it, from the size it was promoted at.
        await env.reconcile()
        new_scales = [
            r.body["spec"]["replicas"]
            for r in env.fake.log
            if r.sub == "scale" and r.path == f"{DEPLOYMENTS}/{canary_name}/scale"
        ]
        assert new_scales[-1] == 4, new_scales
        assert min(new_scales[new_scales.index(2) :]) == 2, "no dip below the promoted size"
        assert all(p.scrapes > 0 for p in grown)
        assert stored_status(env)["scaling"]["reason"] in ("Autoscaling", "AtMaxReplicas")
