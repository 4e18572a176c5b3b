"""Load a torch model and work out the tensors it serves.

Two formats: a TorchScript archive (``torch.jit.load``), or a plain
``nn.Module`` built from an import path (``package.module:attr``) whose state
dict is the model file. Either way the module is put in eval mode on the chosen
device and run once on zeros of the declared input shapes: that run both
validates the model against its config and, when no outputs are declared,
tells us their names, dtypes and shapes.

Every failure becomes a :class:`~gantry.runtime.errors.ModelLoadError` whose
message says what was being done, so Triton can report it as the model's load
failure.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from gantry.runtime.config import DType, RuntimeConfig, TensorSpec
from gantry.runtime.errors import ModelLoadError
from gantry.runtime.fetch import resolve_model_file

__all__ = ["Servable", "flatten_outputs", "load_servable", "numpy_dtype", "torch_dtype"]

_LOG = logging.getLogger(__name__)

_TORCH_DTYPES: dict[str, torch.dtype] = {
    "bool": torch.bool,
    "uint8": torch.uint8,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
}
_NAMES_BY_TORCH = {v: k for k, v in _TORCH_DTYPES.items()}

ModelFn = Callable[..., Any]

# torch.jit.load carries no annotations; this is its documented signature.
_jit_load = cast(Callable[..., torch.jit.ScriptModule], torch.jit.load)


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype for one of :data:`~gantry.runtime.config.DTYPES`."""
    return _TORCH_DTYPES[name]


def numpy_dtype(name: str) -> np.dtype[Any]:
    """The numpy dtype for one of :data:`~gantry.runtime.config.DTYPES`."""
    return np.dtype(name)


@dataclass(frozen=True)
class Servable:
    """A loaded model with its resolved input and output tensors."""

    module: ModelFn
    device: torch.device
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def _select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {name!r} requested but torch.cuda.is_available() is False")
    return torch.device(name)


