"""The inference callable PyTriton runs for every batch Triton schedules.

Triton's dynamic batcher hands the Python backend a list of requests; PyTriton
forwards that list to this process. :class:`BatchedInference` turns it into one
forward pass: concatenate each input along the batch axis, wrap it with
``torch.from_numpy`` (no copy), run the module under ``torch.inference_mode``
(no autograd bookkeeping), and slice the outputs back per request (views, no
copy). Only the concatenation copies, and only when there is more than one
request; PyTriton's ``@batch`` decorator does the same work with more checks per
call, which this path does once at load time instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch

from gantry.runtime.config import TensorSpec
from gantry.runtime.loader import Servable, flatten_outputs, numpy_dtype

__all__ = ["BatchedInference", "Request"]

Array = npt.NDArray[Any]

# PyTriton hands us inputs that may live in read-only shared memory; the model
# never writes its inputs (inference_mode), so torch's warning about wrapping a
# non-writable array is noise, and copying to silence it would cost a full copy.
warnings.filterwarnings(
    "ignore", message="The given NumPy array is not writable", category=UserWarning
)


class Request(Protocol):
    """What the callable needs from a PyTriton request: inputs by name."""

    def __getitem__(self, name: str, /) -> Array: ...


class BatchedInference:
    """Run a :class:`~gantry.runtime.loader.Servable` on a list of Triton requests.

    Args:
        servable: the loaded module and its tensors.
    """

    def __init__(self, servable: Servable) -> None:
        self._module = servable.module
        self._device = servable.device
        self._inputs: tuple[TensorSpec, ...] = servable.inputs
        self._output_names = [o.name for o in servable.outputs]
        self._output_dtypes = [numpy_dtype(o.dtype) for o in servable.outputs]
        self._on_cpu = servable.device.type == "cpu"

    def __call__(self, requests: Sequence[Request]) -> list[dict[str, Array]]:
        """Infer a batch of requests; one output mapping per request, in order."""
        first = self._inputs[0].name
        sizes = [int(r[first].shape[0]) for r in requests]
        if len(requests) == 1:
            arrays = [requests[0][spec.name] for spec in self._inputs]
        else:
            arrays = [np.concatenate([r[spec.name] for r in requests]) for spec in self._inputs]
        outputs = self.forward(arrays)
        if len(requests) == 1:
            return [dict(zip(self._output_names, outputs, strict=True))]
        bounds = np.cumsum(sizes)[:-1]
        pieces = [np.split(out, bounds) for out in outputs]
        return [
            {name: pieces[j][i] for j, name in enumerate(self._output_names)}
            for i in range(len(requests))
        ]

    def forward(self, arrays: Sequence[Array]) -> list[Array]:
        """One forward pass on batched numpy inputs, returning numpy outputs."""
        with torch.inference_mode():
            tensors = [torch.from_numpy(a) for a in arrays]
            if not self._on_cpu:
                tensors = [t.to(self._device, non_blocking=True) for t in tensors]
            result = self._module(*tensors)
            flat = flatten_outputs(result, self._output_names)
            out: list[Array] = []
            for tensor, dtype in zip(flat, self._output_dtypes, strict=True):
                array: Array = tensor.numpy(force=True) if not self._on_cpu else tensor.numpy()
                if array.ndim == 1:
                    # A [batch] output is served as [batch, 1]: Triton needs per-sample dims.
                    array = array[:, None]
                out.append(array.astype(dtype, copy=False))
            return out
