"""PromQL for canary analysis: selectors, the built-in queries, custom templates (pure).

The canary's series are selected by namespace and pod name. Pods of a
Deployment are named ``<deployment>-<replicaset hash>-<pod suffix>``, so the
canary ``resnet-5d8f9c7b6a`` matches ``pod=~"resnet-5d8f9c7b6a-[a-z0-9]+-[a-z0-9]+"``
and the stable Deployment ``resnet`` never does: both fields after the
Deployment name are dash-free, so a pod name has exactly one Deployment name
in front of them. That holds for the Deployment names Gantry makes (at most
``MAX_DEPLOYMENT_NAME`` characters, see :mod:`gantry.render.names`); a longer
name is cut inside the API server's generateName, and :func:`pod_regex`
matches the cut form instead. This assumes the scrape
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
from gantry.render.names import MAX_GENERATE_NAME, MAX_TEMPLATE_HASH

# The API server appends this many random characters to a generateName.
POD_RANDOM_SUFFIX = 5


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
    """RE2 matching the pods of one Deployment and no other.

    Kubernetes names a ReplicaSet ``<deployment>-<hash>`` (hash: 1 to 10
    characters) and gives its pods the generateName ``<replicaset>-``; the API
    server keeps the first 58 characters of a generateName and appends 5 random
    ones. When ``<deployment>-<hash>-`` always fits, pods are
    ``<deployment>-<hash>-<random>``; otherwise the regex follows the cut.
    Deployment names are DNS subdomains, so a dot is the only metacharacter.
    """
    prefix = deployment + "-"
    room = MAX_GENERATE_NAME - len(prefix)  # characters of "<hash>-" that survive
    if room > MAX_TEMPLATE_HASH:
        return _escape(prefix) + "[a-z0-9]+-[a-z0-9]+"
    random = f"[a-z0-9]{{{POD_RANDOM_SUFFIX}}}"
    if room <= 0:
        return _escape(prefix[:MAX_GENERATE_NAME]) + random
    # A hash shorter than the room keeps its dash; a longer one is cut to the room.
    kept = [f"[a-z0-9]{{1,{room - 1}}}-"] if room > 1 else []
    kept.append(f"[a-z0-9]{{{room}}}")
    return _escape(prefix) + "(?:" + "|".join(kept) + ")" + random


def _escape(name: str) -> str:
    return name.replace(".", "\\.")


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
