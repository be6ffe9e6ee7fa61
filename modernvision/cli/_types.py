"""argparse value types that name what was expected, so a bad flag is one line naming it.

argparse turns the ``ArgumentTypeError`` raised here into
``modernvision CMD: error: argument --flag: <message>`` and exit code 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer >= ``low``."""

    kind = "a positive integer" if low == 1 else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text}")
        return value

    parse.__name__ = kind
    return parse


def int_between(low: int, high: int) -> Callable[[str], int]:
    """An integer in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected an integer from {low:,} to {high:,}, got {text!r}")
        return value

    parse.__name__ = f"integer in [{low}, {high}]"
    return parse


def float_in(low: float, high: float, *, low_open: bool = True,
             high_open: bool = True) -> Callable[[str], float]:
    """A finite number in the interval from ``low`` to ``high`` (open or closed ends)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (math.isfinite(value) or (value == math.inf and not high_open)) or not (
                above and below):
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
        return value

    parse.__name__ = f"number in {interval}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
positive_float = float_in(0.0, math.inf)


def output_folder(flag: str, path: str | Path) -> Path:
    """``path`` as an output folder: refuse an existing file, and a parent that is a file."""
    from modernvision._errors import InvalidArgumentError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidArgumentError(f"{flag} {path} is a file, expected a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InvalidArgumentError(f"{flag} {path}: {parent} is a file, not a folder")
            break
    return path


def output_file(flag: str, path: str | Path) -> Path:
    """``path`` as an output file: refuse a folder, and a parent that is a file."""
    from modernvision._errors import InvalidArgumentError

    path = Path(path)
    if path.is_dir():
        raise InvalidArgumentError(f"{flag} {path} is a folder, expected a file name")
    output_folder(flag, path.parent)
    return path
