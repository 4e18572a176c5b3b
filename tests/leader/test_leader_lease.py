"""The pure election rules: every (lease state, identity, elapsed) case and its decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gantry.leader.lease import (
    Create,
    Decision,
    ElectionConfig,
    Follow,
    LeaseRecord,
    Renew,
    TakeOver,
    decide,
    format_microtime,
    parse_microtime,
    record_from_lease,
    released,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
EARLIER = NOW - timedelta(seconds=40)
ME, OTHER = "gantry-a", "gantry-b"


def held(holder: str, *, duration: int = 15, transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(holder, duration, EARLIER, EARLIER, transitions, "42")


CASES: list[tuple[str, LeaseRecord | None, float, Decision]] = [
    ("no lease: create it", None, 0.0, Create(LeaseRecord(ME, 15, NOW, NOW, 0))),
    (
        "ours: renew, keep acquireTime and transitions",
        held(ME),
        3.0,
        Renew(LeaseRecord(ME, 15, EARLIER, NOW, 3, "42")),
    ),
    (
        "ours even when it looks expired: renew (a restart with the same identity)",
        held(ME),
        99.0,
        Renew(LeaseRecord(ME, 15, EARLIER, NOW, 3, "42")),
    ),
    ("other's, just seen: follow", held(OTHER), 0.0, Follow(OTHER, 15.0)),
    ("other's, seen unchanged 14.5s of 15: follow", held(OTHER), 14.5, Follow(OTHER, 0.5)),
    (
        "other's, unchanged exactly its duration: take over",
        held(OTHER),
        15.0,
        TakeOver(LeaseRecord(ME, 15, NOW, NOW, 4, "42"), previous_holder=OTHER),
    ),
    (
        "other's, expiry uses the record's duration, not ours",
        held(OTHER, duration=60),
        30.0,
        Follow(OTHER, 30.0),
    ),
    (
        "released (empty holder): take over at once",
        held(""),
        0.0,
        TakeOver(LeaseRecord(ME, 15, NOW, NOW, 4, "42"), previous_holder=""),
    ),
    (
        "released by ReleaseOnCancel (duration 1): take over at once",
        held("", duration=1),
        0.0,
        TakeOver(LeaseRecord(ME, 15, NOW, NOW, 4, "42"), previous_holder=""),
    ),
]


@pytest.mark.parametrize(
    ("current", "unchanged_for", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(current: LeaseRecord | None, unchanged_for: float, expected: Decision) -> None:
    got = decide(current, identity=ME, unchanged_for=unchanged_for, now=NOW, lease_duration=15)
    assert got == expected


def test_renew_without_acquire_time_stamps_now() -> None:
    bare = LeaseRecord(ME, 15, None, None, 0, "7")
    got = decide(bare, identity=ME, unchanged_for=0, now=NOW, lease_duration=15)
    assert got == Renew(LeaseRecord(ME, 15, NOW, NOW, 0, "7"))


def test_empty_identity_is_refused() -> None:
    with pytest.raises(ValueError, match="identity"):
        decide(None, identity="", unchanged_for=0, now=NOW, lease_duration=15)


def test_released_record_keeps_transitions_and_version() -> None:
    assert released(held(ME), now=NOW) == LeaseRecord("", 1, NOW, NOW, 3, "42")


def test_lease_object_round_trip() -> None:
    record = LeaseRecord(ME, 15, EARLIER, NOW, 2)
    lease = {"metadata": {"resourceVersion": "9"}, "spec": record.spec()}
    assert lease["spec"]["renewTime"] == "2025-03-01T12:00:00.123456Z"
    assert record_from_lease(lease) == LeaseRecord(ME, 15, EARLIER, NOW, 2, "9")


def test_empty_lease_spec_reads_as_released() -> None:
    assert record_from_lease({"metadata": {}}) == LeaseRecord("", 0, None, None, 0, "")


def test_wrongly_typed_field_is_named() -> None:
    with pytest.raises(ValueError, match=r"spec\.leaseDurationSeconds"):
        record_from_lease({"spec": {"leaseDurationSeconds": "15"}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T12:00:00.123456Z", NOW),
        ("2025-03-01T12:00:00.123456789Z", NOW),  # nanoseconds: truncated to micro
        ("2025-03-01T12:00:00.1Z", NOW.replace(microsecond=100000)),
        ("2025-03-01T12:00:00Z", NOW.replace(microsecond=0)),
        ("2025-03-01T13:00:00.123456+01:00", NOW),
    ],
)
def test_parse_microtime(text: str, expected: datetime) -> None:
    assert parse_microtime(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2025-03-01T12:00:00"])
def test_parse_microtime_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="Lease time"):
        parse_microtime(text)


def test_format_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        format_microtime(datetime(2025, 1, 1))  # noqa: DTZ001 - the naive time under test


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lease_duration": 0}, "lease_duration"),
        ({"lease_duration": 10, "renew_deadline": 10}, "renew_deadline"),
        ({"lease_duration": 10, "renew_deadline": 0}, "renew_deadline"),
        ({"renew_deadline": 2.0, "retry_period": 2.0}, "retry_period"),
        ({"retry_period": 0}, "retry_period"),
    ],
)
def test_config_refuses_unsafe_timing(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ElectionConfig(**kwargs)  # type: ignore[arg-type]


def test_default_config_is_client_go_s() -> None:
    assert ElectionConfig() == ElectionConfig(15, 10.0, 2.0)