def _import_factory(path: str) -> Callable[..., Any]:
    module_name, _, attr_path = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for attr in attr_path.split("."):
            obj = getattr(obj, attr)
    except Exception as exc:  # an import runs arbitrary code: report whatever it raises
        raise ModelLoadError(
            f"cannot import model module {path}: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(obj):
        raise ModelLoadError(f"model module {path} is not callable")
    return cast(Callable[..., Any], obj)


def _load_module(config: RuntimeConfig, path: Path, device: torch.device) -> torch.nn.Module:
    source = config.model
    if source.format == "torchscript":
        try:
            with warnings.catch_warnings():
                # torch >= 2.10 deprecates TorchScript for torch.export; it is still the
                # format ModelDeployment and Triton's PyTorch backend serve.
                warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
                module = _jit_load(str(path), map_location=device)
        except Exception as exc:  # torch raises RuntimeError, ValueError, zip errors...
            raise ModelLoadError(
                f"failed to load TorchScript model {path}: {type(exc).__name__}: {exc}"
            ) from exc
        return cast(torch.nn.Module, module.eval())
    assert source.module is not None  # guaranteed by ModelSource validation
    factory = _import_factory(source.module)
    try:
        built = factory(**source.module_kwargs)
    except Exception as exc:
        raise ModelLoadError(
            f"model factory {source.module} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(built, torch.nn.Module):
        raise ModelLoadError(f"{source.module} returned {type(built).__name__}, not an nn.Module")
    try:
        state = torch.load(str(path), map_location=device, weights_only=True)
        built.load_state_dict(state)
    except Exception as exc:
        raise ModelLoadError(
            f"failed to load state dict {path} into {source.module}: {type(exc).__name__}: {exc}"
        ) from exc
    return built.to(device).eval()


def flatten_outputs(result: Any, names: Sequence[str] | None) -> list[torch.Tensor]:
    """The model's outputs as a list, in the order of ``names``.

    Args:
        result: what the module returned: a tensor, a tuple/list of tensors or
            a mapping from name to tensor.
        names: output names; required to order a mapping, ignored otherwise.

    Raises:
        ModelLoadError: the result is none of the above, or a mapping lacks a name.
    """
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in result):
        return list(result)
    if isinstance(result, Mapping) and all(isinstance(t, torch.Tensor) for t in result.values()):
        keys = list(names) if names else list(result)
        missing = [k for k in keys if k not in result]
        if missing:
            raise ModelLoadError(f"model output mapping lacks {missing}; it has {list(result)}")
        return [result[k] for k in keys]
    raise ModelLoadError(f"model returned {type(result).__name__}; expected tensors")


def _example_run(
    module: ModelFn, inputs: Sequence[TensorSpec], device: torch.device, *, batch: int, fill: int
) -> Any:
    tensors = [
        torch.zeros(
            (batch, *(fill if d == -1 else d for d in spec.shape)), dtype=torch_dtype(spec.dtype)
        ).to(device)
        for spec in inputs
    ]
    with torch.inference_mode():
        return module(*tensors)


def _resolve_outputs(
    module: ModelFn,
    inputs: Sequence[TensorSpec],
    declared: Sequence[TensorSpec],
    device: torch.device,
) -> tuple[TensorSpec, ...]:
    variable = any(d == -1 for spec in inputs for d in spec.shape)
    batch = 2  # not 1: a model that squeezes the batch dimension must fail here, not in serving
    try:
        first = _example_run(module, inputs, device, batch=batch, fill=2)
        # Variable input dims: a second size tells which output dims follow them.
        second = _example_run(module, inputs, device, batch=batch, fill=3) if variable else first
    except Exception as exc:
        shapes = {s.name: [batch, *s.shape] for s in inputs}
        raise ModelLoadError(
            f"model failed on example inputs {shapes}: {type(exc).__name__}: {exc}"
        ) from exc
    mapping = isinstance(first, Mapping)
    names = [s.name for s in declared] if declared else None
    a, b = flatten_outputs(first, names), flatten_outputs(second, names)
    if names is None:
        names = list(first) if mapping else [f"output__{i}" for i in range(len(a))]
    if declared and len(declared) != len(a):
        raise ModelLoadError(f"config declares {len(declared)} outputs, the model returns {len(a)}")
    resolved = []
    for i, (name, x, y) in enumerate(zip(names, a, b, strict=True)):
        if x.dim() == 0 or x.shape[0] != batch:
            raise ModelLoadError(
                f"output {name} has shape {list(x.shape)} for batch {batch}: "
                "outputs must keep the batch dimension first"
            )
        dtype = _NAMES_BY_TORCH.get(x.dtype)
        if dtype is None:
            raise ModelLoadError(f"output {name} has unsupported dtype {x.dtype}")
        shape = tuple(
            dx if dx == dy else -1 for dx, dy in zip(x.shape[1:], y.shape[1:], strict=True)
        )
        inferred = TensorSpec(name=name, dtype=cast(DType, dtype), shape=shape or (1,))
        if declared and declared[i].dtype != inferred.dtype:
            raise ModelLoadError(
                f"output {name}: config says {declared[i].dtype}, the model returns {dtype}"
            )
        resolved.append(declared[i] if declared else inferred)
    return tuple(resolved)


def load_servable(config: RuntimeConfig, download_dir: Path) -> Servable:
    """Fetch, load and validate the model described by ``config``.

    Raises:
        ModelLoadError: any step failed (``ModelFetchError`` for the file itself).
    """
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    device = _select_device(config.device)
    path = resolve_model_file(
        config.model.uri,
        version=config.model.version,
        download_dir=download_dir,
        timeout_s=config.download_timeout_s,
    )
    _LOG.info("loading %s model from %s onto %s", config.model.format, path, device)
    module = _load_module(config, path, device)
    outputs = _resolve_outputs(module, config.inputs, config.outputs, device)
    _LOG.info("inputs %s; outputs %s", list(config.inputs), list(outputs))
    return Servable(module=module, device=device, inputs=config.inputs, outputs=outputs)
