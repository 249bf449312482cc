#!/usr/bin/env python3
"""Regrade a whole Gradescope export exactly as Gradescope's autograder would (staff only).

    python tools/regrade.py EXPORT --out DIR [--jobs N] [--force] [--only 1a 2a ...]

EXPORT is what Gradescope's "Export Submissions" gives: the zip, or its unpacked folder, with one folder
``submission_<id>/`` per submission (the files as uploaded: loose, in a folder, or a zip) and
``submission_metadata.yml`` (submitters, creation time, Gradescope's score).  Each submission goes through
``release/collect_submission.py`` (``collect``, then ``finish``) and ``grader.py`` of this checkout, hidden
tests included, as ``release/run_autograder`` does on Gradescope.  Written to DIR:

    results/<submission_id>.json   each submission's results.json (as Gradescope stores it)
    scores.csv                     one row per submission: submitters, created_at, score, one column per question,
                                   and the score Gradescope had (from the metadata), to compare
    tests.csv                      item analysis: per test, how many lost points, mean score, commonest failure
    histogram.png                  the distribution of the scores, the maximum marked
    work/<submission_id>/          the collected files, the notes and grader.log of the last grade

A submission whose results file exists is not graded again (``--force`` regrades everything), so an
interrupted regrade goes on where it stopped.  Problems with the export are reported one line each and the
rest is graded.  ``--only`` passes question or test ids to grader.py (a quick check of one question).
"""
import argparse
import collections
import concurrent.futures
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "release"))
import collect_submission  # noqa: E402  (the collection that Gradescope runs, reused as it is)

sys.path.insert(0, str(ROOT))
from src.grading.host.launchers import USER_POOL_SIZE  # noqa: E402
from src.grading.host.report import _first_line as first_line  # noqa: E402  (as the printed report shortens messages)

METADATA = "submission_metadata.yml"
MAX_UPLOAD_ZIP_BYTES = 100 * 2**20
GRADER_TIMEOUT_S = 1800  # run_autograder's PS1_GRADER_TIMEOUT


