"""The scripted KServe v2 server (tests/health/kserve_fake.py) as the fixture ``fake``."""

from tests.health.kserve_fake import fake

__all__ = ["fake"]
