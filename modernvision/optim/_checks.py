"""Hyper-parameter checks shared by the hand-written optimizers: each names the bad argument."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def check_non_negative(group: Mapping[str, Any], *names: str) -> None:
    """Raise ``ValueError`` if any of ``names`` in ``group`` is negative or not a finite number."""
    for name in names:
        value = float(group[name])
        if not math.isfinite(value) or value < 0.0:
            raise ValueError(f"{name} must be a finite number >= 0, got {group[name]!r}")


def check_beta(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (a moving-average decay rate)."""
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def check_betas(betas: Any) -> None:
    """Raise ``ValueError`` unless ``betas`` is a pair of decay rates, each in ``[0, 1)``."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    check_beta("betas[0] (beta1)", betas[0])
    check_beta("betas[1] (beta2)", betas[1])
