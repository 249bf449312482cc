#!/usr/bin/env python3
"""Time the full grade of the reference solution and check that it is deterministic.

    python tools/benchmark_grader.py                       # one full grade of solution/ (public + hidden)
    python tools/benchmark_grader.py --repeat 10 --busy    # ten in a row, with both cores kept busy
    python tools/benchmark_grader.py --python /work/venv-cpu/bin/python   # with the CPU build of torch

For each run it reports the wall time, the CPU seconds of the grader and
everything it started (``getrusage(RUSAGE_CHILDREN)``, taken before the busy
loads are reaped, so their CPU is not counted), the peak resident size of the
grader's process (its own ``ru_maxrss``) and of each worker process (``VmHWM``
read just before the grader stops it), the score, and the heavy modules
(torchvision, matplotlib, ...) that the grader or a worker imported.  The
targets (Gradescope, 2 cores, CPU build of torch): at most 60 s wall and 150
CPU-s per grade, every process below 384 MB, no heavy module, and the same
score and per-test scores in every run.  Exit status 1 when a target is missed.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_WALL_S = 60.0
TARGET_CPU_S = 150.0
TARGET_RSS_MB = 384.0


def _busy_loads(count, python):
    """``count`` processes spinning a core each (started in their own session, killed by the caller)."""
    return [subprocess.Popen([python, "-c", "while True: pass"], start_new_session=True) for _ in range(count)]


def grade_once(python, submission, select, workdir, index, busy):
    results, stats = Path(workdir) / f"results-{index}.json", Path(workdir) / f"stats-{index}.json"
    command = [python, str(ROOT / "grader.py"), *select, "--submission", str(submission), "--results", str(results),
               "--stats", str(stats)]
    loads = _busy_loads(busy, python) if busy else []
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the grader and all it waited for; not the loads
    finally:
        for load in loads:
            load.kill()
        for load in loads:
            load.wait()
    data = json.loads(results.read_text()) if results.exists() else {}
    info = json.loads(stats.read_text()) if stats.exists() else {}
    workers = info.get("workers", [])
    return {
        "run": index, "exit": done.returncode, "wall_s": round(wall, 2),
        "cpu_s": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 2),
        "grader_peak_rss_mb": round(info.get("grader_peak_rss_kb", 0) / 1024, 1),
        "worker_peak_rss_mb": [round((w.get("peak_rss_kb") or 0) / 1024, 1) for w in workers],
        "workers": len(workers),
        "heavy_modules": sorted(set(info.get("grader_heavy_modules", [])) | set(info.get("worker_heavy_modules", []))),
        "score": data.get("score"),
        "tests": {t["number"]: t["score"] for t in data.get("tests", [])},
        "failed": {t["number"]: t.get("output", "")[:200] for t in data.get("tests", []) if t["score"] < t["max_score"]},
        "torch": info.get("torch"),
        "stderr": done.stderr[-2000:] if done.returncode else "",
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter (and so the torch build) to use")
    parser.add_argument("--submission", default=str(ROOT / "solution"))
    parser.add_argument("--repeat", type=int, default=1, help="grade this many times in a row")
    parser.add_argument("--busy", action="store_true", help="keep both cores busy with two spinning processes")
    parser.add_argument("--busy-count", type=int, default=2)
    parser.add_argument("--json", help="also write every run's numbers here")
    parser.add_argument("select", nargs="*", help="questions or tests (default: everything)")
    args = parser.parse_args(argv)

    runs = []
    with tempfile.TemporaryDirectory(prefix="ps1-benchmark-") as workdir:
        for index in range(1, args.repeat + 1):
            run = grade_once(args.python, args.submission, args.select, workdir, index,
                             args.busy_count if args.busy else 0)
            runs.append(run)
            print(f"run {index:>2}: exit {run['exit']}  wall {run['wall_s']:6.1f} s  cpu {run['cpu_s']:6.1f} s  "
                  f"grader {run['grader_peak_rss_mb']:6.1f} MB  workers {run['worker_peak_rss_mb']} MB  "
                  f"score {run['score']}  torch {run['torch']}", flush=True)
            if run["stderr"]:
                print(run["stderr"], file=sys.stderr)

    problems = []
    first = runs[0]
    if any(run["tests"] != first["tests"] or run["score"] != first["score"] for run in runs):
        problems.append("scores differ between runs: " + "; ".join(f"run {r['run']}: {r['score']}" for r in runs))
    for run in runs:
        label = f"run {run['run']}"
        if run["exit"] != 0:
            problems.append(f"{label}: grader exit status {run['exit']}")
        if run["wall_s"] > TARGET_WALL_S:
            problems.append(f"{label}: {run['wall_s']} s wall > {TARGET_WALL_S:g} s")
        if run["cpu_s"] > TARGET_CPU_S:
            problems.append(f"{label}: {run['cpu_s']} CPU-s > {TARGET_CPU_S:g}")
        for name, mb in [("grader", run["grader_peak_rss_mb"])] + [("worker", m) for m in run["worker_peak_rss_mb"]]:
            if mb > TARGET_RSS_MB:
                problems.append(f"{label}: {name} peak RSS {mb} MB > {TARGET_RSS_MB:g} MB")
        if run["heavy_modules"]:
            problems.append(f"{label}: imported {', '.join(run['heavy_modules'])}")
    if first["failed"]:
        print(f"tests that did not get full marks on {args.submission}:")
        for test_id, output in first["failed"].items():
            print(f"  {test_id}: {output.splitlines()[0] if output else ''}")
    walls, cpus = [r["wall_s"] for r in runs], [r["cpu_s"] for r in runs]
    print(f"\n{len(runs)} run(s){' with ' + str(args.busy_count) + ' busy loads' if args.busy else ''} on "
          f"{os.cpu_count()} cores, {len(first['tests'])} tests: wall {min(walls):.1f}-{max(walls):.1f} s, "
          f"cpu {min(cpus):.1f}-{max(cpus):.1f} s, grader peak {max(r['grader_peak_rss_mb'] for r in runs):.0f} MB, "
          f"worker peak {max((m for r in runs for m in r['worker_peak_rss_mb']), default=0):.0f} MB, "
          f"score {first['score']} (same in every run: {not any('differ' in p for p in problems)})")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2) + "\n")
    for problem in problems:
        print(f"TARGET MISSED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
