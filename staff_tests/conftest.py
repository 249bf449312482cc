"""Shared helpers of the staff tests: the repository root, Gradescope's results schema, subprocesses."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# CI runs on a clean clone with shared/ beside it; PS1_RESULTS_SCHEMA points elsewhere if needed.
SCHEMA_CANDIDATES = [Path(os.environ["PS1_RESULTS_SCHEMA"])] if os.environ.get("PS1_RESULTS_SCHEMA") else []
SCHEMA_CANDIDATES.append(ROOT.parent / "shared" / "gradescope-results.schema.json")


def results_schema_path():
    for path in SCHEMA_CANDIDATES:
        if path.is_file():
            return path
    return None


def validate_results(results):
    """Fail the test unless ``results`` (a dict, or a path to a JSON file) is a valid Gradescope results file."""
    import jsonschema

    if not isinstance(results, dict):
        results = json.loads(Path(results).read_text())
    path = results_schema_path()
    if path is None:
        pytest.fail("Gradescope's results schema was not found (looked at "
                    + ", ".join(str(p) for p in SCHEMA_CANDIDATES) + "); set PS1_RESULTS_SCHEMA")
    schema = json.loads(path.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(results), key=lambda e: list(e.path))
    if errors:
        pytest.fail("results.json does not follow the schema:\n" + "\n".join(
            f"  at {'/'.join(map(str, e.path)) or '(top)'}: {e.message[:300]}" for e in errors[:20]))
    return results


def run(command, cwd=ROOT, timeout=900, env=None, check=True):
    """Run a command, returning the CompletedProcess; on ``check`` failure show its output."""
    merged = dict(os.environ)
    merged.update(env or {})
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=merged, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited with {result.returncode}\n"
                    f"--- stdout (end)\n{result.stdout[-4000:]}\n--- stderr (end)\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="session")
def manifest():
    return json.loads((ROOT / "tests" / "points.json").read_text())


def grade_submission(folder, results, *selection, timeout=600):
    """Grade the submission in ``folder`` with ``grader.py [selection...]``, writing ``results``;
    return {test id: (score, max_score)}."""
    from tools.mutation_check import grade_folder

    graded = grade_folder(folder, results, *selection, timeout=timeout)
    return {test_id: (test["score"], test["max_score"]) for test_id, test in graded.items()}
