"""Staff tests of grader.py: hostile submissions, results.json, exit status, user switch and limits.

Every scenario runs ``grader.py`` as a subprocess on the grader's own small suite
(``staff_tests/grader_suite/suite_basic.py``, tests 1a, 1b, 2a, 3a) so that these
tests do not depend on the real tests being written in parallel.  The scenarios
run up to three at a time (each grader takes its own sandbox user from the pool)
in one session fixture; the tests below then check what each one left behind.

As root (CI, Gradescope) the user switch is tested for real: the fork bomb and
the forging daemon run only as the sandbox user, capped by RLIMIT_NPROC and
killed with every other process of that user when grading ends.  As an
ordinary user those two scenarios and the non-root run are skipped (without a
user switch nothing can stop a daemon from outliving the grader, and
RLIMIT_NPROC would count the developer's own processes).
"""
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT, validate_results

from src.grading.host import launchers as privileges

SUITE = ROOT / "staff_tests" / "grader_suite" / "suite_basic.py"
BROKEN = ROOT / "staff_tests" / "grader_suite" / "suite_broken.py"
HOSTILE = ROOT / "staff_tests" / "hostile"
IS_ROOT = privileges.is_root()
SELECT = ["1a", "1b", "2a", "3a"]
SUITE_POINTS = {"1a-0-basic": 0.5, "1a-1-hidden": 1.5, "1b-0-basic": 0.5, "1b-1-hidden": 0.5, "2a-0-basic": 1.0,
                "2a-1-hidden": 2.0, "3a-0-basic": 0.5, "3a-1-hidden": 1.5}


