"""What a refused child write reports and when it is tried again (pure policy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gantry.status.child_failures import (
    BASE_DELAY,
    MAX_DELAY,
    REPEATS_BEFORE_REPORT,
    ChildFailure,
    FailureKind,
    delay,
    manifests_hash,
    record,
    transient,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
R, C, K = FailureKind.REJECTED, FailureKind.CONFLICT, FailureKind.KIND_NOT_INSTALLED


def fail(
    previous: ChildFailure | None, kind: FailureKind, status: int, digest: str = "a"
) -> ChildFailure:
    return record(previous, kind=kind, message="m", manifests=digest, status=status, now=T0)


@pytest.mark.parametrize(
    ("status", "want"),
    [
        (400, False),
        (403, False),
        (404, False),
        (409, True),
        (422, False),
        (429, True),
        (500, True),
        (503, True),
        (504, True),
    ],
)
def test_transient(status: int, want: bool) -> None:
    assert transient(status) is want


@pytest.mark.parametrize(
    ("attempts", "want"),
    [
        (0, BASE_DELAY),
        (1, BASE_DELAY),
        (2, 2 * BASE_DELAY),
        (3, 4 * BASE_DELAY),
        (7, MAX_DELAY),
        (60, MAX_DELAY),
        (10000, MAX_DELAY),
    ],
)
def test_delay_doubles_and_is_capped(attempts: int, want: float) -> None:
    assert delay(attempts) == want


@pytest.mark.parametrize(
    ("kind", "statuses", "reportable"),
    [
        (R, [422], True),
        (R, [403], True),
        (R, [400], True),
        (R, [500], False),
        (R, [500] * (REPEATS_BEFORE_REPORT - 1), False),
        (R, [500] * REPEATS_BEFORE_REPORT, True),
        (R, [503, 500, 429], True),
        (R, [409], False),
        (C, [0], True),
        (K, [404], True),
    ],
)
def test_reportable(kind: FailureKind, statuses: list[int], reportable: bool) -> None:
    failure = None
    for status in statuses:
        failure = fail(failure, kind, status)
    assert failure is not None
    assert failure.reportable is reportable
    assert failure.attempts == len(statuses)


def test_attempts_restart_on_new_manifests_or_kind() -> None:
    first = fail(fail(None, R, 500), R, 500)
    assert first.attempts == 2
    assert fail(first, R, 500, digest="b").attempts == 1
    assert fail(first, C, 0).attempts == 1


def test_due_after_backoff_or_on_new_manifests() -> None:
    failure = fail(fail(None, R, 422), R, 422)  # two attempts: 2 * BASE_DELAY
    wait = timedelta(seconds=2 * BASE_DELAY)
    assert failure.retry_at == T0 + wait
    assert not failure.due("a", T0)
    assert not failure.due("a", T0 + wait - timedelta(milliseconds=1))
    assert failure.due("a", T0 + wait)
    assert failure.due("b", T0), "a spec change is tried at once"


def test_manifests_hash_is_order_and_content_sensitive() -> None:
    a = {"kind": "Service", "metadata": {"name": "x"}}
    b = {"kind": "Deployment", "metadata": {"name": "x"}}
    assert manifests_hash([a, b]) == manifests_hash([dict(a), dict(b)])
    assert manifests_hash([a, b]) != manifests_hash([b, a])
    assert manifests_hash([a]) != manifests_hash([{**a, "spec": {}}])
    # Key order inside a manifest does not matter (canonical JSON).
    assert manifests_hash([{"a": 1, "b": 2}]) == manifests_hash([{"b": 2, "a": 1}])
