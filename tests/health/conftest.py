"""Fixtures shared by the probe tests."""

from tests.health.kserve_fake import fake

__all__ = ["fake"]
