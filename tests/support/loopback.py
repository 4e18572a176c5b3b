"""A loopback port that refuses connections, for HTTP client tests.

Servers come from :func:`tests.reconciler.fake_apiserver.serve_loopback` (an
``aiohttp.web`` handler on ``127.0.0.1``, a free port); this is the other half the client
tests (analysis providers, kubectl plugin) share: somewhere nothing answers.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses every connection while the block runs.

    The port is bound and never listened on: the kernel answers a connect with a reset
    (ECONNREFUSED), and no other process can take the port meanwhile, unlike a port
    that was free a moment ago.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port
