"""Isolation of the grader: a function that hangs or raises costs only the questions whose tests call it.

For each ``### START CODE HERE ###`` region of solution/*.py (named by its function, e.g.
``pixelcnn.PixelCNN.forward``) two submissions are graded: solution/ with that function made to hang
(``while True: pass`` as the region's first statement) and made to raise (``raise RuntimeError("planted")``).
Only the questions whose tests call the function (directly or through the student's own code) may lose
points; every question whose tests call it must lose points when it raises (else the table is wrong), but
for the calls in ``TOLERATED``; and the message of a hang names the function.

Which tests call which function is not written by hand: one grade of the reference with ``grader.py
--trace-calls`` records the functions of the submission that each test's probes entered.  The table
(function -> questions) is printed (``python -m pytest staff_tests/test_isolation.py -q -s``).

What it costs (2 cores, two grades at a time): the learning questions (4b, 4c) train a model in a fresh
worker in each test (5-10 s each, two thirds of a full grade), so only the raise variants grade them, and
only their public tests where these call the planted function (they then fail at once); every other test
is graded in every variant.  What a hang elsewhere could do to the learning tests (use up the session's time, leave a wrong
function marked as hung) is checked by ``test_one_hanging_function_with_production_limits``: a function
that no learning test calls hangs, and everything is graded with the default limits.  The hang variants
run with ``--timeout 4`` (the default is 60 s per call; calls that set their own limit keep it), so that
each hang costs seconds, not a minute: the slowest call with the default limit takes under 1 s.
"""
import ast
import concurrent.futures
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from make_stubs import MODULES, marked_regions  # noqa: E402

LEARNING = ("4b", "4c")
PLANTED = {"hang": "while True: pass", "raise": 'raise RuntimeError("planted")'}
HANG_TIMEOUT_S = 4
FULL_GRADE_LIMIT_S = 300  # a full grade with one hanging function, production limits (issue 9)
# Graded in full with the default limits: no learning test calls it; its first call (3c's large draw) waits 60 s.
PRODUCTION = ["pixelcnn.PixelCNN.sample"]
# (function, question): the question's tests call the function but by design do not depend on it.
TOLERATED = {("made.MADE.update_masks", "2c"): "2c's probe loads a mask set itself when update_masks raises "
                                               "(probes/q2.py, _model_for_sampling)"}


def regions():
    """``[(file, line index of the region's first statement, indentation, "pixelcnn.PixelCNN.forward")]``."""
    found = []
    for name in MODULES:
        source = (ROOT / "solution" / name).read_text()
        lines = source.splitlines(keepends=True)
        functions = []

        def visit(node, prefix):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                    if isinstance(child, ast.FunctionDef):
                        functions.append((child.lineno, child.end_lineno, prefix + child.name))
                    visit(child, f"{prefix}{child.name}.")

        visit(ast.parse(source), "")
        for start, _end in marked_regions(lines):
            enclosing = [q for first, last, q in functions if first <= start + 1 <= last]
            indent = lines[start][:len(lines[start]) - len(lines[start].lstrip())]
            found.append((name, start + 1, indent, f"{Path(name).stem}.{enclosing[-1]}"))
    return found


def planted(region, statement, folder):
    """solution/ copied into ``folder`` with ``statement`` as the first line of ``region``."""
    name, index, indent, _function = region
    shutil.copytree(ROOT / "solution", folder, ignore=shutil.ignore_patterns("__pycache__"))
    lines = (folder / name).read_text().splitlines(keepends=True)
    lines.insert(index, f"{indent}{statement}\n")
    (folder / name).write_text("".join(lines))
    return folder


def grade(submission, results, *args):
    """``grader.py`` on ``submission``: ({test id: test entry of results.json}, seconds, stdout)."""
    command = [sys.executable, str(ROOT / "grader.py"), *map(str, args), "--submission", str(submission),
               "--results", str(results)]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    assert done.returncode == 0 and results.exists(), f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    tests = {t["number"]: t for t in json.loads(results.read_text())["tests"]}
    return tests, seconds, done.stdout


def lost(tests):
    return {test_id for test_id, t in tests.items() if t["score"] < t["max_score"]}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("isolation")
    folder.chmod(0o755)  # the sandbox user must read the submissions
    return folder


