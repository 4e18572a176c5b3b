"""Loading, output inference and the batched callable, in process (needs torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gantry.runtime.config import RuntimeConfig, TensorSpec, build_config
from gantry.runtime.errors import ModelLoadError
from tests.support.runtime_proc import requires_runtime, write_mlp

pytestmark = [
    pytest.mark.runtime,
    requires_runtime,
    pytest.mark.filterwarnings("ignore:.*torch.jit:FutureWarning"),
]


def config(uri: Path, **layer: Any) -> RuntimeConfig:
    base = {"model": {"uri": str(uri)}, "inputs": [{"name": "x", "shape": [4]}]}
    return build_config(base, layer)


def scripted(tmp_path: Path, module: Any) -> Path:
    import torch

    path = tmp_path / "m.pt"
    torch.jit.script(module).save(str(path))
    return path


def test_outputs_inferred_from_one_run(tmp_path: Path) -> None:
    from gantry.runtime.loader import load_servable

    path = write_mlp(tmp_path / "mlp.pt", in_features=4, out_features=3)
    servable = load_servable(config(path), tmp_path)
    assert servable.outputs == (TensorSpec(name="output__0", dtype="float32", shape=(3,)),)


def test_variable_dims_become_minus_one(tmp_path: Path) -> None:
    import torch

    from gantry.runtime.loader import load_servable

    class Pool(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x * 2, x.mean(dim=1)

    path = scripted(tmp_path, Pool())
    servable = load_servable(
        config(path, inputs=[{"name": "x", "shape": [-1, 5]}], outputs=[]), tmp_path
    )
    assert [(o.name, o.shape) for o in servable.outputs] == [
        ("output__0", (-1, 5)),
        ("output__1", (5,)),
    ]


def test_declared_outputs_are_checked(tmp_path: Path) -> None:
    from gantry.runtime.loader import load_servable

    path = write_mlp(tmp_path / "mlp.pt")
    two = [{"name": "a", "shape": [3]}, {"name": "b", "shape": [3]}]
    with pytest.raises(ModelLoadError, match="declares 2 outputs, the model returns 1"):
        load_servable(config(path, outputs=two), tmp_path)
    wrong = [{"name": "a", "dtype": "int64", "shape": [3]}]
    with pytest.raises(ModelLoadError, match="config says int64, the model returns float32"):
        load_servable(config(path, outputs=wrong), tmp_path)


def test_shape_mismatch_is_a_load_error(tmp_path: Path) -> None:
    from gantry.runtime.loader import load_servable

    path = write_mlp(tmp_path / "mlp.pt", in_features=4)
    with pytest.raises(ModelLoadError, match=r"model failed on example inputs \{'x': \[2, 7\]\}"):
        load_servable(config(path, inputs=[{"name": "x", "shape": [7]}]), tmp_path)


def test_batch_dimension_must_survive(tmp_path: Path) -> None:
    import torch

    from gantry.runtime.loader import load_servable

    class Total(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum()

    with pytest.raises(ModelLoadError, match="outputs must keep the batch dimension first"):
        load_servable(config(scripted(tmp_path, Total())), tmp_path)


def test_cuda_without_a_gpu_is_a_load_error(tmp_path: Path) -> None:
    import torch

    from gantry.runtime.loader import load_servable

    if torch.cuda.is_available():
        pytest.skip("a GPU is present; the error path needs a machine without one")
    with pytest.raises(ModelLoadError, match=r"torch\.cuda\.is_available\(\) is False"):
        load_servable(config(write_mlp(tmp_path / "m.pt"), device="cuda"), tmp_path)


def test_batched_callable_splits_per_request(tmp_path: Path) -> None:
    import torch

    from gantry.runtime.infer import BatchedInference
    from gantry.runtime.loader import load_servable

    class Score(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"double": x * 2, "total": x.sum(dim=1)}

    servable = load_servable(config(scripted(tmp_path, Score())), tmp_path)
    assert [(o.name, o.shape) for o in servable.outputs] == [("double", (4,)), ("total", (1,))]
    infer = BatchedInference(servable)
    rng = np.random.default_rng(0)
    requests = [{"x": rng.standard_normal((n, 4), dtype=np.float32)} for n in (1, 3, 2)]
    responses = infer(requests)
    assert len(responses) == 3
    for request, response in zip(requests, responses, strict=True):
        assert np.allclose(response["double"], request["x"] * 2)
        # A [batch] output is served as [batch, 1].
        assert np.allclose(response["total"], request["x"].sum(axis=1, keepdims=True), atol=1e-5)
    [single] = infer(requests[1:2])
    assert single["double"].shape == (3, 4)


@pytest.mark.gpu
def test_cuda_model_serves_numpy_in_and_out(tmp_path: Path) -> None:
    import torch

    from gantry.runtime.infer import BatchedInference
    from gantry.runtime.loader import load_servable

    if not torch.cuda.is_available():
        pytest.skip("torch.cuda.is_available() is False: no CUDA GPU on this machine")
    path = write_mlp(tmp_path / "m.pt")
    servable = load_servable(config(path, device="cuda"), tmp_path)
    x = np.ones((2, 4), dtype=np.float32)
    [out] = BatchedInference(servable)([{"x": x}])
    reference = torch.jit.load(str(path))(torch.from_numpy(x)).detach().numpy()
    assert np.allclose(out["output__0"], reference, atol=1e-4)


@pytest.mark.parametrize(
    ("transport", "shapes", "inline"),
    [
        ("auto", [(512,), (10,)], True),  # 2 KiB + 40 B per sample
        ("auto", [(3, 224, 224), (1000,)], False),  # an image: 588 KiB
        ("auto", [(-1, 4), (3,)], False),  # variable: size unknown
        ("inline", [(3, 224, 224)], True),
        ("shared_memory", [(4,)], False),
    ],
)
def test_tensor_transport_choice(
    transport: str, shapes: list[tuple[int, ...]], inline: bool
) -> None:
    from gantry.runtime.server import inline_tensors

    specs = [TensorSpec(name=f"t{i}", shape=shape) for i, shape in enumerate(shapes)]
    assert inline_tensors(transport, specs) is inline
