"""Starting, probing and stopping the control-plane processes.

Processes start in their own session so that a Ctrl-C in the terminal that ran ``up`` (or a
signal to pytest's process group) does not kill the cluster behind the caller's back; ``down``
is the only thing that stops them.

Two kinds of process are probed, each by the only source that is right for it:

* a child of this Python process (started here by :func:`start`) by its ``Popen`` handle:
  ``poll()`` asks the kernel, reaps a zombie, and cannot be fooled by a pid being reused,
  since an unreaped child keeps its pid;
* a process recorded in ``state.json`` by an ``up`` in another Python process by its identity:
  the pid plus its start time and boot id (unique on this machine), and ``/proc/PID/exe``
  resolved and compared to the recorded executable. A pid recycled by an unrelated process,
  even one running the same binary, is never taken for ours, and never signalled.

``/proc/PID/cmdline`` is never read for this: it reads empty while a large binary is still
inside ``execve``, which is exactly when ``up`` first checks its fresh children.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.cluster.wait import WaitTimeoutError, poll

# How long a SIGKILLed process may take to disappear before it counts as unkillable
# (uninterruptible sleep on a hung filesystem is the only way to get there).
_KILL_WAIT = 5.0
_GONE_POLL_INTERVAL = 0.05


class StopError(RuntimeError):
    """A process survived SIGKILL."""


@dataclass(frozen=True)
class Proc:
    """A started component: its name (also its log file stem), pid, executable and identity.

    ``exe`` is the executable's real path at start; ``start_id`` is ``"<boot id>:<start time in
    clock ticks>"``, None for records written before it existed (then only ``exe`` is checked).
    """

    name: str
    pid: int
    exe: str
    start_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "exe": self.exe, "start_id": self.start_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proc:
        start_id = data.get("start_id")
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            exe=str(data["exe"]),
            start_id=None if start_id is None else str(start_id),
        )


@dataclass(frozen=True)
class _Child:
    popen: subprocess.Popen[bytes]
    start_id: str | None


# Children of this Python process, by pid. Popen handles are kept so that polling them reaps
# exited children, which would otherwise linger as zombies.
_CHILDREN: dict[int, _Child] = {}


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


def start(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    append: bool = False,
) -> Proc:
    """Start ``argv`` detached, with stdout and stderr written to ``log_dir/<name>.log``.

    Args:
        env: Added to this process's environment (None: the child inherits it as is).
        cwd: The child's working directory (None: this process's).
        append: Add to the log instead of starting it afresh.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    exe = _real_exe(argv[0])
    with (log_dir / f"{name}.log").open("ab" if append else "wb") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else {**os.environ, **env},
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    # Read before anything polls the child: unreaped, its /proc entry cannot have gone.
    proc = Proc(name=name, pid=popen.pid, exe=exe, start_id=_start_id(popen.pid))
    _CHILDREN[popen.pid] = _Child(popen, proc.start_id)
    return proc


def record(name: str, pid: int, exe: str) -> Proc:
    """A :class:`Proc` for a process that is running now (its identity read from /proc)."""
    return Proc(name=name, pid=pid, exe=_real_exe(exe), start_id=_start_id(pid))


def alive(proc: Proc) -> bool:
    """True if ``proc`` is still running: not exited, not a zombie, not a recycled pid."""
    child = _own_child(proc)
    if child is not None:
        return child.poll() is None
    return _runs_as_recorded(proc)


def stop(proc: Proc, grace: float = 10.0) -> None:
    """SIGTERM ``proc``; SIGKILL it if it has not exited after ``grace`` seconds.

    Raises :class:`StopError` when it survives SIGKILL. A process that is no longer ours (it
    exited, and its pid may belong to someone else now) is left alone.
    """
    child = _own_child(proc)
    if child is not None:
        _stop_child(proc, child, grace)
        del _CHILDREN[proc.pid]
    else:
        _stop_recorded(proc, grace)


def flag_values(flag: str) -> set[str]:
    """Values of ``flag`` (``--flag=V`` or ``--flag V``) on every readable process command line."""
    values: set[str] = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # exited while we looked, or not ours to read
        values.update(_values_of(flag, args))
    return values


def _values_of(flag: str, args: list[str]) -> Iterator[str]:
    for i, arg in enumerate(args):
        if arg.startswith(f"{flag}="):
            yield arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(args):
            yield args[i + 1]


# --- identity --------------------------------------------------------------------------------


def _real_exe(argv0: str) -> str:
    # A bare name is found on PATH, as Popen does.
    found = shutil.which(argv0) if os.sep not in argv0 else argv0
    return os.path.realpath(found or argv0)


@functools.cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat from the state on (field 3 of proc(5) is index 0)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may contain spaces; the state follows the last ')'.
    return stat.rsplit(")", 1)[1].split()


def _start_id(pid: int) -> str | None:
    fields = _stat_fields(pid)
    # starttime is field 22 of proc(5).
    return None if fields is None else f"{_boot_id()}:{fields[19]}"


def _exe_of(pid: int) -> str | None:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None  # gone, a zombie (no exe), or another user's process
    # A binary replaced or deleted while running still is the binary this process runs.
    return exe.removesuffix(" (deleted)")


def _runs_as_recorded(proc: Proc) -> bool:
    """The /proc view of a process that is not our child: alive, same start, same binary."""
    fields = _stat_fields(proc.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    if proc.start_id is not None and f"{_boot_id()}:{fields[19]}" != proc.start_id:
        return False
    return _exe_of(proc.pid) == os.path.realpath(proc.exe)


def _own_child(proc: Proc) -> subprocess.Popen[bytes] | None:
    child = _CHILDREN.get(proc.pid)
    # The start id tells our child apart from an older process that had the same pid.
    if child is None or child.start_id != proc.start_id:
        return None
    return child.popen


# --- stopping --------------------------------------------------------------------------------


def _stop_child(proc: Proc, popen: subprocess.Popen[bytes], grace: float) -> None:
    # Popen signals only an unreaped child, so the pid cannot belong to anyone else.
    popen.terminate()
    try:
        popen.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        popen.kill()
        try:
            popen.wait(timeout=_KILL_WAIT)
        except subprocess.TimeoutExpired as err:
            raise StopError(f"{proc.name} (pid {proc.pid}) survived SIGKILL") from err


def _stop_recorded(proc: Proc, grace: float) -> None:
    if not _runs_as_recorded(proc):
        return
    _signal_recorded(proc, signal.SIGTERM)
    if _gone_within(proc, grace):
        return
    _signal_recorded(proc, signal.SIGKILL)
    if not _gone_within(proc, _KILL_WAIT):
        raise StopError(f"{proc.name} (pid {proc.pid}) survived SIGKILL")


def _signal_recorded(proc: Proc, sig: signal.Signals) -> None:
    """Signal ``proc`` only if it still is the recorded process.

    A pidfd pins the process before its identity is checked, so the signal cannot reach a
    process that took over the pid in between.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return
    except OSError as err:
        if err.errno not in (errno.ENOSYS, errno.EPERM):  # kernel or seccomp without pidfd
            raise
        if _runs_as_recorded(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
        return
    try:
        if _runs_as_recorded(proc):
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, sig)
    finally:
        os.close(pidfd)


def _gone_within(proc: Proc, timeout: float) -> bool:
    try:
        poll(
            f"{proc.name} (pid {proc.pid}) to exit",
            lambda: not _runs_as_recorded(proc),
            timeout=timeout,
            interval=_GONE_POLL_INTERVAL,
        )
    except WaitTimeoutError:
        return False
    return True


# --- logs ------------------------------------------------------------------------------------

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
