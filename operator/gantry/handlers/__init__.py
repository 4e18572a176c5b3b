"""kopf glue: the only package that imports kopf."""

from gantry.handlers.runner import run_operator

__all__ = ["run_operator"]
