"""The operator process runs one HTTP stack, aiohttp: importing it loads no httpx.

kopf, the Kubernetes client (``kubernetes.aio``), the model probes (their own KServe v2
client), the analysis providers and the scaler's reader all send through aiohttp; httpx
and httpcore would be a second stack held in resident memory for nothing. The reference
runtime (``gantry.runtime``, a process of its own) keeps httpx. Nor does the operator load
tritonclient: its clients bring numpy and gevent along (22 MiB resident). Each import
runs in a fresh interpreter, so what other tests imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SECOND_STACK = ("httpx", "httpcore")
# tritonclient and what its HTTP clients import; the benchmarks and runtime tests keep it.
TRITON_CLIENT = ("tritonclient", "numpy", "gevent", "geventhttpclient", "rapidjson")


@pytest.mark.parametrize(
    ("module", "stack"),
    [
        ("gantry.handlers.modeldeployment", "aiohttp"),  # the operator's handlers
        ("gantry.cli", None),  # `gantry run` starts the operator from here
        ("gantry.kubectl_plugin.cli", "aiohttp"),  # kubectl-gantry, through KubeClient
    ],
)
def test_importing_loads_no_second_http_stack(module: str, stack: str | None) -> None:
    loaded = loaded_after_import(module, SECOND_STACK + ((stack,) if stack else ()))
    assert loaded == ([stack] if stack else [])


@pytest.mark.parametrize("module", ["gantry.handlers.modeldeployment", "gantry.cli"])
def test_the_operator_loads_no_tritonclient(module: str) -> None:
    assert loaded_after_import(module, TRITON_CLIENT) == []


def loaded_after_import(module: str, tops: tuple[str, ...]) -> list[str]:
    """The modules named by ``tops`` (and their submodules) loaded by importing ``module``."""
    code = (
        f"import json, sys, {module}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(tops)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    return loaded
