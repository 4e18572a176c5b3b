"""Every name and label value Gantry derives, fitted to Kubernetes' rules here and only here.

A ModelDeployment name is a DNS-1123 subdomain of up to 253 characters, while
its children need less: a Service name is a DNS-1035 label (63 characters,
starting with a letter), a label value is at most 63 characters. A value that
does not fit is cut and suffixed with a short hash of the whole, so the same
input always gives the same output and distinct inputs stay distinct. Whatever
joins two objects (a pod label and a Deployment name, a route backend and a
Service name) must use a name from this module, never re-derive one: the
fitted name is the only name.

The names, and why each has its form:

* Deployment of the first revision: the ModelDeployment's name, fitted to
  ``MAX_DEPLOYMENT_NAME`` (46). A pod is named ``<generateName[:58]><5 random>``
  by the API server, and its generateName is ``<deployment>-<template hash>-``
  (hash up to 10 characters), so only a Deployment name of at most 46
  characters survives whole in its pods' names. Then a pod name always ends in
  exactly two dash-free fields after its Deployment's name, which is what makes
  the PromQL pod selector of one Deployment provably miss every other
  (:func:`gantry.analysis.promql.pod_regex`), and what keeps pods readable.
* Deployment of a later revision (a canary): ``<first>-<revision>``, see
  :func:`suffixed`. After a promotion it stays the stable under that name.
* Main Service: the ModelDeployment's name as a DNS-1035 label.
* Per-revision Service (an HTTPRoute backend): ``<main Service>-<revision>``,
  see :func:`suffixed`, which is never the main Service's name.
* HTTPRoute, HorizontalPodAutoscaler, PodDisruptionBudget: the ModelDeployment's
  name itself. Their names are DNS-1123 subdomains of up to 253 characters, as
  the ModelDeployment's is, and no other object refers to them by name.
"""

from __future__ import annotations

import hashlib
import re

MAX_LABEL_VALUE = 63
MAX_DNS_LABEL = 63
# The longest name the API server keeps whole in a generateName (63 minus 5 random).
MAX_GENERATE_NAME = 58
# A ReplicaSet is named <deployment>-<pod template hash>; the hash is a uint32 in
# decimal, re-encoded character by character, so at most 10 characters.
MAX_TEMPLATE_HASH = 10
# <deployment>-<hash>-, whole within MAX_GENERATE_NAME (see the module docs).
MAX_DEPLOYMENT_NAME = MAX_GENERATE_NAME - MAX_TEMPLATE_HASH - 2
HASH_LENGTH = 8
REVISION_SUFFIX_LENGTH = 10

_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_NOT_DNS = re.compile(r"[^a-z0-9-]")
_NOT_LABEL_VALUE = re.compile(r"[^-A-Za-z0-9_.]")
_SUFFIX = re.compile(r"[a-z0-9]+")


