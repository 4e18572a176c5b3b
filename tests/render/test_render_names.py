"""Every derived name and label value, for ModelDeployment names of every legal length.

The validity rules are apimachinery's own (k8s.io/apimachinery pkg/util/validation),
written out here rather than taken from the code under test. The plans come from
the rollout machine (``decide``), exactly as the operator makes them, and every
join between children is checked on the rendered manifests: pod label and
Deployment name (the model-health probe and the scrape provider match pods to
Deployments this way), Service selectors and pod labels, HTTPRoute backends and
per-revision Services, HPA target and Deployments.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from render_builders import build_spec, walk

from gantry.api.plan import Owner, ServingPlan
from gantry.api.spec import ModelDeploymentSpec
from gantry.api.status import ModelDeploymentStatus
from gantry.preview import preview_children
from gantry.render import labels as lbl
from gantry.render import names
from gantry.render.children import render_children
from gantry.render.revision import revision
from gantry.rollout import Decision, DeploymentReadiness, Observations, decide

# apimachinery: dns1123LabelFmt, dns1123SubdomainFmt, dns1035LabelFmt, labelValueFmt.
_DNS_1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_1123_SUBDOMAIN = re.compile(rf"{_DNS_1123_LABEL}(\.{_DNS_1123_LABEL})*")
DNS_1035_LABEL = re.compile("[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile("(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_NAME = re.compile("([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def is_subdomain(name: str) -> bool:
    return len(name) <= 253 and DNS_1123_SUBDOMAIN.fullmatch(name) is not None


def is_dns_1035(name: str) -> bool:
    return len(name) <= 63 and DNS_1035_LABEL.fullmatch(name) is not None


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and LABEL_VALUE.fullmatch(value) is not None


def is_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return (
        (not prefix or is_subdomain(prefix))
        and len(name) <= 63
        and LABEL_NAME.fullmatch(name) is not None
    )


# What each kind's name must be (apps, core, autoscaling, policy validation; CRDs
# such as HTTPRoute take DNS-1123 subdomains). Deployment names also serve as a
# label value, and Gantry keeps them whole inside their pods' names.
NAME_RULES: dict[str, Callable[[str], bool]] = {
    "Service": is_dns_1035,
    "Deployment": lambda n: is_subdomain(n) and len(n) <= names.MAX_DEPLOYMENT_NAME,
    "HTTPRoute": is_subdomain,
    "HorizontalPodAutoscaler": is_subdomain,
    "PodDisruptionBudget": is_subdomain,
}

# Patterns repeated to every length; the last character is made alphanumeric so
# each result is a legal ModelDeployment name. They put dots, dashes, digits and
# runs of dashes at every position, so every cut point meets each of them.
PATTERNS = {
    "letters": "abcdefghijklmnopqrstuvwxyz",
    "digits": "0123456789",
    "dashes": "a-",
    "dots": "a.",
    "digit-dashes": "9-",
    "mixed": "ab.cd-ef.",
    "dash-runs": "a--",
    "digit-dots": "1.2-3",
}


def md_name(pattern: str, length: int) -> str:
    text = "".join(itertools.islice(itertools.cycle(pattern), length))
    name = text if text[-1].isalnum() else text[:-1] + "z"
    assert is_subdomain(name), name
    return name


def names_of_length(length: int) -> list[str]:
    return sorted({md_name(p, length) for p in PATTERNS.values()})


ALL_LENGTHS = range(1, 254)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def gateway_spec(version: str = "1") -> ModelDeploymentSpec:
    """Every kind at once: gatewayAPI routes, an autoscaler (HPA) with room for a PDB."""
    return build_spec(
        model={"version": version},
        scaling={"minReplicas": 2, "maxReplicas": 4},
        rollout={
            "strategy": "canary",
            "canary": {
                "steps": [{"setWeight": 50}, {"pause": {}}],
                "trafficRouting": {"type": "gatewayAPI", "parentRefs": [{"name": "gw"}]},
            },
        },
    )


def run(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations, name: str
) -> Decision:
    return decide(spec, status, obs, T0, desired_revision=revision(spec), md_name=name)


def status_of(decision: Decision) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(stable=decision.stable, canary=decision.canary)


def all_ready(plan: ServingPlan, default: int = 2) -> Observations:
    """Every planned Deployment at its planned size, every pod serving."""
    sizes = {d.name: d.replicas if d.replicas is not None else default for d in plan.deployments}
    return Observations(deployments={n: DeploymentReadiness(r, r, r, r) for n, r in sizes.items()})


def lifecycle(name: str) -> list[Decision]:
    """A fresh ModelDeployment, a new revision's canary at step 0, then at full weight."""
    first = run(gateway_spec("1"), ModelDeploymentStatus(), Observations(), name)
    second = gateway_spec("2")
    started = run(second, status_of(first), all_ready(first.plan), name)
    moved = run(second, status_of(started), all_ready(started.plan), name)
    return [first, started, moved]