@pytest.fixture(scope="module")
def calls(workdir):
    """``{function: set of test ids whose probes entered it}``, from one traced grade of the reference."""
    stats = workdir / "trace.json"
    tests, _seconds, _out = grade(ROOT / "solution", workdir / "trace-results.json", "--stats", stats,
                                  "--trace-calls")
    assert not lost(tests), f"the reference lost points while traced: {sorted(lost(tests))}"
    table = {}
    for test_id, functions in json.loads(stats.read_text())["entered"].items():
        for function in functions:
            table.setdefault(function, set()).add(test_id)
    return table


def questions(test_ids):
    return sorted({test_id.split("-")[0] for test_id in test_ids})


@pytest.fixture(scope="module")
def graded(calls, workdir):
    """Every region planted both ways, and the production runs: ``{(function, kind): (tests, seconds, stdout)}``.

    ``kind``: "hang" or "raise" (learning tests only where they call the function, ``--timeout 5`` for a
    hang), or "production" (a hang graded in full with the default limits)."""
    all_tests = [t for t, entry in json.loads((ROOT / "tests" / "points.json").read_text())["tests"].items()
                 if entry["type"] == "coding"]
    by_name = {region[3]: region for region in regions()}

    def job(function, kind):
        folder = workdir / f"{function}-{kind}"
        submission = planted(by_name[function], PLANTED["raise" if kind == "raise" else "hang"],
                             folder / "submission")
        if kind == "production":
            return grade(submission, folder / "results.json")
        selection = [t for t in all_tests if not t.startswith(LEARNING)
                     or kind == "raise" and t.endswith("-basic") and t in calls[function]]
        limits = ["--timeout", HANG_TIMEOUT_S] if kind == "hang" else []
        return grade(submission, folder / "results.json", *selection, *limits)

    jobs = [(function, "production") for function in PRODUCTION]  # the longest first
    jobs += [(function, kind) for function in by_name for kind in PLANTED]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(jobs, pool.map(lambda j: job(*j), jobs)))


def test_the_call_table_covers_every_student_function(calls):
    functions = [region[3] for region in regions()]
    print("\nwhich questions' tests call each student-written function (traced on the reference):")
    for function in functions:
        print(f"  {function:<45} {' '.join(questions(calls.get(function, ()))) or 'NONE'}")
    assert len(functions) == len(set(functions)), "two regions in one function: name them apart"
    assert all(calls.get(function) for function in functions), \
        f"never called by any test: {[f for f in functions if not calls.get(f)]}"


def test_a_hang_or_a_raise_costs_only_the_questions_that_call_it(calls, graded):
    problems, lines = [], []
    for (function, kind), (tests, seconds, _stdout) in graded.items():
        allowed = set(questions(calls[function]))
        lost_questions = set(questions(lost(tests)))
        lines.append(f"  {function:<45} {kind:<5} {seconds:5.1f} s  lost in: {' '.join(sorted(lost_questions))}")
        if lost_questions - allowed:
            outside = sorted(t for t in lost(tests) if t.split("-")[0] not in allowed)
            problems.append(f"{function} ({kind}) lost points outside {sorted(allowed)}: "
                            + "; ".join(f"{t}: {tests[t]['output'][:300]}" for t in outside))
        required = {q for q in allowed if (function, q) not in TOLERATED}
        if kind == "raise" and required - lost_questions:
            problems.append(f"{function} raises, yet {sorted(required - lost_questions)} lost nothing although "
                            "the trace says their tests call it")
        if kind in ("hang", "production"):
            outputs = " ".join(t.get("output", "") for t in tests.values())
            if not re.search(rf"{re.escape(function)} \(line \d+\) did not return within", outputs):
                problems.append(f"{function} (hang): no message says that {function} did not return")
    print("\n" + "\n".join(lines))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("function", PRODUCTION)
def test_one_hanging_function_with_production_limits(function, calls, graded):
    """Every test, default limits: done within 5 minutes, and only the questions that call it lose points."""
    tests, seconds, stdout = graded[function, "production"]
    print(f"\n{function} hangs: full grade with production limits in {seconds:.0f} s")
    assert set(questions(lost(tests))) <= set(questions(calls[function])), stdout
    assert {t.split("-")[0] for t in tests} >= set(LEARNING), "the learning tests were not graded"
    assert seconds < FULL_GRADE_LIMIT_S, stdout
    assert f"(still running {function} (line" in stdout, stdout  # the progress line says what it waits for
