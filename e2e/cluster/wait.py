"""Deadline-bounded polling: every wait in the cluster tooling goes through here."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(TimeoutError):
    """A condition did not hold before its deadline."""


def poll(
    what: str,
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``check`` until it returns something other than None/False, or time out.

    ``describe`` is called on timeout to say what was last seen, so a failure names its cause
    instead of only "timed out".
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            detail = f": {describe()}" if describe is not None else ""
            raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)