def children_of(name: str, decision: Decision) -> list[dict[str, Any]]:
    owner = Owner(name=name, namespace="ml", uid="u")
    spec = gateway_spec("1" if decision.canary is None else "2")
    return render_children(owner, spec, decision.plan)


def check_children(children: list[dict[str, Any]], decision: Decision) -> None:
    """Valid names and labels, no two children of one kind with one name, every join."""
    keys = [(c["kind"], c["metadata"]["name"]) for c in children]
    assert len(keys) == len(set(keys)), keys
    for child in children:
        kind, name = child["kind"], child["metadata"]["name"]
        assert NAME_RULES[kind](name), (kind, name)
        for node in walk(child):
            if isinstance(node, dict):
                for key in ("labels", "matchLabels", "selector"):
                    value = node.get(key)
                    # Deployment's spec.selector holds matchLabels, visited on its own.
                    if isinstance(value, dict) and "matchLabels" not in value:
                        for k, v in value.items():
                            assert is_label_key(k), (kind, k)
                            assert is_label_value(v), (kind, key, v)

    by_kind: dict[str, list[dict[str, Any]]] = {}
    for child in children:
        by_kind.setdefault(child["kind"], []).append(child)
    deployments = by_kind["Deployment"]
    pod_labels = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments
    }

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    plan = decision.plan
    # The plan's names are final: fitting them again changes nothing.
    for d in plan.deployments:
        assert names.fit(d.name, limit=names.MAX_DEPLOYMENT_NAME) == d.name
        assert names.recorded_deployment_name(d.name) == d.name
    # Pod label <-> Deployment name, and the status records the same name.
    for dep in deployments:
        name = dep["metadata"]["name"]
        assert pod_labels[name][lbl.DEPLOYMENT] == name
        assert selects(dep["spec"]["selector"]["matchLabels"], pod_labels[name])
    recorded = {r.deployment for r in (decision.stable, decision.canary) if r is not None}
    assert {d.name for d in plan.deployments} <= recorded
    # Main Service and PDB select every revision's pods; each revision Service one.
    main, *per_revision = by_kind["Service"]
    for dep_labels in pod_labels.values():
        assert selects(main["spec"]["selector"], dep_labels)
        assert selects(
            by_kind["PodDisruptionBudget"][0]["spec"]["selector"]["matchLabels"], dep_labels
        )
    assert len(per_revision) == len(plan.deployments)
    backends_by_revision: dict[str, str] = {}
    for svc in per_revision:
        selected = [
            n for n, labels in pod_labels.items() if selects(svc["spec"]["selector"], labels)
        ]
        wanted = [
            d.name for d in plan.deployments if d.name == svc["spec"]["selector"][lbl.DEPLOYMENT]
        ]
        assert len(wanted) == 1, svc["metadata"]["name"]
        assert selected in ([], wanted)  # a scale-only stable is not rendered, but exists
        backends_by_revision[svc["metadata"]["labels"][lbl.REVISION]] = svc["metadata"]["name"]
    # HTTPRoute backends are exactly the per-revision Services.
    (route,) = by_kind["HTTPRoute"]
    (rule,) = route["spec"]["rules"]
    assert sorted(b["name"] for b in rule["backendRefs"]) == sorted(backends_by_revision.values())
    # The HPA scales a Deployment of the plan.
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        assert hpa["spec"]["scaleTargetRef"]["name"] == plan.autoscale_target
        assert plan.autoscale_target in {d.name for d in plan.deployments}


