"""The rollout package stays pure: importing it loads no I/O library and reads no clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gantry.rollout

IO_MODULES = ("httpx", "kopf", "lightkube", "prometheus_client", "tritonclient")


def test_importing_rollout_loads_no_io_library() -> None:
    code = (
        "import sys, gantry.rollout; "
        f"print(','.join(m for m in {IO_MODULES!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_rollout_never_reads_the_clock() -> None:
    package = Path(gantry.rollout.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"now", "utcnow", "time", "today"}:
                # ``ctx.now`` is the injected clock; datetime.now()/time.time() are not allowed.
                owner = node.value
                name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                assert name not in {"datetime", "time", "date"}, f"{path.name}: {ast.unparse(node)}"
