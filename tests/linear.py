"""Proof that work per input byte stays flat as an input grows from 1 KB to 1 MB.

A quadratic path (a backtracking regex, slicing in a loop) costs 16x more per byte for
16x more input; a linear one costs the same or less (fixed costs spread thinner). Sizes
grow by 4 and each size is compared with one at least 16x smaller, after a median of repeats,
with a generous factor, so a loaded 2-core machine does not make the proof flaky, and a
quadratic path fails on one of its first, still fast, steps instead of running for hours.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

KB = 1024
MB = 1024 * KB
SIZES = (KB, 4 * KB, 16 * KB, 64 * KB, 256 * KB, MB)
FACTOR = 4.0  # cost per byte may grow this much over a 16x larger input
# Below this per byte the work is copying memory, whose cost per byte steps up once a
# buffer outgrows the CPU caches and the allocator's small-block pool: linear all the
# same. Any quadratic path is far above it at 64 KB already (64K steps per byte).
FLOOR = 5e-9  # seconds per byte
_REPEATS = 5
_MIN_SAMPLE = 0.01  # seconds; small inputs are run in loops at least this long


def _sample(run: Callable[[], object], clock: Callable[[], float]) -> float:
    start = clock()
    run()
    first = clock() - start
    loops = max(1, min(1000, int(_MIN_SAMPLE / max(first, 1e-7))))
    timings = []
    for _ in range(_REPEATS):
        start = clock()
        for _ in range(loops):
            run()
        timings.append((clock() - start) / loops)
    return statistics.median(timings)


def _check_growth(per_byte: dict[int, float], size: int, what: str) -> None:
    smaller = max((k for k in per_byte if k * 16 <= size), default=None)
    if smaller is not None:
        growth = per_byte[size] / per_byte[smaller]
        assert growth <= FACTOR or per_byte[size] <= FLOOR, (
            f"{what or 'work'} per byte grew {growth:.1f}x from {smaller} to {size} bytes "
            f"({per_byte[smaller] * 1e9:.1f} -> {per_byte[size] * 1e9:.1f} ns/byte)"
        )


def assert_linear(
    run: Callable[[T], object],
    make: Callable[[int], T],
    sizes: tuple[int, ...] = SIZES,
    *,
    clock: Callable[[], float] = time.thread_time,
    what: str = "",
) -> dict[int, float]:
    """Assert ``run(make(n))`` costs no more per byte at n than at n/16 or less, per size.

    ``clock`` is CPU time of this thread by default: only the work under test counts,
    not what other processes on the machine do meanwhile. Returns seconds per byte.
    """
    per_byte: dict[int, float] = {}
    for size in sizes:
        data = make(size)
        per_byte[size] = _sample(functools.partial(run, data), clock) / size
        _check_growth(per_byte, size, what)
    return per_byte


async def assert_linear_async(
    run: Callable[[T], Awaitable[object]],
    make: Callable[[int], T],
    sizes: tuple[int, ...] = SIZES,
    *,
    clock: Callable[[], float] = time.thread_time,
    what: str = "",
) -> dict[int, float]:
    """:func:`assert_linear` for a coroutine run on this thread's event loop (an in-process
    hub and its client share the thread, so thread CPU time counts both and nothing else)."""
    per_byte: dict[int, float] = {}
    for size in sizes:
        data = make(size)
        timings = []
        await run(data)  # warm-up: first-use costs (imports, caches) are not per byte
        for _ in range(_REPEATS):
            start = clock()
            await run(data)
            timings.append(clock() - start)
        per_byte[size] = statistics.median(timings) / size
        _check_growth(per_byte, size, what)
    return per_byte
