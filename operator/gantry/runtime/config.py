"""Configuration of the serving runtime: what to load and how to serve it.

One pydantic model, :class:`RuntimeConfig`, assembled from four layers, later
ones winning: the defaults, a YAML/JSON file (``--config``), the ``GANTRY_*``
environment variables the operator sets on the server container, and CLI flags.
Only this module and ``cli`` know about the layering; everything else takes a
validated :class:`RuntimeConfig`.

Tensor shapes never include the batch dimension: the runtime always serves a
batching model (``max_batch_size >= 1``), so clients send ``[batch, *shape]``
whether or not the dynamic batcher is on, and turning it off changes only how
Triton schedules requests, never the API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gantry.runtime.errors import ConfigError

__all__ = [
    "DTYPES",
    "INLINE_MAX_BYTES",
    "BatchingConfig",
    "ModelSource",
    "RuntimeConfig",
    "ServerConfig",
    "TensorSpec",
    "build_config",
    "env_overrides",
    "load_config_file",
]

#: Tensor dtypes the runtime can serve, by numpy/torch name.
DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
DType = Literal["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]

_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"

#: Per-sample bytes (all inputs plus all outputs) up to which ``auto`` inlines tensors.
INLINE_MAX_BYTES = 16 * 1024


class _Strict(BaseModel):
    """Frozen, and unknown keys are errors: a typo must not be silently ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TensorSpec(_Strict):
    """One input or output tensor, per sample (the batch dimension excluded)."""

    name: str = Field(pattern=_NAME_PATTERN, max_length=128)
    dtype: DType = "float32"
    shape: tuple[int, ...] = Field(
        min_length=1, max_length=8, description="Per-sample shape; -1 marks a variable dim."
    )

    @model_validator(mode="after")
    def _dims_valid(self) -> TensorSpec:
        if any(d == 0 or d < -1 for d in self.shape):
            raise ValueError(f"shape {list(self.shape)}: dims must be positive or -1")
        return self


class BatchingConfig(_Strict):
    """How Triton groups requests before they reach the model."""

    dynamic: bool = Field(default=True, description="Enable Triton's dynamic batcher.")
    max_batch_size: int = Field(default=64, ge=1, le=4096)
    preferred_batch_sizes: tuple[int, ...] = Field(default=(), max_length=16)
    max_queue_delay_us: int = Field(default=0, ge=0, le=10_000_000)

    @model_validator(mode="after")
    def _preferred_within_max(self) -> BatchingConfig:
        bad = [b for b in self.preferred_batch_sizes if not 1 <= b <= self.max_batch_size]
        if bad:
            raise ValueError(
                f"preferred_batch_sizes {bad} must lie in [1, max_batch_size={self.max_batch_size}]"
            )
        return self


class ModelSource(_Strict):
    """Where the weights come from and how to turn them into a module."""

    name: str = Field(default="model", pattern=_NAME_PATTERN, max_length=128)
    version: int = Field(default=1, ge=1, le=2**31 - 1)
    uri: str = Field(
        min_length=1,
        max_length=4096,
        description=(
            "A file or model directory: a local path, file://, http(s)://. A directory is "
            "searched for <version>/model.pt, then model.pt (Triton's repository layout)."
        ),
    )
    format: Literal["torchscript", "pytorch"] = Field(
        default="torchscript",
        description="torchscript: torch.jit.load. pytorch: `module` builds an nn.Module "
        "and the file is its state dict.",
    )
    module: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        description="`package.module:attr`, a class or factory returning an nn.Module.",
    )
    module_kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _module_matches_format(self) -> ModelSource:
        if self.format == "pytorch" and self.module is None:
            raise ValueError("format 'pytorch' needs `module` (package.module:attr)")
        if self.format == "torchscript" and (self.module is not None or self.module_kwargs):
            raise ValueError("`module`/`module_kwargs` apply only to format 'pytorch'")
        return self


