"""Gradescope helper of run_autograder: find the student's files, and make sure results.json exists.

    python3 collect_submission.py collect UPLOAD_DIR TARGET_DIR --notes NOTES
    python3 collect_submission.py finish RESULTS_JSON --notes NOTES --log LOG

``collect`` looks for ``autoregressive.py``, ``made.py`` and ``pixelcnn.py`` in
what the student uploaded (``/autograder/submission``) and copies them into
TARGET_DIR (emptied first); NOTES receives one line per file saying where it
came from, or that it is missing.  The finding is the course library's
``src/grading/host/submission_upload.py`` (loose files, folders, zips; which copy
wins), the same code that ``python grader.py --submission upload.zip`` runs on a
student's laptop, so that both read an upload alike.

``finish`` makes sure RESULTS_JSON is a valid Gradescope results file: if the
grader wrote one, the notes are put before its ``output``; if it did not (it
crashed, or was killed), a minimal one is written: score 0 and an ``output``
that says the autograder failed (with the end of LOG for the staff).

Only the Python standard library is used (the library module too), so this
works even when the grading environment is broken.
"""
import argparse
import json
import os
import sys
from pathlib import Path

# src/ lies beside this file in the autograder bundle, one folder up in the staff repository (release/)
_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE if (_HERE / "src" / "grading").is_dir() else _HERE.parent))
from src.grading.host import submission_upload  # noqa: E402


def collect(upload_dir, target_dir, notes_path=None):
    """Copy the files to grade into ``target_dir``, print the notes; ``{required name: Candidate}``."""
    chosen, notes = submission_upload.collect(upload_dir, target_dir, notes_path)
    print("\n".join(notes))
    return chosen


def _valid(results):
    return (isinstance(results, dict) and isinstance(results.get("tests"), list)
            and all(isinstance(t, dict) and "name" in t and "score" in t and "max_score" in t
                    for t in results["tests"]))


def finish(results_path, notes_path=None, log_path=None, manifest_path=None):
    """Make sure ``results_path`` holds a valid results file; return True if the grader wrote it."""
    results_path = Path(results_path)
    notes = Path(notes_path).read_text().strip() if notes_path and Path(notes_path).exists() else ""
    try:
        results = json.loads(results_path.read_text())
    except (OSError, ValueError):
        results = None
    if _valid(results):
        if notes:
            output = results.get("output", "")
            results["output"] = f"Files graded:\n{notes}\n\n{output}".rstrip() + "\n"
        _write(results_path, results)
        return True
    log = ""
    if log_path and Path(log_path).exists():
        log = Path(log_path).read_text(errors="replace")[-3000:]
    output = ("The autograder failed before it could write your results (this is not a grade of your work): "
              "please tell the course staff.  Score: 0 for now.\n")
    if notes:
        output += f"\nFiles found:\n{notes}\n"
    _write(results_path, {"score": 0, "output": output, "tests": _zero_tests(manifest_path),
                          "extra_data": {"autograder_error": True, "log_tail": log}})
    return False


def _zero_tests(manifest_path):
    """Every coding test of the manifest with score 0 (so that students see what was not graded)."""
    try:
        manifest = json.loads(Path(manifest_path).read_text())
        return [{"name": test_id, "number": test_id, "score": 0.0, "max_score": float(test["points"]),
                 "status": "failed", "output": "not graded: the autograder failed (not your code)"}
                for test_id, test in manifest["tests"].items() if test.get("type") == "coding"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def _write(path, results):
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temporary, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("collect")
    p.add_argument("upload_dir")
    p.add_argument("target_dir")
    p.add_argument("--notes")
    p = commands.add_parser("finish")
    p.add_argument("results")
    p.add_argument("--notes")
    p.add_argument("--log")
    p.add_argument("--manifest", help="tests/points.json, to list the ungraded tests in a fallback results file")
    args = parser.parse_args(argv)
    if args.command == "collect":
        collect(args.upload_dir, args.target_dir, args.notes)
        return 0
    return 0 if finish(args.results, args.notes, args.log, args.manifest) else 1


if __name__ == "__main__":
    sys.exit(main())
