"""Ports of a new cluster: free, and with a pod CIDR no running cluster uses."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from e2e.cluster import cluster as cluster_mod
from e2e.cluster import procs
from e2e.cluster.cluster import ClusterError
from e2e.cluster.components import pod_cidr
from e2e.cluster.wait import poll

# Two API server ports 128 apart map to the same pod CIDR.
TAKEN_PORT = 40_000
SAME_CIDR_PORT = TAKEN_PORT + 128
OTHER_CIDR_PORT = TAKEN_PORT + 1


@pytest.fixture
def running_kwok() -> Iterator[str]:
    """A process carrying kwok's ``--cidr`` flag for the pod CIDR of ``TAKEN_PORT``."""
    cidr = pod_cidr({"apiserver": TAKEN_PORT})
    popen = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", f"--cidr={cidr}"]
    )
    poll("the fake kwok", lambda: cidr in procs.flag_values("--cidr"), timeout=10)
    yield cidr
    popen.kill()
    popen.wait()


def _draws(monkeypatch: pytest.MonkeyPatch, apiserver_ports: list[int]) -> None:
    """Make each draw of free ports hand out the next of ``apiserver_ports`` for the API server."""
    draws = iter(apiserver_ports)

    def free_ports(count: int) -> list[int]:
        ports = [50_000 + i for i in range(count)]
        ports[cluster_mod._PORT_NAMES.index("apiserver")] = next(draws)
        return ports

    monkeypatch.setattr(procs, "free_ports", free_ports)


def test_ports_avoid_a_pod_cidr_in_use(monkeypatch: pytest.MonkeyPatch, running_kwok: str) -> None:
    _draws(monkeypatch, [SAME_CIDR_PORT, OTHER_CIDR_PORT])
    ports = cluster_mod._choose_ports()
    assert ports["apiserver"] == OTHER_CIDR_PORT
    assert pod_cidr(ports) != running_kwok


def test_no_unused_pod_cidr_is_an_error(monkeypatch: pytest.MonkeyPatch, running_kwok: str) -> None:
    _draws(monkeypatch, [SAME_CIDR_PORT] * cluster_mod._PORT_DRAWS)
    with pytest.raises(ClusterError, match="no unused pod CIDR"):
        cluster_mod._choose_ports()