def compose(name, into, edits=()):
    """solution/ with the hostile files of ``staff_tests/hostile/<name>`` laid over it; ``edits``: (old, new)
    text replacements in those files."""
    target = Path(into) / name
    shutil.copytree(ROOT / "solution", target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in (HOSTILE / name).iterdir():
        if path.name == "MISSING":
            for missing in path.read_text().split():
                (target / missing).unlink()
        elif ".py" in path.name:
            text = path.read_text()
            for old, new in edits:
                text = text.replace(old, new)
            (target / (path.name.split(".py")[0] + ".py")).write_text(text)
    return target


def _left_running(user, uid):
    """The processes of the sandbox user left after its grader ended: checked while holding that user's pool
    lock, so that no other grader (started by another test or a colleague) can be using the user meanwhile."""
    if uid is None:
        return []
    import fcntl

    deadline = time.monotonic() + 30
    with open(privileges.LOCK_DIR / f"{user}.lock", "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    return []  # taken by another grader for 30 s: that grader kills leftovers anyway
                time.sleep(0.1)
        left = []
        for pid in privileges.user_processes(uid):
            try:
                left.append(f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes().replace(bytes(1), b' ')[:200]!r}")
            except OSError:
                pass
        return left


class Run:
    def __init__(self, name, command, results, returncode, stdout, stderr, seconds, after=None):
        self.name, self.command, self.results_path = name, command, Path(results)
        self.returncode, self.stdout, self.stderr, self.seconds = returncode, stdout, stderr, seconds
        self.results = json.loads(self.results_path.read_text()) if self.results_path.exists() else None
        match = re.search(r"worker runs as user '([^']+)' \(uid (\d+)\)", stdout)
        self.user, self.uid = (match.group(1), int(match.group(2))) if match else (None, None)
        self.left_running = _left_running(self.user, self.uid)
        self.after = after(self) if after else None

    def test(self, test_id):
        return next(t for t in self.results["tests"] if t["number"] == test_id)

    def __repr__(self):
        return (f"<{self.name}: exit {self.returncode} in {self.seconds:.0f} s>\n--- stdout\n{self.stdout[-3000:]}"
                f"\n--- stderr\n{self.stderr[-3000:]}")


def grade(name, workdir, *args, results=None, grader=ROOT / "grader.py", user=None, after=None, timeout=300,
          python=sys.executable):
    results = Path(results or Path(workdir) / name / "results" / "results.json")
    command = [str(python), str(grader), *map(str, args), "--results", str(results)]
    if user:
        command = ["runuser", "-u", user, "--", *command]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    done = subprocess.run(command, cwd=grader.parent, capture_output=True, text=True, timeout=timeout, env=env)
    return Run(name, command, results, done.returncode, done.stdout, done.stderr, time.monotonic() - started, after)


def _forge_after(run):
    """Right after the forging grader ended: is its results file still intact a moment later?"""
    before = run.results_path.read_text() if run.results_path.exists() else None
    time.sleep(1.5)
    after = run.results_path.read_text() if run.results_path.exists() else None
    return {"unchanged": before == after}


def _solution_copy(workdir, name):
    """solution/ copied where any user can read it (the grader, as root, makes solution/ itself root-only)."""
    copy = Path(workdir) / name
    shutil.copytree(ROOT / "solution", copy, ignore=shutil.ignore_patterns("__pycache__"))
    os.chmod(copy, 0o755)
    for path in copy.iterdir():
        os.chmod(path, 0o644)
    return copy


def grader_copy(workdir, name, hidden=True):
    """A private copy of the grader, so that colleagues' work in progress in this tree cannot disturb these
    tests.  ``hidden``: a staff copy (hidden_tests/fixtures/expected.pt present, solution/ and staff_tests/
    beside it); else a students' copy (no hidden expected values, no staff files)."""
    import torch

    copy = Path(workdir) / name
    copy.mkdir()
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copy(ROOT / "grader.py", copy / "grader.py")
    shutil.copytree(ROOT / "src", copy / "src", ignore=ignore)
    (copy / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "points.json", copy / "tests" / "points.json")
    # the suite: beside the staff files in a staff copy (root-only while grading), under tests/ in a students' copy
    shutil.copytree(ROOT / "staff_tests" / "grader_suite", copy / ("staff_tests" if hidden else "tests") /
                    "grader_suite", ignore=ignore)
    if hidden:
        (copy / "hidden_tests" / "fixtures").mkdir(parents=True)
        torch.save({"_meta": {"secret": "HIDDEN-EXPECTED-VALUES"}}, copy / "hidden_tests" / "fixtures" / "expected.pt")
        shutil.copytree(ROOT / "solution", copy / "solution", ignore=ignore)
        (copy / "staff").mkdir()
        (copy / "staff" / "key.txt").write_text("STAFF SECRET\n")
    for folder, dirs, files in os.walk(copy):
        os.chmod(folder, 0o755)
        for file in files:
            os.chmod(os.path.join(folder, file), 0o644)
    return copy


def half_done(workdir):
    """The reference with made.py still the stub."""
    submission = Path(workdir) / "half_done"
    shutil.copytree(ROOT / "solution", submission, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "submission" / "made.py", submission / "made.py")
    return submission


@pytest.fixture(scope="session")
def runs():
    workdir = Path(tempfile.mkdtemp(prefix="ps1-grader-staff-"))
    os.chmod(workdir, 0o755)  # the sandbox user must reach the copies of the grader
    staff = grader_copy(workdir, "staff_copy")
    student = grader_copy(workdir, "student_copy", hidden=False)
    suite = staff / "staff_tests" / "grader_suite" / "suite_basic.py"

    def staff_grade(name, *args, **kwargs):
        return grade(name, workdir, *args, grader=staff / "grader.py", **kwargs)

    jobs = {
        "solution": lambda: staff_grade("solution", *SELECT, "--tests", suite, "--submission", ROOT / "solution",
                                        "--stats", workdir / "solution-stats.json"),
        "stubs": lambda: staff_grade("stubs", "1a-0-basic", "1b", "2a", "3a", "--tests", suite, "--submission",
                                     ROOT / "submission"),
        "import_exit": lambda: staff_grade("import_exit", *SELECT, "--tests", suite, "--submission",
                                           compose("import_exit", workdir)),
        "import_loop": lambda: staff_grade("import_loop", *SELECT, "--tests", suite, "--import-timeout", 3,
                                           "--submission", compose("import_loop", workdir)),
        "functions": lambda: staff_grade("functions", "1a", "1b-0-basic", "2a-0-basic", "3a-0-basic", "--tests",
                                         suite, "--timeout", 6, "--memory-mb", 256, "--submission",
                                         compose("functions", workdir)),
        "broken": lambda: staff_grade("broken", "1a", "--tests", staff / "staff_tests" / "grader_suite" /
                                      "suite_broken.py", "--submission", ROOT / "solution"),
        "usage": lambda: staff_grade("usage", "9z"),
        "no_folder": lambda: staff_grade("no_folder", "--submission", workdir / "nowhere"),
        "file_as_folder": lambda: staff_grade("file_as_folder", "--submission", staff / "grader.py"),
        "student_copy": lambda: grade("student_copy", workdir, "1a", "2a", "--tests", student / "tests" /
                                      "grader_suite" / "suite_basic.py", "--submission", half_done(workdir),
                                      grader=student / "grader.py"),
    }
    listener = socket.create_server(("127.0.0.1", 0))  # outside the grader's network namespace
    listener.setblocking(False)
    if IS_ROOT:
        port = listener.getsockname()[1]
        forge = compose("forge", workdir, edits=[("LISTENER_PORT = 0", f"LISTENER_PORT = {port}")])

        def forge_after(run):
            try:
                listener.accept()[0].close()
                reached = True
            except BlockingIOError:
                reached = False
            return {**_forge_after(run), "listener_reached": reached}

        jobs["forge"] = lambda: staff_grade("forge", *SELECT, "--tests", suite, "--submission", forge,
                                            after=forge_after,
                                            results=workdir / "forge" / "autograder" / "results" / "results.json")

        def nonroot():
            results = workdir / "nonroot-results"
            results.mkdir()
            shutil.chown(results, "nobody")
            return grade("nonroot", workdir, "1a", "--tests", student / "tests" / "grader_suite" /
                         "suite_basic.py", "--submission", _solution_copy(workdir, "nonroot_solution"),
                         results=results / "results.json", user="nobody", grader=student / "grader.py")

        if shutil.which("runuser"):
            jobs["nonroot"] = nonroot
    order = ["functions", "import_exit", "forge", "import_loop", "solution", "stubs", "student_copy", "nonroot",
             "broken", "usage", "no_folder", "file_as_folder"]  # the slowest first
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(jobs[name]) for name in sorted(jobs, key=order.index)}
        done = {name: future.result() for name, future in futures.items()}
    done["_staff_copy"] = staff
    if os.environ.get("GRADER_STAFF_DUMP"):
        for run in done.values():
            if isinstance(run, Run):
                print(f"\n===== {run!r}\n{json.dumps(run.results, indent=1)[:4000]}")
    yield done
    listener.close()
    shutil.rmtree(workdir, ignore_errors=True)


def _check_common(run, exit_status=0):
    assert run.returncode == exit_status, run
    assert run.results is not None, run
    validate_results(run.results)
    assert run.left_running == [], f"processes of {run.user} still running: {run.left_running}\n{run}"
    for test in run.results["tests"]:
        assert test["name"].startswith(test["number"] + " "), test
        assert test["visibility"] == ("after_published" if test["number"].endswith("-hidden") else "visible")


def _scores(run):
    return {t["number"]: t["score"] for t in run.results["tests"]}


# -- the reference and the stubs ---------------------------------------------
def test_solution_gets_full_marks(runs):
    run = runs["solution"]
    _check_common(run)
    assert _scores(run) == SUITE_POINTS, run
    assert run.results["score"] == sum(SUITE_POINTS.values())
    assert re.search(r"^\[ 1/8\] 1a-0-basic +passed", run.stdout, re.M), run  # a progress line per test
    assert "Autograded:" in run.stdout and "of which hidden:" in run.stdout
    if IS_ROOT:
        assert run.user is not None and run.uid != 0, run


def test_grading_path_imports_no_plotting_or_vision(runs):
    stats = json.loads((Path(runs["solution"].results_path).parents[2] / "solution-stats.json").read_text())
    assert stats["tests"] and all(test["status"] == "passed" for test in stats["tests"]), stats["tests"]
    assert stats["grader_heavy_modules"] == [] and stats["worker_heavy_modules"] == [], stats
    assert stats["workers"] and all(w.get("modules") for w in stats["workers"]), stats
    assert not {"torchvision", "matplotlib"} & set(stats["workers"][0]["modules"])


def test_stubs_score_zero_with_one_line_messages(runs):
    run = runs["stubs"]
    _check_common(run)
    assert run.results["score"] == 0 and set(_scores(run).values()) == {0.0}, run
    assert set(_scores(run)) == set(SUITE_POINTS) - {"1a-1-hidden"}, run  # selection by test id and by question
    assert run.test("1a-0-basic")["output"] == "autoregressive.bernoulli_log_likelihood: not implemented yet"
    assert run.test("3a-0-basic")["output"] == "pixelcnn.conv_mask: not implemented yet"
    assert "made.MaskedLinear.__init__: not implemented yet" in run.stdout


def test_students_copy_runs_hidden_tests_without_their_values(runs):
    run = runs["student_copy"]
    _check_common(run)
    scores = _scores(run)
    assert scores["1a-0-basic"] == 0.5 and scores["2a-0-basic"] == 0.0, run
    assert "expected values are not in this copy" in run.test("1a-1-hidden")["output"]  # unknown: ???
    assert "ran without crashing; scored on Gradescope" in run.stdout
    # the hidden test still ran the student's code, so its crash shows
    assert run.test("2a-1-hidden")["output"] == "made.MaskedLinear.__init__: not implemented yet", run


# -- failures at import ------------------------------------------------------
def test_exit_at_import_and_syntax_error_cost_only_their_files(runs):
    run = runs["import_exit"]
    _check_common(run)
    scores = _scores(run)
    assert scores == {**SUITE_POINTS, "1a-0-basic": 0, "1a-1-hidden": 0, "1b-0-basic": 0, "1b-1-hidden": 0,
                      "2a-0-basic": 0, "2a-1-hidden": 0}, run
    message = run.test("1a-0-basic")["output"]
    assert message.startswith("autoregressive.py could not be imported: the process running your code ended "
                              "(exit status 0)"), message
    message = run.test("2a-0-basic")["output"]
    assert message.startswith("made.py could not be imported: SyntaxError"), message
    assert "line 5" in message, message


def test_endless_import_and_missing_file_cost_only_their_files(runs):
    run = runs["import_loop"]
    _check_common(run)
    assert _scores(run) == {**SUITE_POINTS, "1a-0-basic": 0, "1a-1-hidden": 0, "1b-0-basic": 0,
                            "1b-1-hidden": 0, "2a-0-basic": 0, "2a-1-hidden": 0}, run
    message = run.test("1a-0-basic")["output"]
    assert re.match(r"autoregressive.py could not be imported: line [23] of autoregressive.py: timed out after 3 s",
                    message), message
    assert run.test("1b-0-basic")["output"] == message  # cached: not 3 s more per test
    assert run.test("2a-0-basic")["output"].startswith("made.py is missing from your submission")
    assert run.seconds < 120, run


# -- failures in functions ---------------------------------------------------
def test_bombs_loops_crashes_and_spam_each_cost_their_test(runs):
    run = runs["functions"]
    _check_common(run)
    assert set(_scores(run).values()) == {0.0}, run
    assert run.test("1a-0-basic")["output"].startswith(
        "autoregressive.bernoulli_log_likelihood: memory limit (256 MB) exceeded"), run
    assert re.match(r"autoregressive.categorical_log_likelihood \(line 1[67]\) did not return within 6 s on x: \(",
                    run.test("1a-1-hidden")["output"]), run
    assert run.test("1b-0-basic")["output"].startswith("autoregressive.nll_to_bits_per_dim (line 22): "
                                                       "the process running your code ended (signal 11"), run
    fork_bomb = run.test("2a-0-basic")["output"]
    if IS_ROOT:
        assert re.match(r"made.MaskedLinear.forward \(line \d+\) did not return within 6 s", fork_bomb), fork_bomb
    else:
        assert "fork bomb not started" in fork_bomb, fork_bomb
    spam = run.test("3a-0-basic")["output"]
    assert "entries differ" in spam
    # the student's own output, capped: the start of the first 1 MB line, then how many lines were left out
    assert "what your code printed during this test" in spam and "| ... 199 more lines" in spam, spam[-600:]
    assert len(spam) < 5000, len(spam)
    assert len(run.stdout) < 100_000 and run.results_path.stat().st_size < 100_000, run  # 100 MB printed
    assert run.seconds < 150, run


@pytest.mark.skipif(not IS_ROOT, reason="needs the user switch (root)")
def test_forgery_secrets_tampering_and_daemons_get_nothing(runs):
    run = runs["forge"]
    _check_common(run)
    assert _scores(run) == {**SUITE_POINTS, "1a-0-basic": 0, "1a-1-hidden": 0, "1b-0-basic": 0, "1b-1-hidden": 0}, run
    report = run.test("1a-0-basic")["output"]
    # no secret read, no results file written, no connection opened (the grader has a network namespace of its own)
    assert "no network" in run.stdout, run
    assert "HOSTILE REPORT read=[] forged=[] network=[]" in report, report
    assert not run.after["listener_reached"]
    assert "results=" + str(run.results_path) in report, report  # it did find the results path
    assert f"root={runs['_staff_copy']}" in report and int(re.search(r"denied=(\d+)", report).group(1)) >= 13, report
    assert run.after["unchanged"], "the results file changed after the grader ended"
    assert "FORGED" not in run.results_path.read_text()
    assert not (run.results_path.parent / "forged.json").exists()
    assert not Path("/autograder/results/results.json").exists() or "FORGED" not in Path(
        "/autograder/results/results.json").read_text()
    assert "SystemExit" in run.test("1b-0-basic")["output"]
    import hashlib

    assert not Path("/tmp/ps1-hostile-" + hashlib.sha1(str(run.results_path).encode()).hexdigest()[:12]).exists()
    assert (run.results_path.parent.stat().st_mode & 0o777) == 0o755  # the file was protected, not its folder
    for secret in ("hidden_tests", "solution", "staff", "staff_tests"):  # root-only while grading, then restored
        assert (runs["_staff_copy"] / secret).stat().st_mode & 0o777 == 0o755, secret


@pytest.mark.skipif(not IS_ROOT or not shutil.which("runuser"), reason="needs root to start a non-root grader")
def test_non_root_grader_works_without_user_switch(runs):
    run = runs["nonroot"]
    _check_common(run)
    # a student's laptop: the first line says in plain words how the code runs (the details need -v)
    assert "your code runs in a separate process with time and memory limits" in run.stdout.splitlines()[0], run
    assert run.test("1a-0-basic")["score"] == 0.5
    # hidden_tests/ is root-only, so for this user the hidden values are absent: unknown, not failed
    assert "expected values are not in this copy" in run.test("1a-1-hidden")["output"], run


# -- the grader's own failures -----------------------------------------------
def test_grader_failure_still_writes_valid_results(runs):
    run = runs["broken"]
    _check_common(run, exit_status=1)
    assert run.results["score"] == 0
    assert {t["number"] for t in run.results["tests"]} == {"1a-0-basic", "1a-1-hidden"}
    assert all(t["score"] == 0 and "could not be loaded" in t["output"] for t in run.results["tests"]), run
    assert "could not be loaded" in run.results["output"] or "could not be loaded" in run.test("1a-0-basic")["output"]
    assert "GRADER PROBLEM" in run.stdout


def test_bad_command_line_exits_2_with_valid_results(runs):
    run = runs["usage"]
    _check_common(run, exit_status=2)
    assert "unknown question or test id: 9z" in run.stderr
    coding = [t for t in json.loads((ROOT / "tests" / "points.json").read_text())["tests"].values()
              if t["type"] == "coding"]
    assert len(run.results["tests"]) == len(coding) and run.results["score"] == 0


class _UnreadableLimits(privileges.Limits):
    def as_argument(self):
        return "{not json"  # the worker fails at start-up, reading its limits


def test_worker_start_up_failure_says_what_happened_and_when():
    from src.grading.host import worker_client as sandbox

    started = time.monotonic()
    with pytest.raises(privileges.GraderError) as failure:
        sandbox.Worker(ROOT / "solution", 5, privileges.Launcher(_UnreadableLimits())).start()
    message = str(failure.value)
    first_line = message.splitlines()[0]
    assert re.match(r"the worker exited during start-up after \d+\.\d s \(exit status 1\): "
                    r"json\.decoder\.JSONDecodeError: Expecting property name", first_line), message
    assert message.endswith("(char 1)") and "Traceback" not in first_line, message  # its last line, whole
    assert time.monotonic() - started < 60


def test_missing_submission_folder_exits_2_and_grades_nothing(runs):
    for name, reason in (("no_folder", "no such folder"), ("file_as_folder", "is neither a folder nor a .zip")):
        run = runs[name]
        _check_common(run, exit_status=2)
        assert run.stderr.strip().splitlines() == [f"grader.py: --submission {run.command[-3]}: {reason}"], run
        assert "Grading" not in run.stdout and "[ 1/" not in run.stdout, run
        assert run.results["score"] == 0 and "bad command line" in run.results["output"], run


def test_staff_time_budget(runs):
    slowest = max((run for run in runs.values() if isinstance(run, Run)), key=lambda run: run.seconds)
    assert slowest.seconds < 170, slowest


# -- graders side by side ------------------------------------------------------
def _permissions(paths):
    """Mode and ACL (getfacl) of each path."""
    getfacl = shutil.which("getfacl")
    return {str(path): (stat.S_IMODE(os.stat(path).st_mode),
                        subprocess.run([getfacl, "--absolute-names", "--omit-header", str(path)], capture_output=True,
                                       text=True).stdout) for path in paths}


def _locked_python(workdir):
    """A virtual environment (with this interpreter's packages) inside a folder only root may enter."""
    import site

    locked = Path(workdir) / "root-only"
    locked.mkdir(mode=0o700)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(locked / "venv")], check=True)
    packages = next((locked / "venv" / "lib").glob("python3*")) / "site-packages"
    (packages / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return locked, locked / "venv" / "bin" / "python"


@pytest.mark.skipif(not IS_ROOT or not shutil.which("getfacl"), reason="needs root and getfacl (apt-get install acl)")
def test_graders_side_by_side_score_as_alone_and_leave_permissions_as_found(runs):
    """Three graders at once in sibling copies, one results folder for all, Python behind a root-only folder, and a
    fourth grader stopped with SIGTERM in the first copy: same scores as alone (the scenarios of ``runs``), and
    every folder and file involved has the same mode and ACL afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="ps1-side-by-side-"))
    try:
        os.chmod(workdir, 0o755)
        locked, python = _locked_python(workdir)
        copies = [grader_copy(workdir, f"copy{i}") for i in range(3)]
        shared = workdir / "results"
        shared.mkdir()
        submissions = {"solution": ROOT / "solution", "stubs": ROOT / "submission",
                       "import_exit": compose("import_exit", workdir)}
        selections = {"solution": SELECT, "stubs": ["1a-0-basic", "1b", "2a", "3a"], "import_exit": SELECT}
        involved = [*Path(workdir).parents, *(Path(folder) for folder, _, _ in os.walk(workdir)),
                    *(path for copy in copies for path in copy.rglob("*"))]
        before = _permissions(involved)

        def side_by_side(name, copy):
            suite = copy / "staff_tests" / "grader_suite" / "suite_basic.py"
            return grade(name, workdir, *selections[name], "--tests", suite, "--submission", submissions[name],
                         results=shared / f"{name}.json", grader=copy / "grader.py", python=python)

        def stopped():
            suite = copies[0] / "staff_tests" / "grader_suite" / "suite_basic.py"
            command = [str(python), str(copies[0] / "grader.py"), *SELECT, "--tests", str(suite), "--submission",
                       str(ROOT / "solution"), "--results", str(shared / "stopped.json")]
            process = subprocess.Popen(command, cwd=copies[0], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True)
            lines = []
            for line in process.stdout:  # stopped once it grades, with its worker running
                lines.append(line)
                if line.startswith("[ 1/"):
                    process.send_signal(signal.SIGTERM)
                    break
            lines.append(process.communicate(timeout=120)[0])
            return process.returncode, "".join(lines)

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = {name: pool.submit(side_by_side, name, copy) for name, copy in zip(submissions, copies)}
            stop = pool.submit(stopped)
            done = {name: future.result() for name, future in futures.items()}
            status, stop_output = stop.result()
        after = _permissions(involved)
        for name, run in done.items():
            _check_common(run)
            assert str(locked) in run.stdout.split("gave that user search (x) permission on", 1)[-1], run
            assert _scores(run) == _scores(runs[name]), f"{name}: {_scores(run)} side by side, {_scores(runs[name])} " \
                                                        f"alone\n{run}"
        assert status == 1 and "grading was stopped (SIGTERM" in stop_output, stop_output
        changed = {path: (before[path], after[path]) for path in before if before[path] != after[path]}
        assert changed == {}, changed
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.skipif(not IS_ROOT, reason="the journal is root's")
def test_permission_journal_restores_after_the_last_holder_even_if_killed(tmp_path):
    from src.grading.host.permission_journal import TemporaryPermissions

    locks, staff, locked = tmp_path / "locks", tmp_path / "staff", tmp_path / "locked"
    staff.mkdir(mode=0o755)
    locked.mkdir(mode=0o700)
    (locked / "python").mkdir()
    hold = ("import sys; from src.grading.host.permission_journal import TemporaryPermissions; "
            "changes = TemporaryPermissions(sys.argv[1]); changes.make_root_only([sys.argv[2]]); print('held', "
            "flush=True); sys.stdin.readline(); changes.restore()")

    def holder():
        process = subprocess.Popen([sys.executable, "-c", hold, str(locks), str(staff)], cwd=ROOT,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline() == "held\n"
        return process

    first, second = holder(), holder()
    assert stat.S_IMODE(staff.stat().st_mode) == 0o700
    first.communicate("\n", timeout=30)
    assert stat.S_IMODE(staff.stat().st_mode) == 0o700  # the second grader still relies on it
    second.kill()
    second.wait()
    TemporaryPermissions(locks).make_root_only([])  # the next grader restores what the killed one held
    assert stat.S_IMODE(staff.stat().st_mode) == 0o755

    import pwd

    nobody = pwd.getpwnam("nobody")
    on_the_way = [locked, *locked.parents]  # tmp_path's parents are root-only too
    acl_before = _permissions(on_the_way) if shutil.which("getfacl") else None
    changes = TemporaryPermissions(locks)
    assert str(locked) in changes.grant_search([locked / "python"], nobody.pw_uid, nobody.pw_gid)
    if shutil.which("runuser"):
        assert subprocess.run(["runuser", "-u", "nobody", "--", "ls", str(locked / "python")]).returncode == 0
    changes.restore()
    assert stat.S_IMODE(locked.stat().st_mode) == 0o700
    if acl_before is not None:
        assert _permissions(on_the_way) == acl_before
