"""The clock of the speed parts (``src/grading/worker/timing.py``): fine where it can be, never 0.

    python -m pytest staff_tests/test_timing.py -q      # about 1 s
"""
import math
import time

import pytest

from src.grading.worker import timing


def _coarse(step=0.0156):
    """A clock that advances in steps of ``step`` seconds, as ``thread_time`` does on Windows."""
    return lambda: math.floor(time.perf_counter() / step) * step


@pytest.fixture
def fresh_clock_choice():
    timing.clock.cache_clear()
    yield
    timing.clock.cache_clear()


def test_a_thread_clock_in_coarse_steps_gives_way_to_perf_counter(monkeypatch, fresh_clock_choice):
    monkeypatch.setattr(time, "thread_time", _coarse())
    assert timing.clock() is time.perf_counter


def test_a_thread_clock_in_microsecond_steps_is_kept(monkeypatch, fresh_clock_choice):
    fine = _coarse(1e-6)
    monkeypatch.setattr(time, "thread_time", fine)
    assert timing.clock() is fine


def test_no_time_reads_zero_even_on_a_coarse_clock(monkeypatch):
    """Calls far shorter than the clock's step are repeated until it has moved: the ratio of two is defined."""
    monkeypatch.setattr(timing, "clock", _coarse)
    times = timing.best_times({"nothing": lambda: None, "a little": lambda: sum(range(100))}, repeats=2)
    assert all(0 < seconds < 1e-3 for seconds in times.values()), times


def test_twice_the_work_reads_about_twice_the_time():
    times = timing.best_times({"once": lambda: sum(range(20_000)), "twice": lambda: sum(range(40_000))}, repeats=5)
    assert 1.4 < times["twice"] / times["once"] < 2.8, times
