"""The PromQL pod regex against pod names made the way Kubernetes makes them.

The naming is copied from Kubernetes, not from the code under test:
k8s.io/kubernetes pkg/controller/deployment/sync.go ``generateReplicaSetName``
(``<deployment>-<hash>``, the deployment cut to fit 253), pkg/controller
controller_utils.go ``getPodsPrefix`` (generateName ``<replicaset>-``) and
``ComputeHash`` (a uint32 in decimal, re-encoded: 1 to 10 characters of the
alphabet below), and k8s.io/apiserver pkg/storage/names ``GenerateName`` (the
first 58 characters of the generateName, then 5 random characters).
"""

from __future__ import annotations

import itertools
import re

import pytest

from gantry.analysis.promql import pod_regex
from gantry.render import names

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery pkg/util/rand alphanums


def replicaset_name(deployment: str, template_hash: str) -> str:
    longest = 253 - 1 - len(template_hash)
    return f"{deployment[:longest]}-{template_hash}"


def pod_name(replicaset: str, random: str) -> str:
    prefix = f"{replicaset}-" if len(replicaset) + 1 <= 253 else replicaset
    return prefix[:58] + random


def hashes() -> list[str]:
    """Template hashes of every length, from both ends of the alphabet."""
    out = []
    for length in range(1, 11):
        out += [ALPHABET[:length], ALPHABET[-length:], ALPHABET[5] * length]
    return out


def pods_of(deployment: str) -> list[str]:
    return [
        pod_name(replicaset_name(deployment, h), r)
        for h in hashes()
        for r in ("bcdfg", "98765", "x2x9z")
    ]


def name_of(pattern: str, length: int) -> str:
    text = "".join(itertools.islice(itertools.cycle(pattern), length))
    return text if text[-1].isalnum() else text[:-1] + "z"


@pytest.mark.parametrize("length", range(1, 254))
def test_every_pod_of_a_deployment_matches(length: int) -> None:
    for pattern in ("abc", "a-", "a.", "9-", "ab.cd-ef."):
        deployment = name_of(pattern, length)
        rx = re.compile(pod_regex(deployment))
        for pod in pods_of(deployment):
            assert rx.fullmatch(pod), (deployment, pod, rx.pattern)


@pytest.mark.parametrize("length", range(1, 254))
def test_a_canary_regex_never_matches_the_stable_pods(length: int) -> None:
    """The Deployments Gantry names for one ModelDeployment, every name length: the
    canary's selector misses the stable's pods and the other way round."""
    for pattern in ("abc", "a-", "a.", "9-", "ab.cd-ef."):
        md = name_of(pattern, length)
        first = names.deployment_name(md)
        later = [names.deployment_name(md, r) for r in ("0123456789", "bcdfbcdfbc")]
        for a, b in itertools.permutations([first, *later], 2):
            rx = re.compile(pod_regex(a))
            assert not any(rx.fullmatch(p) for p in pods_of(b)), (a, b)


def test_gantry_deployment_names_survive_whole_in_pod_names() -> None:
    longest = names.deployment_name("x" * 253, "0123456789")
    assert len(longest) <= names.MAX_DEPLOYMENT_NAME
    for pod in pods_of(longest):
        assert pod.startswith(f"{longest}-")
        assert len(pod.removeprefix(f"{longest}-").split("-")) == 2


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        ("resnet-0123456789", "resnet-0123456789-[a-z0-9]+-[a-z0-9]+"),
        ("a.b", "a\\.b-[a-z0-9]+-[a-z0-9]+"),
        ("x" * 46, "x" * 46 + "-[a-z0-9]+-[a-z0-9]+"),
        ("x" * 47, "x" * 47 + "-(?:[a-z0-9]{1,9}-|[a-z0-9]{10})[a-z0-9]{5}"),
        ("x" * 56, "x" * 56 + "-(?:[a-z0-9]{1})[a-z0-9]{5}"),
        ("x" * 57, "x" * 57 + "-[a-z0-9]{5}"),
        ("x" * 63, "x" * 58 + "[a-z0-9]{5}"),
    ],
    ids=["short", "dotted", "46", "47", "56", "57", "63"],
)
def test_pod_regex_forms(deployment: str, expected: str) -> None:
    assert pod_regex(deployment) == expected
