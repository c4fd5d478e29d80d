"""Timing on a shared machine, as the benchmark tools do it: the paths compared are called in
interleaved rounds, a round that overlapped a burst of hypervisor steal is run again, and a
ratio between two paths is the median of its per-round ratios, given with its quartiles."""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping

from .machine import steal_seconds as _steal_seconds


def interleave(steps: Mapping[str, Callable[[], object]], rounds: int, max_steal: float = 0.05,
               steal_seconds: Callable[[], float | None] = _steal_seconds,
               cpus: int | None = None, warm: bool = False,
               sync: Callable[[], None] | None = None,
               every: Mapping[str, int] | None = None) -> dict:
    """``rounds`` rounds of one timed call of each step, in turn, so that the ratios compare
    calls made at the same moment (a shared machine's speed drifts by tens of percent within a
    minute).

    Args:
        steps: the paths to time, by name.
        rounds: rounds kept.
        max_steal: a round during which the hypervisor took more than this share of the CPUs'
            time (steal, see :func:`~internimage_mm.analysis.machine.steal_seconds`) is run
            again, up to ``rounds`` extra rounds in all.
        steal_seconds: the steal reading (injectable for tests); None readings keep every round.
        cpus: CPUs the steal reading sums over (default: all).
        warm: call each step once, untimed, right before its timed call, so that it is timed
            with its own working set back in cache, as when run alone.
        sync: called after each call before the clock is read (``torch.cuda.synchronize``).
        every: ``{name: k}`` runs that step in every k-th round only (slow paths); its other
            rounds hold None.

    Returns:
        ``times``: seconds per round for each step (None where skipped), ``redone``: the rounds
        run again, ``steal_share``: the steal share of the CPUs' time over the rounds kept.
    """
    cpus = cpus or os.cpu_count() or 1
    every = every or {}
    sync = sync or (lambda: None)
    times: dict[str, list[float | None]] = {name: [] for name in steps}
    kept, redone, stolen, capacity = 0, 0, 0.0, 0.0
    while kept < rounds:
        steal0, start_round = steal_seconds(), time.perf_counter()
        round_times: dict[str, float | None] = {}
        for name, step in steps.items():
            if kept % every.get(name, 1):
                round_times[name] = None
                continue
            if warm:
                step()
                sync()
            start = time.perf_counter()
            step()
            sync()
            round_times[name] = time.perf_counter() - start
        elapsed = (time.perf_counter() - start_round) * cpus
        steal1 = steal_seconds()
        steal = steal1 - steal0 if steal0 is not None and steal1 is not None else 0.0
        if steal > max_steal * elapsed and redone < rounds:
            redone += 1
            continue
        stolen, capacity, kept = stolen + steal, capacity + elapsed, kept + 1
        for name, t in round_times.items():
            times[name].append(t)
    return dict(times=times, redone=redone, steal_share=stolen / capacity if capacity else 0.0)


def median_time(times: list[float | None]) -> float:
    """Median of the rounds in which the step ran."""
    return statistics.median(t for t in times if t is not None)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile (all three the value itself when one)."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method='inclusive')
    return q1, q2, q3


def round_ratios(numerator: list[float | None], denominator: list[float | None]) -> list[float]:
    """``numerator / denominator`` of each round in which both ran."""
    return [a / b for a, b in zip(numerator, denominator) if a is not None and b is not None]
