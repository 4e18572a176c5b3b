"""status.endpoints: the main Service's DNS name in the cluster's domain, with the runtime's ports.

The reconciler and the bench's bare baseline both report them through this one pure function.
"""

from __future__ import annotations

from typing import Any

import pytest

from gantry.api.plan import Owner
from gantry.api.spec import ModelDeploymentSpec
from gantry.reconciler.facts import service_endpoints
from gantry.render import service_name

MODEL = {"name": "resnet50", "uri": "s3://models/resnet50", "version": "3"}


def owner(name: str) -> Owner:
    return Owner(
        name=name, namespace="ml", uid="1b4e28ba-2fa1-11d2-883f-0016d3cca427", generation=1
    )


@pytest.mark.parametrize(
    ("name", "runtime", "domain", "http", "grpc", "metrics"),
    [
        pytest.param(
            "resnet", {}, "cluster.local",
            "http://resnet.ml.svc.cluster.local:8000",
            "resnet.ml.svc.cluster.local:8001",
            "http://resnet.ml.svc.cluster.local:8002/metrics",
            id="default-ports",
        ),
        pytest.param(
            "resnet", {"ports": {"http": 9000, "grpc": 9001, "metrics": 9100}}, "corp.example",
            "http://resnet.ml.svc.corp.example:9000",
            "resnet.ml.svc.corp.example:9001",
            "http://resnet.ml.svc.corp.example:9100/metrics",
            id="own-ports-and-domain",
        ),
    ],
)  # fmt: skip
def test_endpoints_name_the_service_and_ports(
    name: str, runtime: dict[str, Any], domain: str, http: str, grpc: str, metrics: str
) -> None:
    spec = ModelDeploymentSpec.model_validate({"model": MODEL, "runtime": runtime})
    got = service_endpoints(owner(name), spec, domain)
    assert (got.http, got.grpc, got.metrics) == (http, grpc, metrics)


def test_a_name_that_is_no_dns_label_uses_the_services_name() -> None:
    # A dotted ModelDeployment name is no DNS label; its Service (and so its host) is renamed.
    md = owner("a.b")
    spec = ModelDeploymentSpec.model_validate({"model": MODEL})
    host = f"{service_name(md)}.ml.svc.cluster.local"
    assert service_name(md) != "a.b"
    assert service_endpoints(md, spec, "cluster.local").grpc == f"{host}:8001"
