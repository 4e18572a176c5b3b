"""The scaling section's cross-field rules as one table, shared by their two gates.

Each rule exists twice: as CEL in the CRD (the API server refuses at ``kubectl
apply``) and as the pydantic validator the operator and ``gantry render`` parse
with. ``tests/api/test_api_scaling_rules.py`` checks the pydantic side and that
the CRD carries the same rule and message; ``e2e/test_keda_render.py`` sends
every row to the real API server, so the CEL side is evaluated by Kubernetes
itself, not by a re-implementation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

KEDA = {"serverAddress": "http://prometheus.monitoring:9090"}

SCALE_TO_ZERO = "scaling.minReplicas 0 (scale to zero) needs scaling.provider keda"
KEDA_NEEDS_SERVER = "scaling.keda.serverAddress is required when scaling.provider is keda"
BUILTIN_NO_CPU = (
    "scaling.provider builtin cannot read cpu usage: use scaling.provider hpa for metric cpu"
)


class RuleCase(NamedTuple):
    """One ``spec.scaling``; ``refused`` is the message both gates give, or None to accept.

    ``field`` is the path the API server's refusal names (the rule's fieldPath).
    """

    id: str
    scaling: dict[str, Any]
    refused: str | None = None
    field: str = ""


QUEUE = {"type": "queueTimeMs", "target": 50}
CPU = {"type": "cpu", "target": 80}


def scaling(
    provider: str | None = None,
    *,
    low: int = 1,
    high: int = 3,
    metric: dict[str, Any] = QUEUE,
    keda: bool = False,
) -> dict[str, Any]:
    """A ``spec.scaling`` with the fields the rules read."""
    out: dict[str, Any] = {"minReplicas": low, "maxReplicas": high, "metric": metric}
    if provider is not None:
        out["provider"] = provider
    if keda:
        out["keda"] = KEDA
    return out


MIN = "spec.scaling.minReplicas"
PROVIDER = "spec.scaling.provider"

CASES = [
    # minReplicas 0 needs keda
    RuleCase("zero-without-provider", scaling(low=0), SCALE_TO_ZERO, MIN),
    RuleCase("zero-builtin", scaling("builtin", low=0), SCALE_TO_ZERO, MIN),
    RuleCase("zero-hpa", scaling("hpa", low=0, metric=CPU), SCALE_TO_ZERO, MIN),
    RuleCase("zero-keda", scaling("keda", low=0, keda=True)),
    RuleCase("one-without-provider", scaling()),
    # keda needs serverAddress
    RuleCase("keda-without-settings", scaling("keda"), KEDA_NEEDS_SERVER, PROVIDER),
    RuleCase("keda-zero-without-settings", scaling("keda", low=0), KEDA_NEEDS_SERVER, PROVIDER),
    RuleCase("keda-settings-without-keda", scaling("hpa", metric=CPU, keda=True)),
    RuleCase("keda-with-settings", scaling("keda", keda=True)),
    # builtin + cpu refused, fixed size or not
    RuleCase("builtin-cpu", scaling("builtin", metric=CPU), BUILTIN_NO_CPU, PROVIDER),
    RuleCase(
        "builtin-cpu-fixed", scaling("builtin", low=2, high=2, metric=CPU), BUILTIN_NO_CPU, PROVIDER
    ),
    RuleCase("cpu-without-provider", scaling(metric=CPU)),
    RuleCase("hpa-cpu", scaling("hpa", metric=CPU)),
    RuleCase("builtin-queue", scaling("builtin")),
    RuleCase("keda-cpu", scaling("keda", metric=CPU, keda=True)),
]