class ExportError(Exception):
    """The export as a whole cannot be read (exit status 2)."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", type=Path, help="Gradescope's export: the zip or its unpacked folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the results, CSVs and histogram")
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help=f"submissions graded at once (default {default_jobs()}: half the cores, as each grade "
                             "is a grader process plus a single-threaded worker; at most one per sandbox user)")
    parser.add_argument("--force", action="store_true", help="grade again the submissions already graded")
    parser.add_argument("--only", nargs="+", default=[], metavar="ID", help="question or test ids for grader.py")
    return parser.parse_args(argv)


def default_jobs():
    """Half the cores, at most one grader per sandbox user of the pool (as root each grader takes one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores // 2, USER_POOL_SIZE))


# -- reading the export ---------------------------------------------------------------------------------------------
def open_export(export, out):
    """The folder that holds the metadata: ``export`` itself, or the zip unpacked into ``out/export``."""
    if zipfile.is_zipfile(export):
        unpacked = out / "export"
        if not (unpacked / ".complete").exists():
            shutil.rmtree(unpacked, ignore_errors=True)
            with zipfile.ZipFile(export) as archive:
                archive.extractall(unpacked)  # drops absolute paths and ".." from member names
            (unpacked / ".complete").touch()
        export = unpacked
    elif not export.is_dir():
        raise ExportError(f"{export} is neither a zip file nor a folder (expected Gradescope's export)")
    found = sorted(export.glob(METADATA)) or sorted(export.glob(f"*/{METADATA}"))
    if not found:
        raise ExportError(f"no {METADATA} in {export} (nor in a folder inside it): is this a Gradescope export?")
    return found[0].parent


def _plain(value):
    """Ruby-style YAML keys (``:name:``) as plain strings (``name``)."""
    if isinstance(value, dict):
        return {str(key).lstrip(":"): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def read_submissions(folder, say):
    """``{submission_id: (upload folder or None, metadata)}`` for the graded submissions; problems go to ``say``."""
    import yaml

    try:
        metadata = _plain(yaml.safe_load((folder / METADATA).read_text()) or {})
    except (OSError, yaml.YAMLError) as error:
        raise ExportError(f"{folder / METADATA} cannot be read: {error}") from None
    if not isinstance(metadata, dict):
        raise ExportError(f"{folder / METADATA} is not a mapping of submission folders")
    submissions = {}
    for name, entry in sorted(metadata.items()):
        upload = folder / name
        if not upload.is_dir():
            say(f"{name}: named in {METADATA} but there is no such folder: not graded")
            continue
        submissions[name.removeprefix("submission_")] = (upload, entry if isinstance(entry, dict) else {})
    for upload in sorted(folder.iterdir()):
        if upload.is_dir() and upload.name not in metadata and upload.name != "__MACOSX":
            say(f"{upload.name}: a folder that {METADATA} does not name: not graded")
    for submission_id, (upload, _entry) in submissions.items():
        for archive in sorted(upload.rglob("*.zip")):
            problem = _zip_problem(archive)
            if problem:
                say(f"submission_{submission_id}: {archive.relative_to(upload)} {problem} (graded as Gradescope "
                    "would: collect_submission.py skips it)")
    return submissions


def _zip_problem(archive):
    if not zipfile.is_zipfile(archive):
        return "is not a zip archive"
    try:
        with zipfile.ZipFile(archive) as opened:
            size = sum(member.file_size for member in opened.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        return f"cannot be read ({error})"
    return f"unpacks to {size / 2**20:.0f} MB (more than 100 MB)" if size > MAX_UPLOAD_ZIP_BYTES else ""


# -- grading ---------------------------------------------------------------------------------------------------------
class Grading:
    """Grades submissions the way run_autograder does; ``stop()`` ends the graders that are running."""

    def __init__(self, out, only):
        self.out, self.only = out, only
        self.stopping = threading.Event()
        self._running = set()
        self._lock = threading.Lock()

    def results_path(self, submission_id):
        return self.out / "results" / f"{submission_id}.json"

    def grade(self, submission_id, upload):
        """Grade one submission; returns an error line, or "" once its results file is in place."""
        work = self.out / "work" / submission_id
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        notes, log, results = work / "notes.txt", work / "grader.log", work / "results.json"
        with open(log, "w") as log_file:
            self._run([sys.executable, str(ROOT / "release" / "collect_submission.py"), "collect", str(upload),
                       str(work / "submission"), "--notes", str(notes)], log_file)
            status = self._run([sys.executable, str(ROOT / "grader.py"), "--submission", str(work / "submission"),
                                "--results", str(results), *self.only], log_file, timeout=GRADER_TIMEOUT_S)
        if self.stopping.is_set():
            return "stopped before it finished"
        collect_submission.finish(results, notes, log, ROOT / "tests" / "points.json")
        if status != 0:
            return f"grader.py exited with status {status} (see {log}): graded again next time"
        final = self.results_path(submission_id)
        final.parent.mkdir(exist_ok=True)
        temporary = final.with_name(f".{final.name}.tmp")
        shutil.copyfile(results, temporary)
        os.replace(temporary, final)  # a results file is there whole, or not at all
        return ""

    def _run(self, command, log_file, timeout=None):
        with self._lock:
            if self.stopping.is_set():
                return None
            process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT,
                                       start_new_session=True)  # Ctrl-C reaches the graders only through stop()
            self._running.add(process)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()  # as run_autograder's timeout does; finish() then writes score 0 and says so
            return process.wait()
        finally:
            with self._lock:
                self._running.discard(process)

    def stop(self):
        """SIGTERM to every grader running: each ends its worker and restores what it changed."""
        with self._lock:
            self.stopping.set()
            for process in self._running:
                process.terminate()


def grade_all(submissions, out, jobs, force, only, say):
    from tqdm import tqdm

    grading = Grading(out, only)
    todo = [sid for sid in submissions if force or not grading.results_path(sid).exists()]
    if len(todo) < len(submissions):
        say(f"{len(submissions) - len(todo)} of {len(submissions)} submissions already graded (--force grades "
            "them again)")
    failed = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {pool.submit(grading.grade, sid, submissions[sid][0]): sid for sid in todo}
        with tqdm(total=len(todo), unit="submission", desc="grading", dynamic_ncols=True) as bar:
            for future in concurrent.futures.as_completed(futures):
                error = future.result()
                if error:
                    failed[futures[future]] = error
                    say(f"submission_{futures[future]}: {error}")
                bar.update()
    except BaseException:
        grading.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return failed


# -- the reports -----------------------------------------------------------------------------------------------------
def load_results(submissions, out):
    results = {}
    for submission_id in submissions:
        path = out / "results" / f"{submission_id}.json"
        if path.exists():
            results[submission_id] = json.loads(path.read_text())
    return results


def write_scores(path, submissions, results, manifest):
    questions = [q for q, info in manifest["questions"].items() if info["type"] == "coding"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission_id", "names", "sids", "emails", "created_at", "score", *questions,
                         "gradescope_score"])
        for submission_id, (_upload, meta) in submissions.items():
            people = [p for p in meta.get("submitters") or [] if isinstance(p, dict)]
            data = results.get(submission_id)
            by_question = collections.defaultdict(float)
            for test in (data or {}).get("tests", []):
                by_question[str(test.get("number", "")).split("-")[0]] += float(test.get("score") or 0)
            graded = {str(t.get("number", "")).split("-")[0] for t in (data or {}).get("tests", [])}
            writer.writerow([submission_id, *("; ".join(str(p.get(key, "")) for p in people)
                                              for key in ("name", "sid", "email")),
                             meta.get("created_at", ""), "" if data is None else f"{float(data['score']):g}",
                             *(f"{by_question[q]:g}" if q in graded else "" for q in questions),
                             meta.get("score", "")])


def write_item_analysis(path, results, manifest):
    order = list(manifest["tests"])
    rows = collections.defaultdict(list)
    for data in results.values():
        for test in data.get("tests", []):
            rows[str(test.get("number"))].append(test)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["test", "question", "max_score", "submissions", "lost_points", "mean_score",
                         "most_frequent_failure", "times"])
        for test_id in sorted(rows, key=lambda t: order.index(t) if t in order else len(order)):
            tests = rows[test_id]
            maximum = float(tests[0].get("max_score") or 0)
            lost = [t for t in tests if float(t.get("score") or 0) < maximum]
            messages = collections.Counter(first_line(str(t.get("output", ""))) or "(no message)" for t in lost)
            message, times = messages.most_common(1)[0] if messages else ("", 0)
            mean = sum(float(t.get("score") or 0) for t in tests) / len(tests)
            writer.writerow([test_id, test_id.split("-")[0], f"{maximum:g}", len(tests), len(lost), f"{mean:.3f}",
                             message, times or ""])