class ServerConfig(_Strict):
    """Triton's endpoints and the shutdown bounds."""

    host: str = Field(default="0.0.0.0", min_length=1, max_length=255)
    http_port: int = Field(default=8000, ge=1, le=65535)
    grpc_port: int = Field(default=8001, ge=1, le=65535)
    metrics_port: int = Field(default=8002, ge=1, le=65535)
    drain_timeout_s: float = Field(
        default=25.0, gt=0, le=3600, description="Upper bound on waiting for in-flight requests."
    )
    exit_timeout_s: int = Field(
        default=5,
        ge=1,
        le=600,
        description="Triton's own --exit-timeout-secs once drained: only idle keep-alive "
        "connections remain, which would otherwise hold shutdown for Triton's default 30 s.",
    )
    tensor_transport: Literal["auto", "shared_memory", "inline"] = Field(
        default="auto",
        description="How tensors cross from Triton's Python stub to this process. "
        "shared_memory: PyTriton's tensor store (one manager round trip per block); "
        "inline: serialized into the message (cheaper for small tensors); "
        f"auto: inline when every sample's tensors are known and <= {INLINE_MAX_BYTES} bytes.",
    )

    @model_validator(mode="after")
    def _ports_distinct(self) -> ServerConfig:
        if len({self.http_port, self.grpc_port, self.metrics_port}) != 3:
            raise ValueError("http_port, grpc_port and metrics_port must differ")
        return self


class RuntimeConfig(_Strict):
    """Everything the runtime needs; see the module docstring for the layering."""

    model: ModelSource
    inputs: tuple[TensorSpec, ...] = Field(min_length=1, max_length=64)
    outputs: tuple[TensorSpec, ...] = Field(
        default=(), max_length=64, description="Empty: inferred by running the model once."
    )
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    device: str = Field(default="cpu", pattern=r"^(cpu|auto|cuda(:\d+)?)$")
    torch_threads: int | None = Field(default=None, ge=1, le=1024)
    instances: int = Field(
        default=1, ge=1, le=64, description="Model instances (parallel infer callables)."
    )
    download_timeout_s: float = Field(default=600.0, gt=0, le=86400)
    exit_on_load_error: bool = Field(
        default=False,
        description="Exit non-zero when the model cannot be loaded, instead of keeping "
        "Triton up with the failure visible in its repository index.",
    )

    @model_validator(mode="after")
    def _names_unique(self) -> RuntimeConfig:
        names = [t.name for t in (*self.inputs, *self.outputs)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tensor names must be unique across inputs and outputs: {dupes}")
        return self


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a plain mapping.

    Raises:
        ConfigError: the file is unreadable, not YAML/JSON, or not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path}: not valid {path.suffix or 'YAML'}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping")
    return data


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``GANTRY_*`` variables the operator sets on the server container.

    ``GANTRY_MODEL_REPOSITORY`` is where the init container put the model, so it
    wins over ``GANTRY_MODEL_URI`` (which may be an ``s3://`` URI already fetched).
    """
    model: dict[str, Any] = {}
    server: dict[str, Any] = {}
    if name := environ.get("GANTRY_MODEL_NAME"):
        model["name"] = name
    if version := environ.get("GANTRY_MODEL_VERSION"):
        model["version"] = version
    if fmt := environ.get("GANTRY_MODEL_FORMAT"):
        model["format"] = fmt
    if module := environ.get("GANTRY_MODEL_MODULE"):
        model["module"] = module
    if repository := environ.get("GANTRY_MODEL_REPOSITORY"):
        model["uri"] = str(Path(repository) / environ.get("GANTRY_MODEL_NAME", ""))
    elif uri := environ.get("GANTRY_MODEL_URI"):
        model["uri"] = uri
    for key, var in (("http_port", "HTTP"), ("grpc_port", "GRPC"), ("metrics_port", "METRICS")):
        if value := environ.get(f"GANTRY_{var}_PORT"):
            server[key] = value
    out: dict[str, Any] = {}
    if model:
        out["model"] = model
    if server:
        out["server"] = server
    return out


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = _deep_merge(below, value)
        else:
            merged[key] = value
    return merged


def build_config(*layers: Mapping[str, Any]) -> RuntimeConfig:
    """Merge config layers (later wins, nested mappings merged) and validate.

    Raises:
        ConfigError: validation failed; the message lists each bad field by path.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _deep_merge(merged, layer)
    try:
        return RuntimeConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid runtime config: {problems}") from exc
