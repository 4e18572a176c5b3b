"""Starting, probing and stopping the control-plane processes by pid.

Processes start in their own session so that a Ctrl-C in the terminal that ran ``up`` (or a
signal to pytest's process group) does not kill the cluster behind the caller's back; ``down``
is the only thing that stops them. They are identified by pid *and* executable path, so a pid
recycled by an unrelated process after a reboot is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Popen handles of the processes this Python process started: polling them reaps exited
# children, which would otherwise linger as zombies that look alive to a /proc check.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Proc:
    """A started component: its name (also its log file stem), pid and executable."""

    name: str
    pid: int
    exe: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "exe": self.exe}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proc:
        return cls(name=str(data["name"]), pid=int(data["pid"]), exe=str(data["exe"]))


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct loopback ports that are free right now.

    All sockets stay open until every port is chosen so the kernel cannot hand out one twice.
    Another process may still grab a port before the component binds it; that shows up as the
    component exiting at start, which ``up`` reports with its log.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def start(name: str, argv: list[str], log_dir: Path) -> Proc:
    """Start ``argv`` detached, with stdout and stderr appended to ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("wb") as log:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[popen.pid] = popen
    return Proc(name=name, pid=popen.pid, exe=argv[0])


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may contain spaces; the state follows the last ')'.
    return stat.rsplit(")", 1)[1].split()[0]


def _proc_exe(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except (OSError, UnicodeDecodeError):
        return None


def alive(proc: Proc) -> bool:
    """True if ``proc`` is still running (not exited, not a zombie, same executable)."""
    child = _CHILDREN.get(proc.pid)
    if child is not None and child.poll() is not None:
        return False
    state = _proc_state(proc.pid)
    if state is None or state in ("Z", "X"):
        return False
    return _proc_exe(proc.pid) == proc.exe


def _signal(proc: Proc, sig: signal.Signals) -> None:
    if alive(proc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


def _wait_gone(proc: Proc, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(proc):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop(proc: Proc, grace: float = 10.0) -> None:
    """SIGTERM ``proc``; SIGKILL it if it has not exited after ``grace`` seconds."""
    _signal(proc, signal.SIGTERM)
    if not _wait_gone(proc, grace):
        _signal(proc, signal.SIGKILL)
        if not _wait_gone(proc, 5.0):
            raise RuntimeError(f"{proc.name} (pid {proc.pid}) survived SIGKILL")
    child = _CHILDREN.pop(proc.pid, None)
    if child is not None:
        child.wait(timeout=5.0)


# klog error/fatal lines, cobra's "Error: ..." for bad flags, Go panics, kwok's JSON logs.
_ERROR_LINE = re.compile(r'^(?:[EF]\d{4} |Error: |panic: |\{.*"level":"ERROR")')


def log_excerpt(log_dir: Path, name: str, lines: int = 15) -> str:
    """The error lines plus the last lines of a component's log, for error messages."""
    try:
        text = (log_dir / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    all_lines = text.splitlines()
    errors = [ln for ln in all_lines if _ERROR_LINE.match(ln)]
    parts = []
    if errors:
        parts += ["error lines:", *errors[:10]]
    parts += [f"last {lines} lines of {log_dir / f'{name}.log'}:", *all_lines[-lines:]]
    return "\n".join(parts)
