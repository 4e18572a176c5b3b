"""The audit-log reader on a log recorded from the local control plane.

``audit-sample.jsonl`` was written by the API server of a cluster started by ``e2e.cluster``
with its audit policy, while kubectl created, scaled and deleted a Deployment (one delete
refused: an impersonated user without rights) and a ServiceAccount token created a Service.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from e2e.cluster.audit import AuditEntry, AuditLogError, Term, log_files, parse_entry, read, terms

SAMPLE = Path(__file__).with_name("audit-sample.jsonl")
KUBECTL = "kubectl/v1.36.3 (linux/amd64) kubernetes/$Format"
AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def test_every_recorded_write_is_read_with_its_fields() -> None:
    entries = read(SAMPLE)
    assert len(entries) == len(SAMPLE.read_text().splitlines()) == 16
    by_kubectl = [
        (e.verb, e.resource, e.subresource, e.namespace, e.name, e.code)
        for e in entries
        if e.user_agent == KUBECTL
    ]
    assert by_kubectl == [
        ("create", "deployments", "", "audit-sample", "web", 201),
        ("patch", "deployments", "scale", "audit-sample", "web", 200),
        ("delete", "deployments", "", "audit-sample", "web", 403),
        ("delete", "deployments", "", "audit-sample", "web", 200),
        ("create", "services", "", "audit-sample", "svc1", 201),
    ]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert all(e.is_write and e.at.tzinfo is not None for e in entries)


def test_the_policy_left_reads_and_node_heartbeats_out() -> None:
    entries = read(SAMPLE)
    assert {e.verb for e in entries} <= {"create", "patch", "delete"}
    assert "kube-node-lease" not in {e.namespace for e in entries}


def test_a_token_identifies_its_writer_by_username() -> None:
    users = {e.username for e in read(SAMPLE)}
    assert users == {"system:apiserver", "gantry-admin", "system:serviceaccount:audit-sample:r1"}


def test_the_window_is_inclusive_on_both_ends() -> None:
    entries = read(SAMPLE)
    scale = next(e for e in entries if e.subresource == "scale")
    window = read(SAMPLE, since=scale.at, until=scale.at)
    assert window == [scale]
    later = read(SAMPLE, since=scale.at + timedelta(microseconds=1))
    assert scale not in later
    assert len(later) == len([e for e in entries if e.at > scale.at])
    mine = read(SAMPLE, where=lambda e: e.user_agent == KUBECTL and not e.ok)
    assert [(e.verb, e.code) for e in mine] == [("delete", 403)]


def test_rotated_backups_are_read_oldest_first(tmp_path: Path) -> None:
    lines = SAMPLE.read_text().splitlines(keepends=True)
    (tmp_path / "audit-2026-11-30T08-00-00.000.log").write_text("".join(lines[:5]))
    (tmp_path / "audit-2026-11-30T08-06-00.000.log").write_text("".join(lines[5:10]))
    (tmp_path / "audit.log").write_text("".join(lines[10:]))
    (tmp_path / "kube-apiserver.log").write_text("not audit\n")
    names = [p.name for p in log_files(tmp_path / "audit.log")]
    assert names == [
        "audit-2026-11-30T08-00-00.000.log",
        "audit-2026-11-30T08-06-00.000.log",
        "audit.log",
    ]
    assert read(tmp_path / "audit.log") == read(SAMPLE)


def test_no_log_yet_reads_as_no_entries(tmp_path: Path) -> None:
    assert read(tmp_path / "audit.log") == []


def _event(**fields: object) -> str:
    event: dict[str, object] = {
        "kind": "Event",
        "stage": "ResponseComplete",
        "verb": "create",
        "user": {"username": "u"},
        "stageTimestamp": "2026-11-30T08:06:11.910523Z",
    }
    event.update(fields)
    return json.dumps(event)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"kind": "Status"}), "kind: expected 'Event'"),
        (_event(stageTimestamp="yesterday"), "stageTimestamp: not RFC 3339"),
        (_event(stageTimestamp=None), "stageTimestamp: expected a string"),
        (_event(user={"username": 7}), "user.username: expected a string"),
        (_event(user="root"), "user.username: expected an object"),
        (_event(responseStatus={"code": "200"}), "responseStatus.code: expected an integer"),
    ],
)
def test_a_malformed_line_is_refused_naming_the_field(line: str, message: str) -> None:
    with pytest.raises(AuditLogError, match=message):
        parse_entry(line)


def test_the_file_and_line_of_a_malformed_entry_are_named(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    shutil.copy(SAMPLE, log)
    with log.open("a") as out:
        out.write(_event(verb=None) + "\n")
    with pytest.raises(AuditLogError, match=r"audit.log:17: verb: expected a string"):
        read(log)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", None),
        ("   \n", None),
        (_event(stage="ResponseStarted"), None),
        (
            _event(stage="Panic", objectRef={"resource": "leases", "name": "gantry"}),
            AuditEntry(
                "create",
                "leases",
                "",
                "",
                "gantry",
                "u",
                "",
                datetime(2026, 11, 30, 8, 6, 11, 910523, tzinfo=UTC),
                0,
            ),
        ),
    ],
)
def test_only_final_stages_are_entries(line: str, expected: AuditEntry | None) -> None:
    assert parse_entry(line) == expected


def _write(who: str, seconds: int, verb: str = "patch") -> AuditEntry:
    return AuditEntry(
        verb,
        "deployments",
        "",
        "ns",
        "d",
        who,
        f"gantry/0 ({who})",
        AT + timedelta(seconds=seconds),
        200,
    )


def _runs(ts: list[Term]) -> list[tuple[str, int, int, int]]:
    return [(t.identity, t.first.second, t.last.second, t.writes) for t in ts]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], []),
        ([_write("a", 1)], [("a", 1, 1, 1)]),
        # A hand-over: a's writes, then b's.
        ([_write("a", 1), _write("a", 2), _write("b", 5)], [("a", 1, 2, 2), ("b", 5, 5, 1)]),
        # Out of order in the input: folded by time.
        ([_write("b", 5), _write("a", 1)], [("a", 1, 1, 1), ("b", 5, 5, 1)]),
        # Both wrote in one window: the runs alternate.
        (
            [_write("a", 1), _write("b", 2), _write("a", 3)],
            [("a", 1, 1, 1), ("b", 2, 2, 1), ("a", 3, 3, 1)],
        ),
        # Others' writes (None) and reads do not break a run.
        (
            [_write("a", 1), _write("kubectl", 2), _write("a", 3, verb="get")],
            [("a", 1, 1, 1)],
        ),
    ],
)
def test_terms_fold_writes_into_runs_per_identity(
    entries: list[AuditEntry], expected: list[tuple[str, int, int, int]]
) -> None:
    def replica(e: AuditEntry) -> str | None:
        return e.username if e.username in ("a", "b") else None

    assert _runs(terms(entries, replica)) == expected
