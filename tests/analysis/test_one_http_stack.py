"""The operator process runs one HTTP stack, aiohttp: importing it loads no httpx.

kopf, the Kubernetes client (``kubernetes.aio``), the model probes (tritonclient's aiohttp
client), the analysis providers and the scaler's reader all send through aiohttp; httpx
and httpcore would be a second stack held in resident memory for nothing. The reference
runtime (``gantry.runtime``, a process of its own) keeps httpx. Each import runs in a
fresh interpreter, so what other tests imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SECOND_STACK = ("httpx", "httpcore")


@pytest.mark.parametrize(
    ("module", "stack"),
    [
        ("gantry.handlers.modeldeployment", "aiohttp"),  # the operator's handlers
        ("gantry.cli", None),  # `gantry run` starts the operator from here
        ("gantry.kubectl_plugin.cli", "aiohttp"),  # kubectl-gantry, through KubeClient
    ],
)
def test_importing_loads_no_second_http_stack(module: str, stack: str | None) -> None:
    code = (
        f"import json, sys, {module}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {SECOND_STACK!r}"
        f" or m == {stack!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert loaded == ([stack] if stack else [])
