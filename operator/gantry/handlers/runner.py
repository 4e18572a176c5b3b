"""Running the operator in-process: kopf, the metrics port and the liveness endpoint."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import kopf

from gantry.metrics import OperatorMetrics


def run_operator(
    *,
    namespaces: Sequence[str] = (),
    metrics_port: int = 8080,
    liveness_port: int = 8081,
    kubeconfig: str | None = None,
    verbose: bool = False,
    leader_election: bool = False,
) -> None:
    """Run until interrupted. Watches ``namespaces``, or every namespace when empty."""
    if kubeconfig:
        os.environ["GANTRY_KUBECONFIG"] = kubeconfig
    if leader_election:
        os.environ["GANTRY_LEADER_ELECTION"] = "true"
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # No client logger to quiet: aiohttp (the Kubernetes client, probes, scrapes) logs no
    # line per request, as httpx did at INFO.
    # Importing registers the handlers with kopf's default registry.
    from gantry.handlers import modeldeployment  # noqa: F401

    metrics = OperatorMetrics()
    if metrics_port:
        metrics.serve(metrics_port)
    memo = kopf.Memo(metrics=metrics, namespaces=list(namespaces))
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
        memo=memo,
    )
