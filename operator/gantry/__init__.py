"""Gantry: one ModelDeployment in, a production GPU inference service out."""

__version__ = "0.1.0"
