"""Reading the local API server's audit log: who wrote what, and when.

The policy (``audit-policy.yaml``) logs writes to what Gantry touches at Metadata level, one
JSON line per request. Every component of the local cluster logs in with one admin certificate,
so a writer is told apart by ``userAgent`` (kube-controller-manager, kubectl, ``gantry/...``) or,
for clients given a ServiceAccount token, by ``user.username``.

``read(log, since=..., until=...)`` returns the entries of a time window from the log and its
rotated backups, oldest first; :func:`terms` folds the writes of several identities into runs,
which is how a test proves that two operator replicas never wrote in the same window.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class AuditLogError(ValueError):
    """A line of the audit log is not an audit event as the reader expects; names the field."""


@dataclass(frozen=True)
class AuditEntry:
    """One audited request (stage ResponseComplete or Panic)."""

    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    username: str
    user_agent: str
    at: datetime  # stageTimestamp: when the answer was complete
    code: int  # responseStatus.code; 0 when the server recorded none

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


def _field(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split("."):
        if value is None:
            return None  # an optional object left out (no objectRef on /healthz, say)
        if not isinstance(value, dict):
            raise AuditLogError(f"{path}: expected an object above {part!r}, got {value!r}")
        value = value.get(part)
    return value


def _text(event: dict[str, Any], path: str, *, required: bool = False) -> str:
    value = _field(event, path)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise AuditLogError(f"{path}: expected a string, got {value!r}")
    return value


def parse_entry(line: str) -> AuditEntry | None:
    """One log line as an entry; None for a blank line or a stage other than the final one.

    Raises:
        AuditLogError: not JSON, not an audit event, or a field of the wrong type (named).
    """
    if not line.strip():
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError as err:
        raise AuditLogError(f"not JSON ({err}): {line[:200]!r}") from err
    if not isinstance(event, dict) or event.get("kind") != "Event":
        raise AuditLogError(f"kind: expected 'Event' of audit.k8s.io: {line[:200]!r}")
    if event.get("stage") not in ("ResponseComplete", "Panic"):
        return None  # ResponseStarted of a watch: its ResponseComplete follows
    verb = _text(event, "verb", required=True)
    username = _text(event, "user.username", required=True)
    stamp = _text(event, "stageTimestamp", required=True)
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError as err:
        raise AuditLogError(f"stageTimestamp: not RFC 3339: {stamp!r}") from err
    code = _field(event, "responseStatus.code")
    if code is not None and not isinstance(code, int):
        raise AuditLogError(f"responseStatus.code: expected an integer, got {code!r}")
    return AuditEntry(
        verb=verb,
        resource=_text(event, "objectRef.resource"),
        subresource=_text(event, "objectRef.subresource"),
        namespace=_text(event, "objectRef.namespace"),
        name=_text(event, "objectRef.name"),
        username=username,
        user_agent=_text(event, "userAgent"),
        at=at,
        code=code or 0,
    )


def log_files(log: Path) -> list[Path]:
    """The log and its rotated backups (``audit-<time>.log``), oldest first."""
    backups = sorted(log.parent.glob(f"{log.stem}-*{log.suffix}"))
    return [*backups, log] if log.exists() else backups


def _lines(paths: Iterable[Path]) -> Iterator[tuple[Path, int, str]]:
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                yield path, number, line


def read(
    log: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    where: Callable[[AuditEntry], bool] | None = None,
) -> list[AuditEntry]:
    """Entries with ``since <= stageTimestamp <= until`` (aware datetimes), oldest first.

    Raises:
        AuditLogError: a line that is not an audit event, with its file and line number.
    """
    entries: list[AuditEntry] = []
    for path, number, line in _lines(log_files(log)):
        try:
            entry = parse_entry(line)
        except AuditLogError as err:
            raise AuditLogError(f"{path}:{number}: {err}") from err
        if entry is None:
            continue
        if since is not None and entry.at < since:
            continue
        if until is not None and entry.at > until:
            continue
        if where is None or where(entry):
            entries.append(entry)
    entries.sort(key=lambda e: e.at)
    return entries


@dataclass(frozen=True)
class Term:
    """A run of consecutive writes by one identity, with nobody else's write in between."""

    identity: str
    first: datetime
    last: datetime
    writes: int


def terms(
    entries: Iterable[AuditEntry], identity: Callable[[AuditEntry], str | None]
) -> list[Term]:
    """Fold the writes of the identities that ``identity`` names (None: not counted) into runs.

    Two writers that take turns (a leader, then its successor) give one term each; two that
    wrote in the same window give alternating terms, so ``[t.identity for t in terms(...)]``
    is the whole story of who acted when.
    """
    runs: list[Term] = []
    for entry in sorted(entries, key=lambda e: e.at):
        who = identity(entry)
        if who is None or not entry.is_write:
            continue
        if runs and runs[-1].identity == who:
            last = runs[-1]
            runs[-1] = Term(who, last.first, entry.at, last.writes + 1)
        else:
            runs.append(Term(who, entry.at, entry.at, 1))
    return runs
