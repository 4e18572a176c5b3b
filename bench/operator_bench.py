"""Moved to the package :mod:`bench.operator`: run ``python -m bench.operator``.

This shim keeps ``python bench/operator_bench.py`` (the Makefile's ``bench`` target) working
until that target points at the package.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    # `python bench/operator_bench.py` puts only bench/ on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.operator.__main__ import main

    sys.exit(main())
