"""The bench's bare baseline sends what the reconciler writes on a first reconcile.

Both run against the project's fake API server (tests/reconciler/fake_apiserver.py): the
comparison needs the exact request list of each, which the real API server does not give
per client. The bench itself then runs the baseline against the real control plane.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bench.operator.bare import first_reconcile_writes
from gantry.kube import KubeClient
from tests.reconciler.fake_apiserver import FakeApiServer
from tests.reconciler.reconcile_env import MD_PATH, T0, md, reconcile_env, spec

pytestmark = pytest.mark.timeout(30)


def shape(fake: FakeApiServer) -> list[tuple[str, str, str]]:
    return [(r.method, r.path, r.content_type) for r in fake.writes()]


def applied(fake: FakeApiServer) -> list[Any]:
    return [r.body for r in fake.writes() if r.content_type.startswith("application/apply")]


@pytest.mark.parametrize(
    "spec_",
    [
        pytest.param(spec(replicas=1), id="fixed-one"),
        pytest.param(spec(replicas=3), id="with-pdb"),
        pytest.param(spec(scaling={"minReplicas": 2, "maxReplicas": 4}), id="autoscaled"),
    ],
)
async def test_bare_writes_match_the_reconcilers_first_reconcile(spec_: dict[str, Any]) -> None:
    async with reconcile_env(md(spec_)) as env:
        body = env.body()
        await env.reconcile(at=T0)
        operator = env.fake

    bare = FakeApiServer()
    bare.put(MD_PATH, copy.deepcopy(body))
    async with bare.serving() as config, KubeClient(config, field_manager="gantry") as kube:
        sent = await first_reconcile_writes(kube, bare.objects[MD_PATH], now=T0)

    assert shape(bare) == shape(operator)
    assert applied(bare) == applied(operator)
    assert sent == len(bare.writes())
