"""Store: the newest resourceVersion wins, indexes follow every change, reads are copies."""

from __future__ import annotations

from typing import Any

import pytest

from gantry.kube.store import INDEX_LABEL, SelectorError, Store, newer, parse_selector

Obj = dict[str, Any]


def obj(name: str, rv: str, *, ns: str = "ns", instance: str | None = "a", **labels: str) -> Obj:
    all_labels = dict(labels)
    if instance is not None:
        all_labels[INDEX_LABEL] = instance
    meta = {"name": name, "namespace": ns, "resourceVersion": rv, "labels": all_labels}
    return {"metadata": meta}


def names(objects: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in objects]


@pytest.mark.parametrize(
    ("candidate", "current", "wins"),
    [
        ("5", "4", True),
        ("5", "5", True),  # the same version again (a watch echo of our write) is harmless
        ("4", "5", False),
        ("10", "9", True),  # numbers, not strings: "10" < "9" as text
        ("9", "10", False),
        ("abc", "5", True),  # not orderable: the newcomer wins, as in a plain cache
        ("5", "", True),
        ("", "5", True),
    ],
)
def test_newer(candidate: str, current: str, wins: bool) -> None:
    assert newer(candidate, current) is wins


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        (None, {}),
        ("", {}),
        ("a=1", {"a": "1"}),
        (" a = 1 , b=2 ,", {"a": "1", "b": "2"}),
    ],
)
def test_parse_selector(text: str | None, terms: dict[str, str]) -> None:
    assert parse_selector(text) == terms


@pytest.mark.parametrize("text", ["a", "a!=1", "a==1", "a in (1)"])
def test_parse_selector_refuses_what_it_cannot_evaluate(text: str) -> None:
    with pytest.raises(SelectorError, match="unsupported label selector"):
        parse_selector(text)


def test_put_keeps_the_newest_version() -> None:
    store = Store()
    assert store.put(obj("x", "5"))
    assert not store.put(obj("x", "4", extra="old"))
    assert store.get("ns", "x") == obj("x", "5")
    # The same version again (a watch's echo of our own write) is no change.
    assert not store.put(obj("x", "5", extra="same"))
    assert store.get("ns", "x") == obj("x", "5")
    assert store.put(obj("x", "6", extra="new"))
    assert store.get("ns", "x") == obj("x", "6", extra="new")
    assert len(store) == 1


def test_put_ignores_nameless_objects_and_unaccepted_namespaces() -> None:
    store = Store(accept=lambda ns: ns.startswith("team-"))
    assert not store.put(obj("x", "1", ns="kube-system"))
    assert not store.put({"metadata": {"namespace": "team-a", "resourceVersion": "1"}})
    assert store.put(obj("x", "1", ns="team-a"))
    assert (store.accepts("team-b"), store.accepts("default")) == (True, False)
    assert names(list(store)) == ["x"]


def test_indexes_follow_a_relabel_and_a_move_between_instances() -> None:
    store = Store()
    store.put(obj("x", "1", instance="a"))
    store.put(obj("y", "1", instance="a"))
    store.put(obj("z", "1", instance="b"))
    store.put(obj("w", "1", ns="other", instance="a"))
    assert names(store.select("ns", f"{INDEX_LABEL}=a")) == ["x", "y"]

    store.put(obj("y", "2", instance="b"))
    assert names(store.select("ns", f"{INDEX_LABEL}=a")) == ["x"]
    assert names(store.select("ns", f"{INDEX_LABEL}=b")) == ["y", "z"]
    store.put(obj("x", "2", instance=None))
    assert store.select("ns", f"{INDEX_LABEL}=a") == []
    assert names(store.select("ns")) == ["x", "y", "z"]
    assert names(store.select(None, f"{INDEX_LABEL}=a")) == ["w"]
    assert names(store.select(None)) == ["x", "y", "z", "w"]  # by (namespace, name)


