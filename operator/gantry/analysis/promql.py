"""PromQL for canary analysis: selectors, the built-in queries, custom templates (pure).

The canary's series are selected by namespace and pod name. Pods of a
Deployment are named ``<deployment>-<replicaset hash>-<pod suffix>``, so the
canary ``resnet-5d8f9c7b6a`` matches ``pod=~"resnet-5d8f9c7b6a-[a-z0-9]+-[a-z0-9]+"``
and the stable Deployment ``resnet`` never does. This assumes the scrape
config attaches ``namespace`` and ``pod`` labels (a PodMonitor or the usual
Kubernetes service discovery relabelling does); a scrape config that attaches
other labels can pass its own matchers as ``AnalysisTarget.selector``.

Counters are read with ``increase(...[interval])`` and summed over pods before
dividing (per-pod ratios cannot be averaged). Custom checks may use
``{{selector}}`` (namespace and pod matchers, no braces), ``{{namespace}}``,
``{{model}}`` and ``{{interval}}`` (a PromQL duration such as ``30s``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gantry.analysis.counters import DURATION, FAILURE, SUCCESS, SUMMARY
from gantry.analysis.measurement import AnalysisTarget
from gantry.api.spec import AnalysisSpec, CustomCheck, parse_duration


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def duration(seconds: float) -> str:
    """A PromQL range duration: ``30s``, or ``1500ms`` for fractional seconds."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def pod_regex(deployment: str) -> str:
    """RE2 matching the pods of one Deployment and no other (names are DNS labels,
    so a dot is the only metacharacter they can hold)."""
    return deployment.replace(".", "\\.") + "-[a-z0-9]+-[a-z0-9]+"


def canary_selector(target: AnalysisTarget) -> str:
    """Label matchers of the canary's pods, without braces (the ``{{selector}}``)."""
    if target.selector:
        return target.selector
    return f"namespace={quote(target.namespace)},pod=~{quote(pod_regex(target.deployment))}"


def model_selector(target: AnalysisTarget) -> str:
    """The canary matchers plus the model (and version) labels."""
    matchers = f"{canary_selector(target)},model={quote(target.model)}"
    if target.model_version:
        matchers += f",version={quote(target.model_version)}"
    return matchers


@dataclass(frozen=True)
class BuiltinQueries:
    """The queries behind the built-in checks."""

    successes: str
    failures: str
    duration_us: str
    quantile_us: str | None


def _quantile_regex(quantile: float) -> str:
    # Triton (prometheus-cpp) may print 0.99 as "0.99" or with trailing zeros.
    return f"{quantile:g}".replace(".", "\\.") + "0*"


def builtin_queries(target: AnalysisTarget, spec: AnalysisSpec) -> BuiltinQueries:
    """The request, failure, duration and (optional) quantile queries for one interval."""
    sel = model_selector(target)
    rng = duration(parse_duration(spec.interval))
    quantile = spec.latency.quantile if spec.latency else None
    quantile_query = None
    if quantile is not None:
        q = quote(_quantile_regex(quantile))
        # The worst pod over the interval: quantiles cannot be averaged across pods.
        quantile_query = f"max(max_over_time({SUMMARY}{{{sel},quantile=~{q}}}[{rng}]))"
    return BuiltinQueries(
        successes=f"sum(increase({SUCCESS}{{{sel}}}[{rng}]))",
        failures=f"sum(increase({FAILURE}{{{sel}}}[{rng}]))",
        duration_us=f"sum(increase({DURATION}{{{sel}}}[{rng}]))",
        quantile_us=quantile_query,
    )


def render_custom(check: CustomCheck, target: AnalysisTarget, spec: AnalysisSpec) -> str:
    """A custom check's query with its template variables filled in."""
    values = {
        "selector": canary_selector(target),
        "namespace": target.namespace,
        "model": target.model,
        "interval": duration(parse_duration(spec.interval)),
    }
    query = check.query
    for name, value in values.items():
        query = query.replace("{{" + name + "}}", value).replace("{{ " + name + " }}", value)
    return query