def derived(name: str) -> dict[str, Any]:
    """Every name and label value derived from ``name``, as rendered."""
    out: dict[str, Any] = {}
    for i, decision in enumerate(lifecycle(name)):
        children = children_of(name, decision)
        out[f"children{i}"] = sorted((c["kind"], c["metadata"]["name"]) for c in children)
        out[f"labels{i}"] = [c["metadata"]["labels"] for c in children]
    return out


@pytest.mark.parametrize("length", ALL_LENGTHS)
def test_every_name_of_every_length(length: int) -> None:
    outputs: dict[str, dict[str, Any]] = {}
    for name in names_of_length(length):
        decisions = lifecycle(name)
        assert [len(d.plan.deployments) for d in decisions] == [1, 2, 2]
        assert decisions[2].plan.canary_weight == 50
        for decision in decisions:
            check_children(children_of(name, decision), decision)
        outputs[name] = derived(name)
        assert derived(name) == outputs[name]  # deterministic
    # Distinct inputs of one length: no shared child name, no shared label value.
    for a, b in itertools.combinations(outputs, 2):
        for key in ("children0", "children1"):
            assert not set(outputs[a][key]) & set(outputs[b][key]), (a, b, key)


def test_a_long_name_gets_one_fitted_name_everywhere() -> None:
    """The reported case: a 253-character name, Deployment and pod label identical."""
    name = md_name(PATTERNS["mixed"], 253)
    (first, started, _) = lifecycle(name)
    (dep,) = first.plan.deployments
    assert len(dep.name) <= names.MAX_DEPLOYMENT_NAME
    assert first.stable is not None
    assert first.stable.deployment == dep.name
    (rendered,) = [c for c in children_of(name, first) if c["kind"] == "Deployment"]
    assert rendered["metadata"]["name"] == dep.name
    assert rendered["spec"]["template"]["metadata"]["labels"][lbl.DEPLOYMENT] == dep.name
    assert started.canary is not None
    assert started.canary.deployment == names.deployment_name(name, revision(gateway_spec("2")))


# --- a status written by an earlier version -----------------------------------------------------


def test_a_recorded_name_that_never_fitted_is_fitted() -> None:
    name = md_name(PATTERNS["letters"], 100)
    legacy = run(gateway_spec("1"), ModelDeploymentStatus(), Observations(), name)
    assert legacy.stable is not None
    old = ModelDeploymentStatus(stable=legacy.stable.model_copy(update={"deployment": name}))
    decision = run(gateway_spec("1"), old, Observations(), name)
    assert decision.stable is not None
    assert decision.stable.deployment == names.deployment_name(name)
    assert [d.name for d in decision.plan.deployments] == [names.deployment_name(name)]


@pytest.mark.parametrize("length", [47, 52, 58, 63])
def test_a_recorded_name_that_fits_is_kept(length: int) -> None:
    """Earlier versions named the first Deployment after a ModelDeployment of up to 63
    characters; that Deployment serves and keeps its name."""
    name = md_name(PATTERNS["letters"], length)
    base = run(gateway_spec("1"), ModelDeploymentStatus(), Observations(), name)
    assert base.stable is not None
    old = ModelDeploymentStatus(stable=base.stable.model_copy(update={"deployment": name}))
    decision = run(gateway_spec("1"), old, Observations(), name)
    assert [d.name for d in decision.plan.deployments] == [name]
    children = render_children(Owner(name, "ml", "u"), gateway_spec("1"), decision.plan)
    (dep,) = [c for c in children if c["kind"] == "Deployment"]
    assert dep["spec"]["template"]["metadata"]["labels"][lbl.DEPLOYMENT] == name


