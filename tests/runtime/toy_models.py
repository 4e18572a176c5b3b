"""nn.Module factories the runtime imports by path (``tests.runtime.toy_models:X``).

The runtime process imports these, not the test process, so torch is imported
here at module level on purpose.
"""

from __future__ import annotations

import time

import torch


class TinyMLP(torch.nn.Module):
    """A two-layer MLP built from keyword arguments (the ``module_kwargs``)."""

    def __init__(self, in_features: int = 4, hidden: int = 8, out_features: int = 3) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(in_features, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, out_features),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.body(x)
        # Two named outputs: exercises mapping outputs and output inference.
        return {"logits": y, "top": y.argmax(dim=1, keepdim=True)}


class SlowDouble(torch.nn.Module):
    """Doubles its input after a fixed delay: long enough to be in flight at SIGTERM."""

    def __init__(self, delay_s: float = 1.0) -> None:
        super().__init__()
        self.delay_s = delay_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay_s)
        return x * 2


def broken_checkpoint(**_: object) -> torch.nn.Module:
    """A factory that fails the way a model with an incompatible checkpoint does."""
    raise RuntimeError("checkpoint schema v3 is not supported by this model code")
