"""What ``/proc`` says about a process and the machine (the operator is measured from outside)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcSample:
    """One reading of a process.

    Attributes:
        rss_kib: Resident memory now (``VmRSS``).
        hwm_kib: Peak resident memory so far (``VmHWM``).
        cpu_s: User plus system CPU seconds so far.
        sockets: Open sockets (``/proc/PID/fd`` links to ``socket:[...]``): connections to the
            API server and to pods, listeners, and the event loop's own socketpair.
        fds: Open file descriptors of any kind.
        threads: Threads (asyncio's default executor grows them).
    """

    rss_kib: int
    hwm_kib: int
    cpu_s: float
    sockets: int
    fds: int
    threads: int


def _status_kib(fields: dict[str, str], key: str) -> int:
    return int(fields.get(key, "0 kB").split()[0])


def parse_stat_cpu(stat: str, ticks_per_second: int) -> float:
    """User plus system seconds from a ``/proc/PID/stat`` line.

    The command name is parenthesised and may hold spaces: fields are counted after its
    closing parenthesis, where utime and stime are the 12th and 13th.
    """
    after = stat.rsplit(")", 1)[1].split()
    return (int(after[11]) + int(after[12])) / ticks_per_second


def sample(pid: int) -> ProcSample | None:
    """Read ``pid``; None when it is gone."""
    base = PROC / str(pid)
    try:
        status = (base / "status").read_text()
        stat = (base / "stat").read_text()
        links = []
        for fd in (base / "fd").iterdir():
            try:
                links.append(os.readlink(fd))
            except OSError:  # closed between listing and reading
                continue
    except OSError:
        return None
    fields = {k: v.strip() for k, _, v in (line.partition(":") for line in status.splitlines())}
    return ProcSample(
        rss_kib=_status_kib(fields, "VmRSS"),
        hwm_kib=_status_kib(fields, "VmHWM"),
        cpu_s=parse_stat_cpu(stat, os.sysconf("SC_CLK_TCK")),
        sockets=sum(link.startswith("socket:") for link in links),
        fds=len(links),
        threads=int(fields.get("Threads", "0")),
    )


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds of ``pid`` so far; NaN when unknown or gone."""
    reading = sample(pid) if pid is not None else None
    return reading.cpu_s if reading is not None else float("nan")


@dataclass(frozen=True)
class MachineCpu:
    """Busy and total CPU seconds of the whole machine so far (``/proc/stat``)."""

    busy_s: float
    total_s: float

    @classmethod
    def now(cls) -> MachineCpu:
        values = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        tick = os.sysconf("SC_CLK_TCK")
        return cls((sum(values) - idle) / tick, sum(values) / tick)

    def busy_since(self, before: MachineCpu) -> float:
        """Fraction of all cores busy between ``before`` and this reading."""
        total = self.total_s - before.total_s
        return (self.busy_s - before.busy_s) / total if total > 0 else float("nan")


def other_operator_pids() -> list[int]:
    """Pids of other ``gantry run`` processes on this machine (they share its CPUs)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            words = [
                w.decode(errors="replace") for w in (entry / "cmdline").read_bytes().split(b"\0")
            ]
        except OSError:
            continue
        if "run" in words and any(w == "gantry.cli" or w.endswith("/gantry") for w in words[:3]):
            found.append(int(entry.name))
    return found