def short_hash(text: str, *, length: int = HASH_LENGTH) -> str:
    """A stable hex digest prefix of ``text`` (the same in every process)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit(value: str, *, limit: int = MAX_LABEL_VALUE) -> str:
    """Returns ``value`` when it fits in ``limit``, else a cut prefix plus a hash of all of it.

    The prefix loses trailing ``-``, ``_`` and ``.`` so the result still ends in
    an alphanumeric character, as label values and DNS names must. A cut prefix
    of a DNS-1123 subdomain (or label) is then one too, so fitting keeps the
    kind of name it is given. ``fit`` is idempotent: a fitted value fits.

    Raises:
        ValueError: ``limit`` leaves no room for the hash.
    """
    if limit < HASH_LENGTH:
        raise ValueError(f"fit() needs a limit of at least {HASH_LENGTH}, got {limit}")
    if len(value) <= limit:
        return value
    digest = short_hash(value)
    room = limit - len(digest) - 1  # for the head, before the dash and the digest
    head = value[:room].rstrip("-_.") if room > 0 else ""
    return f"{head}-{digest}" if head else digest


def label_value(value: str) -> str:
    """A valid label value for ``value``: itself when it is one, else a fitted, hashed form.

    Characters a label value cannot hold become ``-`` and the hash of the
    original is appended (so ``a/b`` and ``a-b`` stay apart).
    """
    if len(value) <= MAX_LABEL_VALUE and _LABEL_VALUE.fullmatch(value):
        return value
    cleaned = _NOT_LABEL_VALUE.sub("-", value).strip("-_.")
    if cleaned == value:
        return fit(value, limit=MAX_LABEL_VALUE)
    digest = short_hash(value)
    return fit(f"{cleaned}-{digest}", limit=MAX_LABEL_VALUE) if cleaned else digest


def dns_label(name: str) -> str:
    """A DNS-1035 label (Service names) derived from a DNS-1123 subdomain.

    Dots become dashes, a leading digit gets an ``md-`` prefix (Service names must
    start with a letter), and the result is cut to 63 characters with a hash.
    Names that are already valid labels come back unchanged.
    """
    label = _NOT_DNS.sub("-", name.lower()).strip("-")
    if not label[:1].isalpha():
        label = f"md-{label}".rstrip("-")
    if label == name:
        return fit(label, limit=MAX_DNS_LABEL)
    # The name changed, so hash the original to keep e.g. "a.b" and "a-b" apart.
    return fit(f"{label}-{short_hash(name)}", limit=MAX_DNS_LABEL)


def revision_suffix(revision: str) -> str:
    """``revision`` as a name suffix: itself when it is a short ``[a-z0-9]+`` (as
    :func:`gantry.render.revision.revision` makes them), else a hash of it, so a
    revision read back from an edited status still makes valid names."""
    if len(revision) <= REVISION_SUFFIX_LENGTH and _SUFFIX.fullmatch(revision):
        return revision
    return short_hash(revision, length=REVISION_SUFFIX_LENGTH)


def suffixed(base: str, suffix: str, *, limit: int) -> str:
    """``<base>-<suffix>`` within ``limit``, and provably never ``base`` itself.

    When the whole fits it is longer than ``base``; when it does not, ``base``
    is fitted short enough that the whole is shorter than ``base``. Either way
    the lengths differ. ``suffix`` holds no ``-`` (see :func:`revision_suffix`),
    so it is everything after the last dash, and distinct suffixes of one base
    give distinct names.

    Args:
        base: A fitted name, at most ``limit`` characters.
        suffix: ``[a-z0-9]+``, short enough to leave room for a hashed base.
        limit: The longest name allowed.

    Raises:
        ValueError: ``suffix`` is not ``[a-z0-9]+``, or the names cannot fit ``limit``.
    """
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"a name suffix must be [a-z0-9]+, got {suffix!r}")
    if len(base) > limit:
        raise ValueError(f"{base!r} is longer than {limit}: fit it first")
    joined = f"{base}-{suffix}"
    if len(joined) <= limit:
        return joined
    return f"{fit(base, limit=len(base) - len(suffix) - 2)}-{suffix}"


def deployment_name(md_name: str, revision: str | None = None) -> str:
    """The Deployment of ``md_name``'s first revision (``revision`` None), or of a later one.

    The first is the ModelDeployment's name fitted to :data:`MAX_DEPLOYMENT_NAME`;
    a later revision's is that name with the revision appended (:func:`suffixed`),
    so it never equals the first's.
    """
    first = fit(md_name, limit=MAX_DEPLOYMENT_NAME)
    if revision is None:
        return first
    return suffixed(first, revision_suffix(revision), limit=MAX_DEPLOYMENT_NAME)


def recorded_deployment_name(name: str) -> str:
    """A Deployment name read back from the status, as the operator uses it now.

    Names of at most 63 characters were fitted by earlier versions, and their
    Deployments exist and serve: they are kept as they are. A longer one (an
    earlier version did not fit canary names, nor the names of ModelDeployments
    longer than 63 characters) is fitted as a new name would be; its pods were
    labelled with a fitted name that never matched it, so it never became Ready.
    """
    if len(name) <= MAX_DNS_LABEL:
        return name
    return fit(name, limit=MAX_DEPLOYMENT_NAME)


def service_name(md_name: str) -> str:
    """The main Service: the ModelDeployment's name as a DNS-1035 label."""
    return dns_label(md_name)


def revision_service_name(md_name: str, revision: str) -> str:
    """The Service of one revision's pods (an HTTPRoute backend).

    ``<main Service>-<revision>`` (:func:`suffixed`): never the main Service's
    name, and distinct for distinct revisions of one ModelDeployment.
    """
    return suffixed(service_name(md_name), revision_suffix(revision), limit=MAX_DNS_LABEL)


def md_child_name(md_name: str) -> str:
    """HTTPRoute, HorizontalPodAutoscaler and PodDisruptionBudget: the name itself.

    Each takes a DNS-1123 subdomain of up to 253 characters, which the
    ModelDeployment's name already is; there is one of each per ModelDeployment.
    """
    return md_name
