"""A stand-in Triton model that fails to load with the runtime's own error.

When the torch model cannot be loaded, the runtime still starts Triton, with
this Python-backend model in the model's place. Triton tries to load it, the
model's ``initialize`` raises the recorded message, and Triton marks the model
``UNAVAILABLE`` with that message as the ``reason`` in its repository index,
exactly as it does for a broken ``model.pt`` under its own PyTorch backend. So
the operator reads one kind of failure, Triton's, through one API
(``POST /v2/repository/index``), and the pod stays up and unready instead of
crash-looping with the reason lost in a previous container's log.

The message travels in a file next to ``model.py``, not in generated code, so
no quoting of user-controlled text is ever needed.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ERROR_FILE", "MAX_MESSAGE_CHARS", "write_failed_model"]

#: Name of the file holding the load error, inside the version directory.
ERROR_FILE = "load_error.txt"
#: Triton keeps the reason in memory and returns it on every index call; bound it.
MAX_MESSAGE_CHARS = 4000

_MODEL_PY = '''\
"""Stand-in written by the Gantry runtime: the real model failed to load."""

import pathlib


class TritonPythonModel:
    def initialize(self, args):
        error = pathlib.Path(args["model_repository"], args["model_version"], "{error_file}")
        raise RuntimeError(error.read_text(encoding="utf-8"))

    def execute(self, requests):
        raise RuntimeError("unreachable: this model never loads")
'''

# max_batch_size 0 and no tensors: Triton needs nothing else to reach initialize().
_CONFIG = 'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n'


def write_failed_model(repository: Path, name: str, version: int, message: str) -> Path:
    """Write the stand-in model into a Triton model repository.

    Args:
        repository: the model repository Triton will load at startup.
        name: the model's name (already validated: letters, digits, ``_.-``).
        version: the model version the real model would have served.
        message: why the real model failed; truncated to :data:`MAX_MESSAGE_CHARS`.

    Returns:
        The model directory written.
    """
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    model_dir = repository / name
    version_dir = model_dir / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(_CONFIG.format(name=name), encoding="utf-8")
    (version_dir / "model.py").write_text(_MODEL_PY.format(error_file=ERROR_FILE), encoding="utf-8")
    (version_dir / ERROR_FILE).write_text(message, encoding="utf-8")
    return model_dir
