"""Canary analysis: measuring a canary's Triton metrics and judging each interval.

Modules, pure first:

* ``measurement``: the data a provider returns and the ``Provider`` protocol;
* ``verdict``: one interval's Measurement against the AnalysisSpec -> AnalysisRun;
* ``textformat``, ``counters``, ``promql``: parsing, deltas and queries;
* ``scrape``, ``prometheus``, ``providers``: the providers (HTTP through aiohttp, one
  session per owner, shared by every provider of ``AnalysisProviders``).

The providers are exported lazily (PEP 562): ``gantry.rollout`` imports the pure
modules, and importing ``gantry.analysis.verdict`` runs this ``__init__`` first;
an eager import here would load an HTTP client into code that must do no I/O.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gantry.analysis.measurement import (
    AnalysisTarget,
    Measurement,
    PodEndpoint,
    Provider,
    Reading,
)
from gantry.analysis.verdict import evaluate

if TYPE_CHECKING:
    from gantry.analysis.prometheus import PrometheusProvider
    from gantry.analysis.providers import AnalysisProviders
    from gantry.analysis.scrape import ScrapeProvider

_LAZY = {
    "AnalysisProviders": "gantry.analysis.providers",
    "PrometheusProvider": "gantry.analysis.prometheus",
    "ScrapeProvider": "gantry.analysis.scrape",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gantry.analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "AnalysisProviders",
    "AnalysisTarget",
    "Measurement",
    "PodEndpoint",
    "PrometheusProvider",
    "Provider",
    "Reading",
    "ScrapeProvider",
    "evaluate",
]
