"""A small thread pool for the numba kernels (they release the GIL with ``nogil=True``).

Threads over independent pieces (pyramid levels, row bands, feature blocks) instead of numba's
``parallel=True``: the OpenMP layer's per-call barriers and spin-waits cost more than they
save when a detection makes ~30 short kernel calls, especially on a busy machine. The pool size
follows ``NUMBA_NUM_THREADS`` (default: the number of cores).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numba

T = TypeVar("T")
R = TypeVar("R")

_EXECUTOR: ThreadPoolExecutor | None = None
_OVERRIDE: int | None = None


def num_threads() -> int:
    """Worker threads used by the Viola-Jones kernels."""
    if _OVERRIDE is not None:
        return _OVERRIDE
    return max(1, min(os.cpu_count() or 1, int(numba.config.NUMBA_NUM_THREADS)))


def set_num_threads(n: int | None) -> None:
    """Use ``n`` worker threads from now on (``None``: back to the default)."""
    global _OVERRIDE, _EXECUTOR
    if n is not None and n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    _OVERRIDE = n
    if _EXECUTOR is not None:
        _EXECUTOR.shutdown(wait=True)
        _EXECUTOR = None


def parallel_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(x) for x in items]`` on the pool (in order); inline when one thread is enough."""
    items = list(items)
    if num_threads() == 1 or len(items) <= 1:
        return [fn(x) for x in items]
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=num_threads(), thread_name_prefix="viola-jones")
    return list(_EXECUTOR.map(fn, items))


def bands(n: int, parts: int | None = None, min_size: int = 1) -> list[tuple[int, int]]:
    """Split ``range(n)`` into about ``parts`` contiguous ``(start, stop)`` bands."""
    parts = parts or 2 * num_threads()
    size = max(min_size, -(-n // max(parts, 1)))
    return [(a, min(a + size, n)) for a in range(0, n, size)]
