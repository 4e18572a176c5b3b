"""``gantry_asyncio_tasks`` follows the loop's live tasks (the churn soak reads it for leaks)."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from gantry.metrics import OperatorMetrics


def _scraped(metrics: OperatorMetrics) -> float:
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith("gantry_asyncio_tasks "):
            return float(line.split()[1])
    raise AssertionError("gantry_asyncio_tasks not exported")


async def test_the_gauge_counts_tasks_as_they_start_and_end() -> None:
    metrics = OperatorMetrics()
    metrics.count_tasks_of(asyncio.get_running_loop())
    before = _scraped(metrics)
    release = asyncio.Event()
    tasks = [asyncio.create_task(release.wait()) for _ in range(5)]
    await asyncio.sleep(0)
    assert _scraped(metrics) == before + 5
    release.set()
    await asyncio.gather(*tasks)
    assert _scraped(metrics) == before


async def test_a_scrape_from_another_thread_reads_the_loop() -> None:
    # prometheus_client serves /metrics from its own thread, not the loop's.
    metrics = OperatorMetrics()
    metrics.count_tasks_of(asyncio.get_running_loop())
    assert await asyncio.to_thread(_scraped, metrics) >= 1  # this test's own task
