"""Helpers shared by test suites (unit, component and e2e)."""
