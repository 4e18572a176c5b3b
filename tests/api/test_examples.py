"""Every manifest in examples/ is a valid ModelDeployment that renders."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gantry.api.spec import API_VERSION, KIND, ModelDeploymentSpec
from gantry.render.revision import revision

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_the_expected_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {"resnet-gpu.yaml", "mig-small.yaml", "cpu-runtime.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_validates(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert docs, path
    for doc in docs:
        assert (doc["apiVersion"], doc["kind"]) == (API_VERSION, KIND)
        assert doc["metadata"]["name"]
        spec = ModelDeploymentSpec.model_validate(doc["spec"])
        assert revision(spec)


def test_examples_cover_gpu_mig_and_cpu() -> None:
    specs = {
        p.stem: ModelDeploymentSpec.model_validate(yaml.safe_load(p.read_text())["spec"])
        for p in EXAMPLES
    }
    resnet = specs["resnet-gpu"]
    assert resnet.resources.gpu is not None
    assert resnet.resources.gpu.product == "NVIDIA-H100-80GB-HBM3"
    assert resnet.model.uri.startswith("s3://")
    assert (resnet.scaling.min_replicas, resnet.scaling.max_replicas) == (1, 4)
    assert resnet.scaling.metric.type == "queueTimeMs"
    assert resnet.rollout.strategy == "canary"
    mig = specs["mig-small"].resources.gpu
    assert mig is not None
    assert mig.mig is not None
    assert mig.mig.profile == "1g.10gb"
    cpu = specs["cpu-runtime"]
    assert cpu.resources.gpu is None
    assert cpu.runtime.command == ["gantry", "serve"]
