"""The serving runtime as a real OS process, for tests: :mod:`e2e.runtimes` plus a skip marker.

The process helpers moved to :mod:`e2e.runtimes` so that ``make demo`` can use them without
importing test code; this module keeps the names tests import and adds the pytest marker.
"""

from __future__ import annotations

import pytest

from e2e.runtimes import (
    REPO_ROOT,
    RUNTIME_MISSING,
    TOKEN_ENV,
    RuntimePorts,
    RuntimeProcess,
    RuntimeProcessError,
    free_ports,
    write_mlp,
)

__all__ = [
    "REPO_ROOT",
    "RUNTIME_MISSING",
    "TOKEN_ENV",
    "RuntimePorts",
    "RuntimeProcess",
    "RuntimeProcessError",
    "free_ports",
    "requires_runtime",
    "write_mlp",
]

#: Skip marker for tests that start the runtime.
requires_runtime = pytest.mark.skipif(RUNTIME_MISSING is not None, reason=RUNTIME_MISSING or "")
