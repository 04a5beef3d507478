"""Learning-rate schedules, stepped once per epoch: ``StepLR`` and ``CosineAnnealingLR`` (PyTorch's formulas).

A schedule holds an optimizer and, on ``step()``, sets its ``lr`` for the next epoch from
the epoch count alone (the closed form, so the rate never drifts from rounding)::

    scheduler = nnlab.StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(epochs):
        ...train one epoch...
        scheduler.step()

``nnlab.fit(..., scheduler=scheduler)`` makes that call after every epoch's last step.
"""

from __future__ import annotations

import math

from nnlab._checks import require_positive_int
from nnlab.errors import NnlabTypeError
from nnlab.optim import Optimizer, _positive


class LRScheduler:
    """Base class: remembers the optimizer's starting rate; subclasses give ``lr_at(epoch)``.

    Attributes:
        optimizer: the optimizer whose ``lr`` is set.
        base_lr: its learning rate when the schedule was made.
        last_epoch: epochs stepped so far (0 on creation, as in PyTorch).
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise NnlabTypeError(f"{type(self).__name__}: expected an nnlab optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def lr_at(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (0-based)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set the optimizer's ``lr`` for it."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> list[float]:
        """The rate now in use, as a one-element list (PyTorch's shape: one entry per parameter group)."""
        return [self.optimizer.lr]


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    ``lr = base_lr * gamma ** (epoch // step_size)``.

    Args:
        optimizer: an nnlab optimizer.
        step_size: epochs between decays (a positive integer).
        gamma: the factor, > 0 (PyTorch's default 0.1).
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size = require_positive_int(step_size, "step_size", "StepLR")
        self.gamma = _positive(gamma, "gamma", "StepLR")

    def __repr__(self) -> str:
        return f"StepLR(step_size={self.step_size}, gamma={self.gamma})"

    def lr_at(self, epoch: int) -> float:
        """``base_lr * gamma ** (epoch // step_size)``."""
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the starting rate to ``eta_min`` over ``T_max`` epochs (Loshchilov & Hutter, 2017).

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``: the rate
    reaches ``eta_min`` at epoch ``T_max`` and, stepped further, rises again along the same
    cosine (PyTorch's behaviour; there are no restarts).

    Args:
        optimizer: an nnlab optimizer.
        T_max: epochs from the start to the minimum (a positive integer).
        eta_min: the smallest rate, >= 0.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self.T_max = require_positive_int(T_max, "T_max", "CosineAnnealingLR")
        self.eta_min = _positive(eta_min, "eta_min", "CosineAnnealingLR", allow_zero=True)

    def __repr__(self) -> str:
        return f"CosineAnnealingLR(T_max={self.T_max}, eta_min={self.eta_min})"

    def lr_at(self, epoch: int) -> float:
        """``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``."""
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