# --- the pure functions ------------------------------------------------------------------------


def cases() -> Iterator[str]:
    for length in ALL_LENGTHS:
        yield from names_of_length(length)


ALL_NAMES = list(cases())


def test_fit_is_idempotent_and_keeps_the_kind_of_name() -> None:
    for name in ALL_NAMES:
        for limit in (names.HASH_LENGTH, 20, names.MAX_DEPLOYMENT_NAME, 63):
            out = names.fit(name, limit=limit)
            assert len(out) <= limit
            assert is_subdomain(out), (name, limit, out)
            assert is_label_value(out)
            assert names.fit(out, limit=limit) == out
            if len(name) <= limit:
                assert out == name


def test_fit_refuses_a_limit_without_room_for_the_hash() -> None:
    with pytest.raises(ValueError, match="limit"):
        names.fit("x" * 20, limit=names.HASH_LENGTH - 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", "3"),
        ("resnet", "resnet"),
        ("A_b.C-1", "A_b.C-1"),
        ("", ""),
        ("x" * 63, "x" * 63),
        ("a/b", None),
        ("-a-", None),
        ("x" * 64, None),
        ("é", None),
        ("_", None),
    ],
)
def test_label_value(value: str, expected: str | None) -> None:
    out = names.label_value(value)
    assert is_label_value(out), out
    assert out == names.label_value(value)
    if expected is not None:
        assert out == expected
    else:
        assert out != value


def test_label_value_keeps_cleaned_values_apart() -> None:
    assert names.label_value("a/b") != names.label_value("a-b")
    assert names.label_value("a/b") != names.label_value("a+b")


def test_service_names_are_dns_1035_and_distinct_per_length() -> None:
    for length in ALL_LENGTHS:
        group = names_of_length(length)
        services = [names.service_name(n) for n in group]
        assert all(is_dns_1035(s) for s in services), services
        assert len(set(services)) == len(group)


@pytest.mark.parametrize("base_length", range(1, 64))
@pytest.mark.parametrize("suffix_length", range(1, names.REVISION_SUFFIX_LENGTH + 1))
def test_suffixed_is_never_its_base(base_length: int, suffix_length: int) -> None:
    for pattern in ("abc", "a-", "a.b", "9-"):
        base = md_name(pattern, base_length)
        suffixes = [c * suffix_length for c in "0af9"]
        results = [names.suffixed(base, s, limit=63) for s in suffixes]
        for s, out in zip(suffixes, results, strict=True):
            assert out != base
            assert len(out) <= 63
            assert out.endswith(f"-{s}")
            assert is_subdomain(out)
            assert names.fit(out, limit=63) == out
        assert len(set(results)) == len(results)


@pytest.mark.parametrize(
    ("suffix", "limit"), [("", 63), ("a-b", 63), ("A", 63), ("abc", 2)], ids=str
)
def test_suffixed_refuses_what_would_break_its_promise(suffix: str, limit: int) -> None:
    with pytest.raises(ValueError, match=r"suffix|longer"):
        names.suffixed("resnet", suffix, limit=limit)


def test_revision_service_is_never_the_main_service() -> None:
    revisions = ["0123456789", "abcdef0123", "ffffffffff", "0ld0ld0ld0", "1"]
    for name in ALL_NAMES:
        main = names.service_name(name)
        per_revision = [names.revision_service_name(name, r) for r in revisions]
        assert main not in per_revision
        assert len(set(per_revision)) == len(revisions)
        assert all(is_dns_1035(s) for s in per_revision), per_revision


