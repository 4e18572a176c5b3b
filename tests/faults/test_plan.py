"""The fault proxy's pure decisions: verbs, which fault a draw picks, configuration errors."""

from __future__ import annotations

import pytest

from e2e.faults.plan import (
    Fault,
    FaultConfig,
    FaultConfigError,
    Planner,
    RequestInfo,
    choose,
    verb_of,
)


@pytest.mark.parametrize(
    ("method", "path", "query", "verb"),
    [
        ("GET", "/api/v1/namespaces/ns/pods", "", "list"),
        ("GET", "/api/v1/namespaces/ns/pods", "watch=true&resourceVersion=5", "watch"),
        ("GET", "/api/v1/namespaces/ns/pods", "watch=1", "watch"),
        ("GET", "/api/v1/namespaces/ns/pods", "watch=false", "list"),
        ("GET", "/api/v1/namespaces/ns/pods/p", "", "get"),
        ("GET", "/api/v1/namespaces", "", "list"),
        ("GET", "/api/v1/namespaces/ns", "", "get"),
        ("GET", "/apis/apps/v1/deployments", "", "list"),
        ("GET", "/apis/apps/v1/namespaces/ns/deployments/d/scale", "", "get"),
        ("GET", "/apis/serving.gantry.dev/v1alpha1/modeldeployments", "watch=true", "watch"),
        ("GET", "/version", "", "get"),
        ("GET", "/apis", "", "get"),
        ("POST", "/api/v1/namespaces/ns/events", "", "create"),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", "", "update"),
        ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d", "fieldManager=gantry", "patch"),
        (
            "PATCH",
            "/apis/serving.gantry.dev/v1alpha1/namespaces/ns/modeldeployments/m/status",
            "",
            "patch",
        ),
        ("DELETE", "/apis/apps/v1/namespaces/ns/deployments/d", "", "delete"),
        ("DELETE", "/apis/apps/v1/namespaces/ns/deployments", "", "deletecollection"),
        ("OPTIONS", "/api", "", "options"),
    ],
)
def test_the_verb_is_the_api_servers(method: str, path: str, query: str, verb: str) -> None:
    info = verb_of(method, path, query)
    assert info.verb == verb
    assert info.watch == (verb == "watch")


RATES = {Fault.HTTP_429: 0.1, Fault.HTTP_409: 0.1, Fault.DELAY: 0.2, Fault.WATCH_CUT: 0.5}
READ, WRITE, WATCH = RequestInfo("get"), RequestInfo("patch"), RequestInfo("watch", watch=True)


@pytest.mark.parametrize(
    ("draw", "request_info", "fault"),
    [
        (0.0, READ, Fault.HTTP_429),
        (0.099, WRITE, Fault.HTTP_429),
        # 409 is for writes: a read drawn into its slice passes through.
        (0.1, WRITE, Fault.HTTP_409),
        (0.15, READ, None),
        (0.2, READ, Fault.DELAY),
        (0.399, WATCH, Fault.DELAY),
        # A cut is for watches only.
        (0.4, WATCH, Fault.WATCH_CUT),
        (0.899, WATCH, Fault.WATCH_CUT),
        (0.5, READ, None),
        # Past every slice: nothing.
        (0.9, WRITE, None),
        (0.999, WATCH, None),
    ],
)
def test_a_draw_picks_the_fault_of_its_slice(
    draw: float, request_info: RequestInfo, fault: Fault | None
) -> None:
    assert choose(draw, request_info, RATES) == fault


def test_no_rates_no_faults() -> None:
    assert choose(0.0, WRITE, {}) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rates": {Fault.HTTP_500: 1.5}}, r"rates.http_500: 1.5 is not a probability"),
        ({"rates": {Fault.HTTP_500: -0.1}}, r"rates.http_500: -0.1 is not a probability"),
        ({"rates": {Fault.HTTP_500: 0.6, Fault.RESET: 0.6}}, r"rates: they add up to 1.2"),
        ({"rates": {"http_418": 0.1}}, r"rates: unknown fault 'http_418'"),
        ({"max_faults": -1}, r"max_faults: -1 must not be negative"),
        ({"max_delay_s": -1.0}, r"max_delay_s: -1.0 must not be negative"),
        ({"watch_max_events": 0}, r"watch_max_events: a cut watch needs at least 1 event"),
    ],
)
def test_a_bad_config_is_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(FaultConfigError, match=message):
        FaultConfig(**kwargs)  # type: ignore[arg-type]


def test_the_planner_is_seeded_and_bounded() -> None:
    # 60% of 60 requests would be ~36 faults: the bound stops them at 7.
    config = FaultConfig(rates={Fault.HTTP_500: 0.3, Fault.DELAY: 0.3}, seed=42, max_faults=7)
    requests = [WRITE, READ, WATCH] * 20

    def run() -> list[Fault | None]:
        planner = Planner(config)
        return [planner.fault_for(r) for r in requests]

    first, second = run(), run()
    assert first == second
    assert sum(f is not None for f in first) == 7
    other = [Planner(FaultConfig(rates=config.rates, seed=43)).fault_for(r) for r in requests]
    assert other != first


def test_cuts_and_delays_stay_within_their_bounds() -> None:
    planner = Planner(FaultConfig(seed=1, max_delay_s=0.5, watch_max_events=3, watch_max_s=2.0))
    cuts = [planner.watch_cut() for _ in range(200)]
    delays = [planner.delay() for _ in range(200)]
    assert {c.events for c in cuts} == {1, 2, 3}
    assert all(0.0 <= c.seconds <= 2.0 for c in cuts)
    assert all(0.0 <= d <= 0.5 for d in delays)
