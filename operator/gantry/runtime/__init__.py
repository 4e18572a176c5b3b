"""The reference serving runtime: a torch model behind a real Triton server.

``gantry serve`` (:func:`gantry.runtime.cli.main`, also ``python -m
gantry.runtime``) loads a TorchScript archive or an ``nn.Module`` plus state
dict, binds it into Triton Inference Server through PyTriton with dynamic
batching, serves KServe v2 HTTP/gRPC and Prometheus metrics, reports a model
that fails to load through Triton's repository index, and drains in-flight
requests on SIGTERM.

Importing this package (or :mod:`gantry.runtime.cli`, :mod:`gantry.runtime.config`)
does not import torch or pytriton; they load only when the runtime serves.

Modules: ``config`` (settings), ``cli`` (flags), ``app`` (process lifecycle),
``server`` (Triton lifecycle), ``loader``/``fetch`` (model), ``infer`` (the
batched callable), ``placeholder`` (load failures), ``libpython`` (the stub's
libpython pitfall).
"""

from gantry.runtime.config import (
    BatchingConfig,
    ModelSource,
    RuntimeConfig,
    ServerConfig,
    TensorSpec,
)
from gantry.runtime.errors import ConfigError, GantryRuntimeError, ModelFetchError, ModelLoadError

__all__ = [
    "BatchingConfig",
    "ConfigError",
    "GantryRuntimeError",
    "ModelFetchError",
    "ModelLoadError",
    "ModelSource",
    "RuntimeConfig",
    "ServerConfig",
    "TensorSpec",
]
