"""The learning-rate schedule, ``train.lr_decay``, as a formula of the epoch.

The NumPy MLP sets its rate from it before every epoch; the DCN uses PyTorch's schedulers,
which follow the same formulas (tests check it epoch by epoch).
"""

from __future__ import annotations

import math
from typing import Any


def lr_at(epsilon: float, decay: dict[str, Any], epoch: int, epochs: int) -> float:
    """The learning rate after ``epoch`` completed epochs (``train.lr_decay``):

    - none: ``epsilon``;
    - step: ``epsilon * gamma ** (epoch // step_size)``;
    - exponential: ``epsilon * gamma ** epoch``;
    - cosine: ``epsilon * (1 + cos(pi * epoch / epochs)) / 2`` (0 after the last epoch, as
      ``torch.optim.lr_scheduler.CosineAnnealingLR`` with ``T_max=epochs``).
    """
    kind = decay["kind"]
    if kind == "step":
        return epsilon * decay["gamma"] ** (epoch // decay["step_size"])
    if kind == "exponential":
        return epsilon * decay["gamma"] ** epoch
    if kind == "cosine":
        return epsilon * (1 + math.cos(math.pi * epoch / epochs)) / 2
    return epsilon