@pytest.mark.parametrize(
    ("recorded", "suffix"),
    [
        ("0123456789", "0123456789"),
        ("abc", "abc"),
        ("ABCDEF0123", None),
        ("0123456789a", None),
        ("a-b", None),
        ("", None),
    ],
)
def test_revision_suffix(recorded: str, suffix: str | None) -> None:
    out = names.revision_suffix(recorded)
    assert re.fullmatch("[a-z0-9]{1,10}", out)
    if suffix is not None:
        assert out == suffix
    assert names.revision_service_name("resnet", recorded).endswith(f"-{out}")


def test_first_and_later_deployments_never_share_a_name() -> None:
    revisions = ["0123456789", "abcdef0123", "ffffffffff"]
    for name in ALL_NAMES:
        first = names.deployment_name(name)
        later = [names.deployment_name(name, r) for r in revisions]
        assert first not in later
        assert len(set(later)) == len(later)
        assert all(is_subdomain(d) and len(d) <= names.MAX_DEPLOYMENT_NAME for d in later)


def test_short_names_keep_their_familiar_form() -> None:
    assert names.deployment_name("resnet") == "resnet"
    assert names.deployment_name("resnet", "0123456789") == "resnet-0123456789"
    assert names.service_name("resnet") == "resnet"
    assert names.revision_service_name("resnet", "0123456789") == "resnet-0123456789"
    assert names.service_name("3d-unet").startswith("md-3d-unet-")
    assert names.service_name("a.b").startswith("a-b-")
    assert names.md_child_name("a.b") == "a.b"


# --- every example, both routings: no two children of one kind share a name -----------------

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
ROUTINGS = ("replicas", "gatewayAPI")


def example_with(path: Path, routing: str) -> dict[str, Any]:
    """The example as a canary rollout with ``routing`` (its own steps, if it has any)."""
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    rollout = doc["spec"].setdefault("rollout", {})
    rollout["strategy"] = "canary"
    canary = rollout.setdefault("canary", {})
    canary.setdefault("steps", [{"setWeight": 50}, {"pause": {}}])
    canary["trafficRouting"] = {"type": routing}
    if routing == "gatewayAPI":
        canary["trafficRouting"]["parentRefs"] = [{"name": "edge"}]
    return doc


def example_phases(doc: dict[str, Any]) -> list[tuple[str, ModelDeploymentSpec, Decision]]:
    """First rollout, a new revision's canary at step 0, and mid-canary (after its first
    step, both Deployments serving), planned by ``decide`` as the operator plans them."""
    name = doc["metadata"]["name"]
    spec = ModelDeploymentSpec.model_validate(doc["spec"])
    wire = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    wire["model"]["version"] = str(int(spec.model.version) + 1)
    newer = ModelDeploymentSpec.model_validate(wire)
    first = run(spec, ModelDeploymentStatus(), Observations(), name)
    started = run(newer, status_of(first), all_ready(first.plan), name)
    moved = run(newer, status_of(started), all_ready(started.plan), name)
    return [("first", spec, first), ("step-0", newer, started), ("mid-canary", newer, moved)]


@pytest.mark.parametrize("routing", ROUTINGS)
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_no_two_children_share_kind_and_name(example: Path, routing: str) -> None:
    doc = example_with(example, routing)
    owner = Owner(doc["metadata"]["name"], "default", "u")
    phases = example_phases(doc)
    assert [len(d.plan.deployments) for _, _, d in phases] == [1, 2, 2]
    assert phases[2][2].canary is not None
    assert phases[2][2].canary.step_index > 0
    for phase, spec, decision in phases:
        children = render_children(owner, spec, decision.plan)
        keys = [(c["kind"], c["metadata"]["name"]) for c in children]
        assert len(keys) == len(set(keys)), (phase, keys)
        services = [c for c in children if c["kind"] == "Service"]
        per_revision = len(decision.plan.deployments) if routing == "gatewayAPI" else 0
        assert len(services) == 1 + per_revision, phase
    # And as `gantry render` prints the example (the children of its first reconcile).
    children = preview_children(doc)
    keys = [(c["kind"], c["metadata"]["name"]) for c in children]
    assert len(keys) == len(set(keys)), keys
