"""The clock of every timing probe (worker side): seconds per call of student code and of its plain-torch twin.

The tests judge ratios of two times measured here in the same run, never seconds.  The clock is the CPU time
of the worker's thread (the worker computes in one thread): time other processes take on the same cores
(Gradescope's throttled 0.5 vCPU, graders side by side) then counts on neither side of a ratio, as it would
in wall time.  Where that clock ticks coarsely (on Windows ``thread_time`` advances in steps of 15.6 ms, though
``time.get_clock_info`` reports 1e-7 s) the clock is ``perf_counter``.  Either way one measurement repeats the
call until it spans ``MIN_INTERVAL_S``, far above the clock's step, so that no time reads 0.  On CUDA the
GPU's own events time the calls (it computes asynchronously: a CPU clock would see the launches only).
"""
import functools
import math
import time

import torch

MIN_INTERVAL_S = 1e-3  # one measurement spans at least this
FINE_STEP_S = 1e-5  # a clock whose step is at most this (1% of MIN_INTERVAL_S) is fine enough


def _step(clock, tries=3, give_up_s=0.1):
    """The smallest step of ``clock`` seen in ``tries`` changes (math.inf if it does not change in ``give_up_s``)."""
    steps = []
    for _ in range(tries):
        start, deadline = clock(), time.perf_counter() + give_up_s
        while (now := clock()) == start:
            if time.perf_counter() > deadline:
                return math.inf
        steps.append(now - start)
    return min(steps)


@functools.cache
def clock():
    """``time.thread_time`` where its step is fine, else ``time.perf_counter`` (decided once per worker)."""
    return time.thread_time if _step(time.thread_time) <= FINE_STEP_S else time.perf_counter


def best_times(calls, repeats, inner=1, device=None):
    """``{name: seconds per call of calls[name]()}``: the best of ``repeats`` rounds, each timing every call in
    turn (interleaved, so that a slow moment of the machine falls on all of them alike).  One timing runs the
    call ``inner`` times, again and again until ``MIN_INTERVAL_S`` has passed (on CUDA: ``inner`` times)."""
    best = dict.fromkeys(calls, math.inf)
    for _ in range(repeats):
        for name, call in calls.items():
            best[name] = min(best[name], _seconds_per_call(call, inner, device))
    return best


def _seconds_per_call(call, inner, device):
    if device is not None and torch.device(device).type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            call()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000 / inner
    read = clock()
    count, start = 0, read()
    while True:
        for _ in range(inner):
            call()
        count += inner
        elapsed = read() - start
        if elapsed >= MIN_INTERVAL_S:
            return elapsed / count
