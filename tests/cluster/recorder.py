"""Starts processes for a test in another Python process, like ``make cluster-up`` does.

``python -m tests.cluster.recorder NAME LOG_DIR -- ARGV...`` reads commands from stdin:
``start`` starts ARGV with ``procs.start`` and prints the Proc as JSON; ``stop`` prints whether
that process is still running (asked of the kernel, without reaping it), then stops it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from e2e.cluster import procs
from tests.cluster.liveness import child_running


def main(argv: list[str]) -> int:
    name, log_dir, separator, *command = argv
    if separator != "--" or not command:
        print(__doc__, file=sys.stderr)
        return 2
    proc: procs.Proc | None = None
    for line in sys.stdin:
        if line.strip() == "start":
            proc = procs.start(name, command, Path(log_dir))
            print(json.dumps(proc.to_json()), flush=True)
        elif line.strip() == "stop" and proc is not None:
            print("running" if child_running(proc.pid) else "exited", flush=True)
            procs.stop(proc)
            proc = None
    if proc is not None:
        procs.stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
