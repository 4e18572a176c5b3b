"""Triton's lifecycle around one model: start, serve, drain, stop.

The model is bound through PyTriton into a *local* model repository (PyTriton's
``local_model_store`` policy) rather than pushed through Triton's load API. The
reason is observability: Triton's repository index (``POST /v2/repository/index``)
lists only models that live in a repository directory, with their ``state`` and,
on failure, the ``reason``; a model loaded from in-memory files is invisible
there. With the model in the repository, the operator's health probe reads
``READY``, ``UNLOADING`` or Triton's load-failure message from one place.

Graceful stop (SIGTERM), measured on this stack: unloading a model makes Triton
refuse new requests for it at once while in-flight (and queued) ones finish;
the index shows ``UNLOADING`` until the last one is done, then ``UNAVAILABLE``.
So draining is: unload, wait for that state (bounded), then stop tritonserver.
Its ``--exit-timeout-secs`` is kept short because by then only idle keep-alive
connections remain, and tritonserver would otherwise wait its default 30 s for
clients to hang up.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from pytriton.model_config.common import DynamicBatcher
from pytriton.model_config.model_config import ModelConfig
from pytriton.model_config.tensor import Tensor
from pytriton.triton import Triton, TritonConfig, TritonLifecyclePolicy, TritonSecurityConfig
from pytriton.utils.workspace import Workspace

from gantry.runtime.config import INLINE_MAX_BYTES, BatchingConfig, RuntimeConfig, TensorSpec
from gantry.runtime.infer import BatchedInference
from gantry.runtime.loader import Servable
from gantry.runtime.placeholder import write_failed_model

__all__ = ["ACCESS_TOKEN_HEADER", "ServingRuntime", "inline_tensors", "model_config_for"]

_LOG = logging.getLogger(__name__)

#: Header Triton checks on PyTriton's restricted endpoints (model-repository, ...).
ACCESS_TOKEN_HEADER = "triton-access-token"
_DRAIN_POLL_S = 0.1
_INLINE_ENV = "PYTRITON_NO_TENSORSTORE"
_SELF_CALL_TIMEOUT_S = 5.0


def model_config_for(batching: BatchingConfig) -> ModelConfig:
    """PyTriton's model config for the runtime's batching settings.

    Batching stays on (``max_batch_size >= 1``) either way, so clients always
    send ``[batch, ...]``; ``dynamic=False`` only drops the dynamic batcher and
    Triton then runs each request as it arrives.
    """
    batcher = (
        DynamicBatcher(
            max_queue_delay_microseconds=batching.max_queue_delay_us,
            preferred_batch_size=list(batching.preferred_batch_sizes) or None,
        )
        if batching.dynamic
        else None
    )
    # ModelConfig's field is typed DynamicBatcher, but its generator treats anything
    # else (None) as "no dynamic_batching section", which is what dynamic=False means.
    return ModelConfig(batching=True, max_batch_size=batching.max_batch_size, batcher=batcher)  # type: ignore[arg-type]


def inline_tensors(transport: str, specs: Sequence[TensorSpec]) -> bool:
    """Whether tensors should travel inline rather than through PyTriton's tensor store.

    The tensor store puts each tensor in shared memory and releases every block
    with a synchronous round trip to a multiprocessing manager; for small tensors
    that round trip is the cost. Measured with bench/runtime_bench.py's MLP (2 KiB
    in, 40 B out per sample, batches of ~33): the idle gap between batches in this
    process fell from ~13.3 ms to ~7.4 ms and throughput at concurrency 64 rose
    ~10-15%. Large tensors (images) keep shared memory, where copying once beats
    serializing.
    """
    if transport != "auto":
        return transport == "inline"
    total = 0
    for spec in specs:
        if any(d < 0 for d in spec.shape):
            return False  # size unknown: could be large
        total += math.prod(spec.shape) * np.dtype(spec.dtype).itemsize
    return total <= INLINE_MAX_BYTES


def _tensors(specs: tuple[TensorSpec, ...]) -> list[Tensor]:
    return [Tensor(name=s.name, dtype=np.dtype(s.dtype).type, shape=s.shape) for s in specs]


@dataclass(frozen=True)
class _Endpoints:
    http: str
    headers: dict[str, str]


class ServingRuntime:
    """One Triton server serving one model version (or its load failure).

    Args:
        config: the validated runtime configuration.
        access_token: token for Triton's restricted endpoints (model repository,
            statistics, ...); give the same one to health probes so they can read
            load failures. ``None`` lets PyTriton generate a private one.
    """

    def __init__(self, config: RuntimeConfig, *, access_token: str | None = None) -> None:
        self._config = config
        self._root = Path(tempfile.mkdtemp(prefix="gantry-runtime-"))
        self._workspace = Workspace(self._root / "workspace")
        self._security = TritonSecurityConfig(access_token=access_token)
        self._triton: Triton | None = None
        self._serving = False
        self._lock = threading.Lock()
        host = config.server.host
        # The runtime calls its own Triton (unload, index) on the address it binds.
        loopback = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        if ":" in loopback:
            loopback = f"[{loopback}]"  # an IPv6 literal in a URL
        token = self._security.access_token or ""
        self._self = _Endpoints(
            http=f"http://{loopback}:{config.server.http_port}",
            headers={ACCESS_TOKEN_HEADER: token},
        )

    @property
    def download_dir(self) -> Path:
        """A private directory for model downloads, removed at shutdown."""
        path = self._root / "download"
        path.mkdir(exist_ok=True)
        return path

    def _triton_config(self, *, failed: bool) -> TritonConfig:
        server = self._config.server
        return TritonConfig(
            http_address=server.host,
            http_port=server.http_port,
            grpc_address=server.host,
            grpc_port=server.grpc_port,
            metrics_address=server.host,
            metrics_port=server.metrics_port,
            allow_metrics=True,
            exit_timeout_secs=server.exit_timeout_s,
            # Serving: ready only when the model is. Failed: Triton must come up (so
            # the failure is readable) and not exit on the model it could not load;
            # pod readiness then rests on the model-ready endpoint, which stays false.
            strict_readiness=not failed,
            exit_on_error=not failed,
            # Latency quantiles for canary analysis, as the operator asks of tritonserver.
            metrics_config=["summary_latencies=true"],
        )

    def start(self, servable: Servable | None, load_error: str | None = None) -> None:
        """Start Triton serving ``servable``, or reporting ``load_error`` for the model.

        Blocks until Triton is up (PyTriton bounds this at 120 s).

        Raises:
            ValueError: neither or both of ``servable`` and ``load_error`` given.
            TimeoutError: Triton did not become ready in time.
        """
        if (servable is None) == (load_error is None):
            raise ValueError("give exactly one of servable and load_error")
        source = self._config.model
        if servable is not None:
            inline = inline_tensors(
                self._config.server.tensor_transport, (*servable.inputs, *servable.outputs)
            )
            # Read by PyTriton here (at bind) and, through the inherited environment, by
            # its proxy in Triton's Python stub; both ends must agree.
            if inline:
                os.environ[_INLINE_ENV] = "1"
            else:
                os.environ.pop(_INLINE_ENV, None)
            _LOG.info("tensors cross to the model %s", "inline" if inline else "via shared memory")
        triton = Triton(
            config=self._triton_config(failed=servable is None),
            workspace=self._workspace,
            triton_lifecycle_policy=TritonLifecyclePolicy(
                launch_triton_on_startup=True, local_model_store=True
            ),
            security_config=self._security,
        )
        with self._lock:
            self._triton = triton
        if servable is not None:
            infer = BatchedInference(servable)
            triton.bind(
                model_name=source.name,
                model_version=source.version,
                infer_func=[infer] * self._config.instances
                if self._config.instances > 1
                else infer,
                inputs=_tensors(servable.inputs),
                outputs=_tensors(servable.outputs),
                config=model_config_for(self._config.batching),
                strict=False,
            )
        else:
            assert load_error is not None
            write_failed_model(
                self._workspace.model_store_path, source.name, source.version, load_error
            )
        triton.run()
        self._serving = servable is not None
        _LOG.info(
            "Triton up: http %s, grpc :%d, metrics :%d, model %s version %d %s",
            self._self.http,
            self._config.server.grpc_port,
            self._config.server.metrics_port,
            source.name,
            source.version,
            "ready" if self._serving else "FAILED to load (see the repository index)",
        )

    def wait(self, stop: threading.Event, *, poll_s: float = 0.5) -> bool:
        """Block until ``stop`` is set or Triton dies.

        Returns:
            ``True`` when stopped on request, ``False`` when Triton died.
        """
        while not stop.wait(poll_s):
            with self._lock:
                triton = self._triton
            if triton is None or not triton.is_alive():
                _LOG.error("Triton or its model proxy exited unexpectedly")
                return False
        return True

    def _model_state(self, client: httpx.Client) -> tuple[str, str]:
        source = self._config.model
        response = client.post(f"{self._self.http}/v2/repository/index", json={})
        response.raise_for_status()
        for entry in response.json():
            if entry.get("name") == source.name and entry.get("version") in (
                None,
                str(source.version),
            ):
                return str(entry.get("state", "")), str(entry.get("reason", ""))
        return "", ""

    def drain(self, timeout_s: float) -> bool:
        """Stop accepting requests for the model and wait for in-flight ones.

        Returns:
            ``True`` when every in-flight request finished within ``timeout_s``.
        """
        if not self._serving:
            return True
        self._serving = False
        deadline = time.monotonic() + timeout_s
        name = self._config.model.name
        timeout = min(_SELF_CALL_TIMEOUT_S, timeout_s)
        with httpx.Client(headers=self._self.headers, timeout=timeout) as client:
            try:
                client.post(f"{self._self.http}/v2/repository/models/{name}/unload", json={})
            except httpx.HTTPError as exc:
                _LOG.warning("could not ask Triton to unload %s: %s", name, exc)
                return False
            state = "UNLOADING"
            while time.monotonic() < deadline:
                try:
                    state, _ = self._model_state(client)
                except httpx.HTTPError as exc:
                    _LOG.warning("repository index unavailable while draining: %s", exc)
                    return False
                if state not in ("READY", "UNLOADING"):
                    _LOG.info(
                        "drained %s in %.2fs", name, timeout_s - (deadline - time.monotonic())
                    )
                    return True
                time.sleep(_DRAIN_POLL_S)
        _LOG.warning("drain of %s timed out after %gs (state %s)", name, timeout_s, state)
        return False

    def shutdown(self) -> None:
        """Drain (bounded by the configured timeout), stop Triton, remove temp files."""
        with self._lock:
            triton, self._triton = self._triton, None
        try:
            if triton is not None:
                self.drain(self._config.server.drain_timeout_s)
                triton.stop()
        finally:
            _remove_tree(self._root)


def _remove_tree(path: Path) -> None:
    # Best effort: a leftover temp dir must not turn a clean shutdown into a failure.
    shutil.rmtree(path, ignore_errors=True)
