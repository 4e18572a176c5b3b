"""The runtime process from start to exit: signals, load, serve, drain, stop.

Exit status: 0 after a requested stop (SIGTERM/SIGINT), including while the
model is in the failed state; 1 when Triton dies on its own, cannot start, or
the model fails to load with ``exit_on_load_error``.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from gantry.runtime.config import RuntimeConfig
from gantry.runtime.errors import ModelLoadError
from gantry.runtime.libpython import prefer_own_libpython

__all__ = ["serve"]

_LOG = logging.getLogger(__name__)


def _install_stop_handlers(stop: threading.Event) -> None:
    def _handler(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            _LOG.info("%s received: draining", signal.Signals(signum).name)
        stop.set()

    # Installed before the (slow) model load, so a stop during startup is honoured
    # right after it instead of killing the process half-way.
    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def serve(config: RuntimeConfig, *, access_token: str | None = None) -> int:
    """Serve ``config``'s model until SIGTERM/SIGINT; return the exit status.

    Must run in the main thread (it installs signal handlers).

    Args:
        config: the validated runtime configuration.
        access_token: token for Triton's restricted endpoints; see
            :class:`~gantry.runtime.server.ServingRuntime`.
    """
    stop = threading.Event()
    _install_stop_handlers(stop)
    libdir = prefer_own_libpython()
    _LOG.debug("libpython directory first on LD_LIBRARY_PATH: %s", libdir)

    # torch and pytriton load here, never when the operator imports gantry.runtime.
    from gantry.runtime.loader import load_servable
    from gantry.runtime.server import ServingRuntime

    runtime = ServingRuntime(config, access_token=access_token)
    try:
        try:
            servable = load_servable(config, runtime.download_dir)
            load_error = None
        except ModelLoadError as exc:
            if config.exit_on_load_error:
                _LOG.error("model load failed: %s", exc)
                return 1
            _LOG.error("model load failed; serving the failure through Triton: %s", exc)
            servable, load_error = None, str(exc)
        if stop.is_set():
            return 0
        try:
            runtime.start(servable, load_error)
        except Exception:
            _LOG.exception("Triton failed to start")
            return 1
        return 0 if runtime.wait(stop) else 1
    finally:
        runtime.shutdown()
        _LOG.info("stopped")
