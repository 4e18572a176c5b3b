"""``python -m gantry.runtime``: the same as ``gantry serve``."""

from gantry.runtime.cli import main

raise SystemExit(main())
