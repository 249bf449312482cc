#!/usr/bin/env python3
"""Grade Problem Set 1 the way Gradescope does.

    python grader.py                          # grade submission/: every public (and hidden) test
    python grader.py 2a                       # one question; several are allowed: 2a 2b 3a
    python grader.py 2a-0-basic               # one test
    python grader.py --submission FOLDER      # grade the .py files of another folder
    python grader.py --submission upload.zip  # grade the zip you will upload, read as Gradescope reads it
    python grader.py -v                       # print every failure in full (with your traceback)
    python grader.py --results results.json   # also write Gradescope's results.json

It runs the graded pytest tests of ``tests/`` (with the hidden tests of
``tests/hidden/``) through the grader's pytest plugin.  Your code runs in a
separate worker process with a time and a memory limit; when the grader runs as
root (Gradescope) that process runs as an unprivileged user of its own.  Hidden
tests whose expected values are not in your copy still run your code (so a crash
or a time-out shows); their points show as ? ("ran without crashing; scored on
Gradescope").  Written questions are graded by hand and never scored here.

Exit status: 0 when grading completed (whatever the score), 1 when the grader
itself failed, 2 for a bad command line.  With ``--results`` the results file
is written in every case, also when the grader fails.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# This checkout's src/, whatever else is on sys.path (PYTHONPATH, another checkout's conftest.py): every later
# `src.*` import resolves through the package imported here.
sys.path.insert(0, str(ROOT))
import src  # noqa: E402

if Path(src.__file__).resolve().parent != ROOT / "src":  # imported in a process that already had another src
    raise ImportError(f"grader.py of {ROOT} found the package src already imported from {src.__file__}: run it "
                      "as a script (python grader.py), so that it uses only its own checkout's code")
from src.grading import settings  # noqa: E402
from src.grading.paths import modules_from_elsewhere  # noqa: E402

MANIFEST = ROOT / "tests" / "points.json"
HEAVY_MODULES = ("torchvision", "matplotlib", "PIL", "pandas", "scipy", "sklearn", "IPython")


# BEGIN STAFF ONLY (tools/build_release.py leaves these lines out of the students' grader.py)
STAFF_EPILOG = """
Staff (the students' copy has neither these lines nor the staff options):
    python grader.py --submission solution    # the reference: full marks
    python grader.py --stats stats.json       # timing and memory (tools/benchmark_grader.py)
Hidden tests run from hidden_tests/, with their expected values in hidden_tests/fixtures/expected.pt.
"""


def add_staff_options(parser):
    staff = parser.add_argument_group("staff")
    staff.add_argument("--tests", action="append", help="test folders or files to run instead of the default ones")
    staff.add_argument("--sandbox-user", help="as root: run the worker as this (existing) user")
    staff.add_argument("--no-sandbox-user", action="store_true", help="as root: do not switch user (unsafe)")
    staff.add_argument("--stats", help="write timing and memory statistics (JSON) here (tools/benchmark_grader.py)")
    staff.add_argument("--trace-calls", action="store_true", help="with --stats: also record which functions of "
                       "the submission each test entered (sys.setprofile in the worker: slower)")
    parser.epilog += STAFF_EPILOG


# END STAFF ONLY
def parse_args(argv):
    parser = argparse.ArgumentParser(description="Grade Problem Set 1 (autoregressive models).",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("select", nargs="*", metavar="QUESTION_OR_TEST",
                        help="question ids (2a) or test ids (2a-0-basic) to grade; default: everything")
    parser.add_argument("--submission", default=str(ROOT / "submission"),
                        help="folder with your .py files, or the .zip you will upload to Gradescope (its files are "
                             "found as Gradescope's autograder finds them, in a temporary folder removed afterwards)")
    parser.add_argument("--results", help="also write Gradescope's results.json to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every failure message in full")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--timeout", type=float, default=settings.CALL_TIMEOUT_S, help="seconds per call into your code "
                        f"(default {settings.CALL_TIMEOUT_S:g}; "
                        "tests may set their own); a function that runs past it is not called again")
    limits.add_argument("--import-timeout", type=float, default=settings.IMPORT_TIMEOUT_S,
                        help="seconds to import one of your files")
    limits.add_argument("--memory-mb", type=int, default=settings.MEMORY_MB,
                        help=f"memory your code may use on top of Python and torch (default {settings.MEMORY_MB} MB)")
    limits.add_argument("--time-budget", type=float, default=settings.TIME_BUDGET_S,
                        help="seconds that all calls into your code may take together "
                             f"(default {settings.TIME_BUDGET_S:g}), a backstop "
                             "against code that is slow everywhere; a grade then ends within about 9 minutes")
    parser.set_defaults(tests=None, sandbox_user=None, no_sandbox_user=False, stats=None, trace_calls=False)
    # BEGIN STAFF ONLY
    add_staff_options(parser)
    # END STAFF ONLY
    return parser.parse_args(argv)


class UsageError(Exception):
    """A bad command line (exit status 2)."""


def load_manifest():
    return json.loads(MANIFEST.read_text())


def resolve_selection(manifest, select):
    """The selected ids, checked against the manifest; raises ValueError for an unknown one."""
    known = set(manifest["questions"]) | set(manifest["tests"])
    unknown = [s for s in select if s not in known]
    if unknown:
        raise UsageError(f"unknown question or test id: {', '.join(unknown)} (questions: "
                         f"{', '.join(manifest['questions'])}; tests look like 2a-0-basic)")
    return list(select) or None


def default_test_paths():
    paths = [ROOT / "tests"]  # includes tests/hidden/ (the hidden tests' runners in the students' copy)
    # BEGIN STAFF ONLY
    if (ROOT / "hidden_tests").is_dir():
        paths.append(ROOT / "hidden_tests")  # staff / Gradescope copy, with the expected values
    # END STAFF ONLY
    return paths


def reserve_results_file(path):
    """An empty results file that only the grader's user may read or write, in place before any worker starts:
    the worker's user can neither read nor replace it, and the final one replaces it atomically.  Its folder
    keeps its permissions (other graders may be writing there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 600
    os.close(fd)
    os.replace(temporary, path)


class Progress:
    """One line per test while the grade runs."""

    def __init__(self, stream):
        self.stream = stream

    def waiting(self, text):
        """A call into the student's code has been running a while: say for what (on the test's line)."""
        self.stream.write(f"{text} ")
        self.stream.flush()

    def __call__(self, event, test_id, index, total, result):
        if event == "start":
            self.stream.write(f"[{index:>2}/{total}] {test_id:<13} ")
        else:
            if result is None:
                text = "not graded"
            elif result.status == "unknown":
                text = f"ran without crashing  ?/{result.max_score:g} (scored on Gradescope)"
            else:
                score = "?" if result.score is None else f"{result.score:g}"
                text = f"{'passed' if result.status == 'passed' else 'FAILED'}  {score}/{result.max_score:g}"
            seconds = result.seconds if result is not None else 0.0
            self.stream.write(f"{text}  ({seconds:.1f} s)\n")
        self.stream.flush()


def check_submission(path, state):
    """``(folder to grade, name to show)`` for ``--submission``; UsageError unless it is a folder or a zip.

    A zip is unpacked into a temporary folder (``state["upload_scratch"]``, which ``main`` removes however grading
    ends) and its three files collected as Gradescope's autograder collects them; the notes say what was found."""
    given = Path(path)
    folder = given.resolve()
    if folder.is_dir():
        return folder, folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
    if not folder.exists():
        raise UsageError(f"--submission {path}: no such {'file' if folder.suffix.lower() == '.zip' else 'folder'}")
    if folder.suffix.lower() != ".zip":
        raise UsageError(f"--submission {path}: is neither a folder nor a .zip")
    from src.grading.host import submission_upload

    scratch = state["upload_scratch"] = tempfile.mkdtemp(prefix=f"{folder.name}-unpacked-")
    try:
        graded, notes = submission_upload.unpack_upload_zip(folder, scratch)
    except submission_upload.UploadError as error:
        raise UsageError(f"--submission {path}: {error}") from None
    print(f"{given.name}, read as Gradescope's autograder reads an upload:", *(f"  {note}" for note in notes),
          sep="\n", flush=True)
    return graded, given.name


def run(args, started, state):
    manifest = state["manifest"] = load_manifest()
    selection = state["selection"] = resolve_selection(manifest, args.select)
    submission, shown = check_submission(args.submission, state)
    from src.grading.host import launchers
    from src.grading.host.worker_client import Worker  # does not load torch: the worker starts while the grader loads it

    results_path = Path(args.results).resolve() if args.results else None

    limits = launchers.Limits(memory_mb=args.memory_mb)
    launcher = state["launcher"] = launchers.make_launcher(limits, user=args.sandbox_user,
                                                           switch_user=not args.no_sandbox_user)
    # Before any worker starts: the grader's private folders (until grading ends) and the results file
    # become root-only.
    launcher.protect([ROOT / name for name in launchers.PROTECTED_PATHS])
    if results_path is not None:
        reserve_results_file(results_path)

    paths = [Path(p).resolve() for p in args.tests] if args.tests else default_test_paths()
    worker_options = dict(import_timeout_s=args.import_timeout, time_budget_s=args.time_budget,
                          collect_stats=bool(args.stats), trace_calls=args.trace_calls)
    worker = state["worker"] = Worker(submission, args.timeout, launcher, **worker_options)
    worker.start(wait=False)  # torch loads in the worker while the grader loads it and pytest collects

    from src.grading.host import report
    from src.grading.host.plugin import GraderPlugin

    plugin = state["plugin"] = GraderPlugin(launcher=launcher, selection=selection, progress=Progress(sys.stdout),
                                            worker_options=worker_options)
    plugin.worker = worker
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only our plugin: same behaviour on every machine
    import pytest

    # as root (Gradescope, TAs) or with -v: who runs the student's code, and whether it has network
    isolation = launcher.describe() if args.verbose or launcher.privileged else \
        "your code runs in a separate process with time and memory limits"
    label = shown if state.get("upload_scratch") else f"{shown}/"  # a zip, or a folder
    print(f"Grading {label} ({'question(s) ' + ' '.join(selection) if selection else 'all questions'}); "
          f"{isolation}", flush=True)
    pytest_args = [*map(str, paths), "-p", "src.grading.host.plugin", "-p", "no:cacheprovider", "-p", "no:terminal",
                   "-p", "no:stepwise", "--continue-on-collection-errors", "--import-mode=importlib", "--rootdir", str(ROOT),
                   "--submission", str(submission), "--worker-timeout", str(args.timeout)]
    exit_code = pytest.main(pytest_args, plugins=[plugin])
    if plugin.worker is not None:
        plugin.worker.stop()
        plugin.worker_stats = plugin.worker_stats or list(plugin.worker.stats)

    problems = list(plugin.problems)
    elsewhere = modules_from_elsewhere(ROOT)
    if elsewhere:  # e.g. a test file that puts another checkout first on sys.path and imports src anew
        problems.append(f"the grader of {ROOT} used code of another checkout: {', '.join(elsewhere[:5])}")
    interrupted_by_user = plugin.interrupted and not TERMINATED  # Ctrl-C: the student's own choice, no problem
    if plugin.interrupted and not interrupted_by_user:
        problems.append("grading was stopped (SIGTERM or Ctrl-C) before it finished: the tests that did not run "
                        "score 0")
    for nodeid, text in plugin.collection_errors:
        problems.append(f"a test file could not be loaded: {nodeid or '(collection)'}: "
                        + (text.strip().splitlines() or [""])[-1])
    if int(exit_code) in (3, 4) or (int(exit_code) == 2 and not plugin.collection_errors and not plugin.interrupted):
        problems.append(f"pytest stopped with exit status {int(exit_code)} ({exit_code!r})")
    not_run = "not graded: a test file could not be loaded (grader problem, not your code)" \
        if plugin.collection_errors else None
    if plugin.interrupted:
        not_run = "not graded: grading was stopped before this test ran (grader problem, not your code)"
    if interrupted_by_user:
        not_run = "not graded: interrupted (Ctrl-C) before this test ran"
    summary = report.summarize(manifest, plugin.results, submission=shown, selection=selection,
                               collected=plugin.collected, problems=problems, hidden_values_present=
                               plugin.hidden_values_present, not_run_reason=not_run)
    state["results"] = report.results_json(summary, time.monotonic() - started)
    if interrupted_by_user:  # no report: a total of the tests that happened to run would mislead
        print(f"\ninterrupted (Ctrl-C) after {len(plugin.results)} of {len(plugin.collected)} tests: nothing is "
              "scored; run the same command again to grade everything", flush=True)
        return 130
    print()
    print(report.format_report(summary, verbose=args.verbose), flush=True)
    return 1 if summary.grader_failed else 0


def emergency_results(state, error_text, seconds):
    """results.json when the grader failed: ``report.fallback_results`` (the standard library only), or None if
    even that cannot be imported (on Gradescope the autograder's own start script then writes one)."""
    try:
        from src.grading.host import report

        return report.fallback_results(state.get("manifest"), error_text, seconds, state.get("selection"))
    except BaseException:
        traceback.print_exc()
        return None


def write_stats(args, state, started):
    import resource

    plugin = state.get("plugin")
    self_usage, child_usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = list(getattr(plugin, "worker_stats", []) or [])
    stats = {"wall_s": round(time.monotonic() - started, 3),
             "grader_cpu_s": round(self_usage.ru_utime + self_usage.ru_stime, 3),
             "children_cpu_s": round(child_usage.ru_utime + child_usage.ru_stime, 3),
             "grader_peak_rss_kb": self_usage.ru_maxrss, "children_max_peak_rss_kb": child_usage.ru_maxrss,
             "workers": workers, "grader_heavy_modules": sorted(m for m in HEAVY_MODULES if m in sys.modules),
             "worker_heavy_modules": sorted({m for w in workers for m in w.get("modules", []) if m in HEAVY_MODULES}),
             "torch": str(sys.modules["torch"].__version__) if "torch" in sys.modules else None,
             "calls": list(getattr(getattr(plugin, "worker", None), "calls", []) or []),
             "entered": {test: sorted(names) for test, names in
                         (getattr(getattr(plugin, "worker", None), "entered", None) or {}).items()},
             "tests": [{"id": r.test_id, "score": r.score, "status": r.status, "seconds": round(r.seconds, 3)}
                       for r in getattr(plugin, "results", [])]}
    Path(args.stats).write_text(json.dumps(stats, indent=2) + "\n")


#: set by SIGTERM: grading was stopped from outside (a time limit), not interrupted by the user
TERMINATED = []


def _terminate(signum, frame):
    """SIGTERM (e.g. from ``timeout`` on Gradescope): stop like Ctrl-C, so that the workers are killed and
    results.json is still written."""
    TERMINATED.append(signum)
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def main(argv=None):
    started = time.monotonic()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import signal

    if hasattr(signal, "SIGTERM"):
        try:
            signal.signal(signal.SIGTERM, _terminate)
        except ValueError:  # not the main thread
            pass
    state = {}
    code = 1
    try:
        try:
            code = run(args, started, state)
        except UsageError as error:
            print(f"grader.py: {error}", file=sys.stderr)
            state["results"] = emergency_results(state, f"bad command line: {error}", time.monotonic() - started)
            code = 2
    except KeyboardInterrupt as error:
        if TERMINATED:
            print("\ngrader.py: stopped by SIGTERM before grading finished", file=sys.stderr, flush=True)
        else:
            print("\ngrader.py: interrupted (Ctrl-C): nothing is scored; run the same command again to grade "
                  "everything", file=sys.stderr, flush=True)
        state["results"] = emergency_results(state, f"interrupted: {error or 'Ctrl-C'}", time.monotonic() - started)
        code = 130
    except BaseException as error:  # the grader itself failed: say so, and still write results.json
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        print(f"\nGRADER PROBLEM (not your code): the grader failed:\n{text}", file=sys.stderr, flush=True)
        state["results"] = emergency_results(state, text, time.monotonic() - started)
        code = 130 if isinstance(error, KeyboardInterrupt) else 1
    finally:
        launcher = state.get("launcher")
        plugin = state.get("plugin")
        try:
            for worker in {id(w): w for w in (state.get("worker"), getattr(plugin, "worker", None)) if w}.values():
                worker.stop()
        except BaseException:
            code = code or 1
        try:
            if launcher is not None:
                launcher.cleanup()  # nothing of the worker's user is left running before results are written
        except BaseException:
            traceback.print_exc()
            code = code or 1
        data = args.results and (state.get("results") or emergency_results(state, "the grader stopped early",
                                                                          time.monotonic() - started))
        if data:
            from src.grading.host.report import write_results

            write_results(args.results, data)
        if args.stats:
            try:
                write_stats(args, state, started)
            except BaseException:
                traceback.print_exc()
        if state.get("upload_scratch"):  # the unpacked --submission zip, once no worker can read it any more
            shutil.rmtree(state["upload_scratch"], ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
