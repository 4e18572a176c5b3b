"""The client bench's pure parts: its manifests, its interleaving, its figures and table."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from bench.client_bench import (
    CLIENTS,
    DEPLOYMENT_LABEL,
    EXAMPLE,
    GROUP_LABEL,
    Batch,
    Figures,
    apply_form,
    call,
    figures,
    filler,
    group_name,
    order,
    owned_by,
    report,
    split,
    status_patch,
)
from gantry.api.status import ModelDeploymentStatus
from gantry.preview import PREVIEW_UID, preview_children


def rendered_deployment() -> dict[str, Any]:
    md = yaml.safe_load(EXAMPLE.read_text())
    return next(c for c in preview_children(md) if c["kind"] == "Deployment")


def test_owned_by_points_the_children_at_the_real_owner() -> None:
    deployment = rendered_deployment()
    owned = owned_by(deployment, "real-uid")
    assert [r["uid"] for r in owned["metadata"]["ownerReferences"]] == ["real-uid"]
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == PREVIEW_UID  # not mutated


def test_apply_form_leaves_the_size_to_the_scale_subresource() -> None:
    deployment = rendered_deployment()
    assert "replicas" in deployment["spec"]
    applied = apply_form(deployment)
    assert "replicas" not in applied["spec"]
    assert applied["spec"]["template"] == deployment["spec"]["template"]
    assert "replicas" in deployment["spec"]


def test_fillers_are_sized_zero_with_disjoint_selectors_in_groups() -> None:
    deployment = rendered_deployment()
    fills = [filler(deployment, i, group_size=10) for i in range(25)]
    names = [f["metadata"]["name"] for f in fills]
    assert len(set(names)) == 25
    assert deployment["metadata"]["name"] not in names
    for f in fills:
        spec = f["spec"]
        assert spec["replicas"] == 0
        selector = spec["selector"]["matchLabels"]
        # A selector must match its own template, or the API server refuses the Deployment.
        assert selector.items() <= spec["template"]["metadata"]["labels"].items()
        assert selector[DEPLOYMENT_LABEL] == f["metadata"]["name"]
    selectors = [frozenset(f["spec"]["selector"]["matchLabels"].items()) for f in fills]
    assert len(set(selectors)) == 25
    groups = [f["metadata"]["labels"][GROUP_LABEL] for f in fills]
    assert groups.count(group_name(0)) == 10
    assert groups.count(group_name(2)) == 5
    assert deployment["spec"]["replicas"] != 0  # the source is left alone


@pytest.mark.parametrize(("index", "group_size"), [(-1, 10), (0, 0)])
def test_filler_refuses_bad_numbers(index: int, group_size: int) -> None:
    with pytest.raises(ValueError, match="index must be >= 0 and group_size >= 1"):
        filler(rendered_deployment(), index, group_size=group_size)


def test_status_patch_is_a_valid_status_that_changes_each_time() -> None:
    first, second = status_patch(1), status_patch(2)
    assert first != second
    status = ModelDeploymentStatus.model_validate(first["status"])
    assert status.phase.value == "Ready"


@pytest.mark.parametrize(
    ("round_index", "expected"),
    [(0, ["a", "b", "c"]), (1, ["c", "b", "a"]), (2, ["a", "b", "c"]), (3, ["c", "b", "a"])],
)
def test_order_alternates_so_each_client_leads_and_trails(
    round_index: int, expected: list[str]
) -> None:
    assert order(round_index, ["a", "b", "c"]) == expected


@pytest.mark.parametrize(
    ("n", "rounds", "expected"),
    [(300, 4, [75, 75, 75, 75]), (50, 4, [13, 13, 12, 12]), (3, 4, [1, 1, 1]), (1, 1, [1])],
)
def test_split(n: int, rounds: int, expected: list[int]) -> None:
    assert split(n, rounds) == expected
    assert sum(split(n, rounds)) == n


@pytest.mark.parametrize(("n", "rounds"), [(0, 4), (10, 0)])
def test_split_refuses_empty(n: int, rounds: int) -> None:
    with pytest.raises(ValueError, match="n and rounds must be >= 1"):
        split(n, rounds)


def test_figures_accumulate_over_rounds() -> None:
    batch = Batch()
    batch.add([0.001, 0.002], wall_s=0.5, cpu_s=0.01)
    batch.add([0.003, 0.004], wall_s=0.5, cpu_s=0.03)
    f = figures(batch)
    assert f == Figures(requests=4, p50_ms=2.0, p95_ms=4.0, rps=4.0, cpu_per_1k_s=10.0)


def test_figures_of_nothing_are_not_numbers() -> None:
    f = figures(Batch())
    assert f.requests == 0
    assert all(math.isnan(v) for v in (f.p50_ms, f.p95_ms, f.rps, f.cpu_per_1k_s))


def test_call_refuses_an_unknown_op() -> None:
    with pytest.raises(ValueError, match="op must be one of"):
        call(object(), "watch")  # type: ignore[arg-type]


def test_report_divides_each_client_by_httpx_row_by_row() -> None:
    base = Figures(requests=10, p50_ms=2.0, p95_ms=4.0, rps=100.0, cpu_per_1k_s=1.0)
    other = Figures(requests=10, p50_ms=3.0, p95_ms=5.0, rps=50.0, cpu_per_1k_s=2.5)
    text = report(
        {"httpx": {"get c=1": base}, "gantry": {"get c=1": other, "list c=1": other}},
        CLIENTS,
    )
    ratio_block = text.split("ratio to httpx")[1]
    row = next(line for line in ratio_block.splitlines() if line.startswith("get c=1"))
    assert row.split()[2:] == ["1.50", "0.50", "2.50"]
    assert "list c=1" not in ratio_block  # no httpx figure to divide by
    assert text.startswith("gantry\n")
    assert "aio-typed\n" in text  # a client with no figures still gets its (empty) block
