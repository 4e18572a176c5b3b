"""nn.Module factories the canary scenarios serve (``--module=e2e.toy_models:X``).

The runtime process imports these, not the test process, so torch is imported
here at module level on purpose. Each factory has no parameters, so the
``--format=pytorch`` weights file is an empty state dict (``torch.save({}, path)``).

At load the runtime runs the module once on example inputs of zeros (to check it
and infer its outputs); real requests in the e2e scenarios send ones. So a model
that must fail "in production" fails on any non-zero input and loads fine.
"""

from __future__ import annotations

import time

import torch


class Healthy(torch.nn.Module):
    """Answers every request: the sum of each row, shape [batch, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1, keepdim=True)


class FailsOnTraffic(torch.nn.Module):
    """Loads (its example run sees zeros) and raises on every real request."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x != 0).any()):
            raise RuntimeError("toy model: this revision is broken for every real input")
        return x.sum(dim=1, keepdim=True)


class Slow(torch.nn.Module):
    """Answers correctly but takes ``delay_s`` per batch (a latency regression)."""

    def __init__(self, delay_s: float = 0.3) -> None:
        super().__init__()
        self.delay_s = delay_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x != 0).any()):
            time.sleep(self.delay_s)
        return x.sum(dim=1, keepdim=True)


def healthy() -> torch.nn.Module:
    return Healthy()


def fails_on_traffic() -> torch.nn.Module:
    return FailsOnTraffic()


def slow() -> torch.nn.Module:
    return Slow()
