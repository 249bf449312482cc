"""Where a ``python -m src`` command spends its time, and its peak memory.

    python tools/run_phases.py train made [OPTIONS OF python -m src train ...]

Runs the command in this process with timers around the library's phases and prints, after
the command's own output, one line per phase: wall seconds, CPU seconds (all threads) and
share of the wall time, then the peak resident set size (``ru_maxrss``, the number
``/usr/bin/time -v`` reports as "Maximum resident set size").  A phase's time excludes the
phases inside it (validation and checkpoints are not counted as training).  "start-up" is
everything before the first phase: importing torch, building the model, loading the data
(not the interpreter's own start, a few tens of milliseconds).
"""
import functools
import resource
import sys
import time
from pathlib import Path

WALL0 = time.perf_counter()  # before torch is imported: start-up includes the import

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src import cli, models, plots  # noqa: E402  (after the path insert above)
from src import train as train_module  # noqa: E402  (after the path insert above)

#: phase name -> (module, function names) timed as that phase
PHASES = {
    "training steps": (train_module, ["train"]),
    "validation": (train_module, ["mean_nll"]),
    "checkpoints": (train_module, ["save_atomic"]),
    "test NLL": (train_module, ["evaluate"]),
    "baseline": (train_module, ["independent_pixel_baseline"]),
    "sampling": (models, ["sample_images"]),
    "figures": (plots, ["save_sample_grid", "plot_learning_curves", "plot_receptive_field"]),
}

totals = {name: [0.0, 0.0] for name in PHASES}  # exclusive wall, CPU seconds
stack = []  # [wall, cpu] spent in phases nested inside the running one
first_phase = []


def timed(name, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if not first_phase:
            first_phase.append((time.perf_counter(), time.process_time()))
        stack.append([0.0, 0.0])
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            inner = stack.pop()
            totals[name][0] += wall - inner[0]
            totals[name][1] += cpu - inner[1]
            if stack:
                stack[-1][0] += wall
                stack[-1][1] += cpu
    return wrapper


def main(argv):
    for name, (module, functions) in PHASES.items():
        for function in functions:
            setattr(module, function, timed(name, getattr(module, function)))
    wall0, cpu0 = WALL0, 0.0  # process_time counts from the start of the process
    status = cli.main(argv)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    start = first_phase[0] if first_phase else (time.perf_counter(), time.process_time())
    rows = {"start-up": [start[0] - wall0, start[1] - cpu0], **totals}
    rows["other (writing json, ...)"] = [wall - sum(r[0] for r in rows.values()),
                                         cpu - sum(r[1] for r in rows.values())]
    print(f"\n{'phase':28s} {'wall s':>8s} {'CPU s':>8s} {'share':>6s}")
    for name, (w, c) in rows.items():
        if w > 0.0005:
            print(f"{name:28s} {w:8.1f} {c:8.1f} {w / wall:6.0%}")
    print(f"{'total':28s} {wall:8.1f} {cpu:8.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS {peak / (1024 * 1024 if sys.platform == 'darwin' else 1024):.0f} MB")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