def test_select_matches_every_term_not_only_the_indexed_one() -> None:
    store = Store()
    store.put(obj("x", "1", role="predictor"))
    store.put(obj("y", "1", role="other"))
    assert names(store.select("ns", f"{INDEX_LABEL}=a,role=predictor")) == ["x"]
    assert names(store.select("ns", "role=other")) == ["y"]
    assert store.select("ns", f"{INDEX_LABEL}=missing") == []
    assert store.select("elsewhere") == []


def test_select_returns_copies() -> None:
    store = Store()
    store.put(obj("x", "1"))
    (copy_,) = store.select("ns")
    copy_["metadata"]["labels"]["mutated"] = "yes"
    copy_["spec"] = {"replicas": 3}
    assert store.get("ns", "x") == obj("x", "1")


def test_remove_ignores_an_older_version_and_unknown_names() -> None:
    store = Store()
    store.put(obj("x", "5"))
    assert store.remove("ns", "x", resource_version="4") is None  # a stale deletion
    assert store.remove("ns", "nothing") is None
    assert store.get("ns", "x") is not None
    assert store.remove("ns", "x", resource_version="6") == obj("x", "5")
    assert store.get("ns", "x") is None
    assert store.select("ns", f"{INDEX_LABEL}=a") == []
    store.put(obj("y", "1"))
    assert store.remove("ns", "y") == obj("y", "1")  # no version: unconditional
    assert len(store) == 0


def test_replace_reports_what_changed_and_what_went() -> None:
    store = Store(accept=lambda ns: ns != "skip")
    store.put(obj("same", "1"))
    store.put(obj("changed", "1"))
    store.put(obj("gone", "1"))
    changed, removed = store.replace(
        [obj("same", "1"), obj("changed", "2"), obj("new", "3"), obj("out", "1", ns="skip")]
    )
    assert sorted(names(changed)) == ["changed", "new"]
    assert names(removed) == ["gone"]
    assert names(store.select("ns", f"{INDEX_LABEL}=a")) == ["changed", "new", "same"]
    assert store.get("skip", "out") is None
    changed, removed = store.replace([])
    assert (changed, sorted(names(removed))) == ([], ["changed", "new", "same"])
    assert len(store) == 0
    assert store.select("ns", f"{INDEX_LABEL}=a") == []


def test_managed_fields_are_not_kept() -> None:
    store = Store()
    obj = {
        "metadata": {
            "name": "a",
            "namespace": "ns",
            "resourceVersion": "1",
            "managedFields": [{"manager": "gantry", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"x": 1},
    }
    store.put(obj)
    held = store.get("ns", "a")
    assert held is not None
    assert "managedFields" not in held["metadata"]
    assert held["spec"] == {"x": 1}
    assert "managedFields" in obj["metadata"]  # the caller's object is left alone
    store.replace([{**obj, "metadata": {**obj["metadata"], "resourceVersion": "2"}}])
    assert "managedFields" not in store.select("ns")[0]["metadata"]


def test_get_and_iteration_return_copies_too() -> None:
    store = Store()
    store.put(obj("x", "1"))
    got = store.get("ns", "x")
    assert got is not None
    got["metadata"]["labels"][INDEX_LABEL] = "moved"
    (listed,) = list(store)
    listed["spec"] = {}
    assert store.get("ns", "x") == obj("x", "1")
    assert names(store.select("ns", f"{INDEX_LABEL}=a")) == ["x"]


def test_membership_without_reading_the_object() -> None:
    store = Store()
    store.put(obj("x", "1"))
    assert ("ns", "x") in store
    assert ("ns", "y") not in store
    assert ("other", "x") not in store


def test_objects_survive_the_round_trip_unchanged() -> None:
    # Held as JSON text: non-ASCII, nested lists, numbers, booleans and nulls come back equal.
    original = obj("x", "1", note="café")
    original["spec"] = {"a": [1, 2.5, True, None, {"b": "ü"}], "empty": {}, "n": -3}
    store = Store()
    store.put(original)
    assert store.get("ns", "x") == original
    assert store.remove("ns", "x") == original
