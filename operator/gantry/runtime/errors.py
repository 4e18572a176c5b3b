"""Errors raised by the serving runtime.

The tree, so callers can catch at the right level::

    GantryRuntimeError (base, never raised itself)
    ├── ConfigError        the configuration is invalid; the message names the field
    └── ModelLoadError     the model could not be made servable
        └── ModelFetchError    the model file could not be found or downloaded

A :class:`ModelLoadError` does not stop the server: the runtime keeps Triton up
and reports the message as the model's load failure (see ``placeholder``), the
way Triton itself reports a broken ``model.pt``. A :class:`ConfigError` stops the
process before anything starts.
"""

from __future__ import annotations

__all__ = ["ConfigError", "GantryRuntimeError", "ModelFetchError", "ModelLoadError"]


class GantryRuntimeError(Exception):
    """Base class of every error the runtime raises on purpose."""


class ConfigError(GantryRuntimeError):
    """The runtime configuration is invalid."""


class ModelLoadError(GantryRuntimeError):
    """The model could not be loaded, validated or prepared for serving."""


class ModelFetchError(ModelLoadError):
    """The model file could not be located or downloaded."""