def write_histogram(path, results, manifest):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    graded = {str(t.get("number")) for data in results.values() for t in data.get("tests", [])}
    maximum = sum(t["points"] for test_id, t in manifest["tests"].items()
                  if test_id in graded and t["type"] == "coding" and not t["extra_credit"])
    scores = [float(data["score"]) for data in results.values()]
    figure, axes = plt.subplots(figsize=(7, 4))
    top = max([maximum, *scores, 1.0])
    axes.hist(scores, bins=min(40, max(10, int(top * 2))), range=(0, top), color="tab:blue", edgecolor="white")
    axes.axvline(maximum, color="tab:red", linestyle="--", label=f"maximum {maximum:g} (extra credit above)")
    axes.set_xlabel("autograded score")
    axes.set_ylabel("submissions")
    axes.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes.set_title(f"{len(scores)} submissions; mean {sum(scores) / max(len(scores), 1):.2f}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# -- main ------------------------------------------------------------------------------------------------------------
def _terminate(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from tqdm import tqdm

    say = tqdm.write
    signal.signal(signal.SIGTERM, _terminate)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        submissions = read_submissions(open_export(args.export, args.out), say)
    except (ExportError, zipfile.BadZipFile, OSError) as error:
        print(f"regrade.py: {error}", file=sys.stderr)
        return 2
    try:
        failed = grade_all(submissions, args.out, args.jobs, args.force, args.only, say)
    except KeyboardInterrupt:
        print("regrade.py: stopped; run the same command again to grade the rest", file=sys.stderr)
        return 130
    manifest = json.loads((ROOT / "tests" / "points.json").read_text())
    results = load_results(submissions, args.out)
    write_scores(args.out / "scores.csv", submissions, results, manifest)
    write_item_analysis(args.out / "tests.csv", results, manifest)
    write_histogram(args.out / "histogram.png", results, manifest)
    say(f"{len(results)} of {len(submissions)} submissions graded: {args.out / 'scores.csv'}, "
        f"{args.out / 'tests.csv'}, {args.out / 'histogram.png'}, {args.out / 'results'}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
