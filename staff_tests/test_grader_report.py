"""Staff tests of the grader's report and results.json builders (fast: no worker, no subprocess)."""
import json
import sys

import pytest
from conftest import ROOT, validate_results

from src.grading.host import report
from src.grading.host.plugin import TestResult, _strip_rewritten_assert

MANIFEST = json.loads((ROOT / "tests" / "points.json").read_text())


CODING = [test_id for test_id, test in MANIFEST["tests"].items() if test["type"] == "coding"]


def _result(test_id, score, status, message="", kind=""):
    points = MANIFEST["tests"][test_id]["points"]
    return TestResult(test_id=test_id, question=test_id.split("-")[0], max_score=points, score=score, status=status,
                      hidden=test_id.endswith("-hidden"), visibility="visible", message=message, kind=kind)


def test_every_outcome_gives_schema_valid_results():
    results = [_result("1a-0-basic", 0.5, "passed"), _result("1a-1-hidden", None, "unknown"),
               _result("2a-0-basic", 0.0, "failed", "made.MaskedLinear.forward: not implemented yet"),
               _result("2b-1-hidden", 0.4, "failed", "2 of 3 parts failed:\n[a] ...\n[b] ..."),
               _result("3e-0-basic", 0.5, "passed")]
    parts = [{"name": "a", "points": 0.6, "earned": 0.0}, {"name": "b", "points": 0.4, "earned": 0.4}]
    results[3].parts = parts
    summary = report.summarize(MANIFEST, results, submission="submission", collected={"1b-0-basic": "x"},
                               hidden_values_present=False)
    data = report.results_json(summary, 12.5)
    validate_results(data)
    tests = {t["number"]: t for t in data["tests"]}
    assert list(tests) == CODING  # one entry per coding test, in manifest order; written ones never scored
    assert data["score"] == 0.5 + 0.4 + 0.5  # extra credit included, unknown and not-run count 0
    assert tests["1a-1-hidden"]["score"] == 0 and "not in this copy" in tests["1a-1-hidden"]["output"]
    assert tests["1a-1-hidden"]["visibility"] == "after_published" and tests["1a-0-basic"]["visibility"] == "visible"
    assert tests["1b-0-basic"]["score"] == 0 and "did not run" in tests["1b-0-basic"]["output"]
    assert tests["1c-0-basic"]["output"] == "no test implements this id in this copy of the grader"
    assert tests["2a-0-basic"]["name"] == "2a-0-basic " + MANIFEST["questions"]["2a"]["title"]
    assert tests["2b-1-hidden"]["extra_data"] == {"parts": parts} and "extra_data" not in tests["2a-0-basic"]
    text = report.format_report(summary)
    assert "0.5+? / 2" in text and "graded by hand" in text and "Extra credit:        0.5 / 2" in text
    assert "2 of 3 parts failed: [a] ..." in text  # the first line, with the line after a trailing colon
    assert summary.grader_failed  # 1b-0-basic was collected but did not run


def _question_line(text, question):
    return next(line for line in text.splitlines() if line.startswith(f"{question} "))


def test_summary_shows_points_of_public_and_hidden_tests():
    """Points, not test counts; a hidden test without its expected values shows ?/points and says what it means."""
    results = [_result("1a-0-basic", 0.5, "passed"), _result("1a-1-hidden", None, "unknown"),
               _result("2a-0-basic", 0.3, "failed", "1 of 4 parts failed:\n- [a] wrong"),
               _result("2a-1-hidden", 0.0, "failed", "made.MaskedLinear.__init__: division by zero")]
    summary = report.summarize(MANIFEST, results, submission="submission", selection=["1a", "2a"],
                               hidden_values_present=False)
    text = report.format_report(summary)
    points = {tid: MANIFEST["tests"][tid]["points"] for tid in ("1a-1-hidden", "2a-0-basic", "2a-1-hidden")}
    assert _question_line(text, "1a").endswith(f"public 0.5/0.5, hidden ?/{points['1a-1-hidden']:g}"), text
    assert _question_line(text, "2a").endswith(
        f"public 0.3/{points['2a-0-basic']:g}, hidden 0/{points['2a-1-hidden']:g}"), text
    assert "? 1a-1-hidden: ran without crashing; scored on Gradescope" in text
    assert "of which hidden:   0 + ? / " in text and "(?: ran without crashing; scored on Gradescope)" in text
    assert "expected start" not in text


def test_failure_messages_are_shown_whole_and_wrapped():
    tail = "the mask of layer 2 lets output 7 see input 7 (it must only see inputs 1..6)"
    message = "made.MADE.forward [D=9, hidden=[32, 32], natural order]: " + "padding words " * 12 + tail
    summary = report.summarize(MANIFEST, [_result("2b-0-basic", 0.0, "failed", message)], submission="s",
                               selection=["2b-0-basic"])
    text = report.format_report(summary)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "2b-0-basic:" in line)
    shown = " ".join(line.strip() for line in lines[start:start + 4])
    assert tail in shown and "..." not in shown, text
    assert all(len(line) <= report.WIDTH for line in lines[start:start + 4]), text
    detailed = report.format_report(report.summarize(
        MANIFEST, [_result("2b-0-basic", 0.0, "failed", "2 of 2 parts failed:\n- [a] x\n- [b] " + message)],
        submission="s", selection=["2b-0-basic"]), verbose=True)
    assert tail in " ".join(line.strip() for line in detailed.splitlines()), detailed


def test_the_expected_start_is_said_once():
    stub = [_result(tid, 0.0, "failed", f"{tid}: autoregressive.f: not implemented yet", "not_implemented")
            for tid in CODING]
    text = report.format_report(report.summarize(MANIFEST, stub, submission="submission"))
    assert text.count("expected start") == 1 and "python grader.py -v" not in text, text
    started = [_result(CODING[0], 0.5, "passed")] + stub[1:]
    assert "expected start" not in report.format_report(report.summarize(MANIFEST, started, submission="s"))
    crashed = stub[:-1] + [_result(CODING[-1], 0.0, "failed", "pixelcnn.f: ZeroDivisionError: division by zero",
                                   "error")]
    assert "expected start" not in report.format_report(report.summarize(MANIFEST, crashed, submission="s"))


@pytest.mark.parametrize("manifest", [MANIFEST, None])
def test_fallback_results_are_schema_valid(manifest):
    data = report.fallback_results(manifest, "Traceback ...\nRuntimeError: boom", 3.0, selection=None)
    validate_results(data)
    assert data["score"] == 0 and "autograder itself failed" in data["output"]
    assert len(data["tests"]) == (len(CODING) if manifest else 0)
    selected = report.fallback_results(manifest, "boom", 1.0, selection=["2a"])
    validate_results(selected)


def test_scores_are_clamped_and_written_atomically(tmp_path):
    summary = report.summarize(MANIFEST, [_result("1a-0-basic", 7.0, "passed")], submission="s",
                               selection=["1a-0-basic"])
    data = report.results_json(summary, 1.0)
    assert data["score"] == 0.5 and len(data["tests"]) == 1
    target = tmp_path / "results" / "results.json"
    report.write_results(target, data)
    assert json.loads(target.read_text()) == data and list(target.parent.iterdir()) == [target]


def test_hidden_messages_lose_what_assertion_rewriting_adds():
    text = "bad value in case 3\nassert tensor(1.2345) == tensor(9.8765)\n +  where tensor(9.8765) = f()"
    assert _strip_rewritten_assert(text) == "bad value in case 3"
    assert _strip_rewritten_assert("assert 0.123 == 0.456") == ""


def test_grading_path_is_light():
    """Neither the grader's side nor the worker's imports torchvision or matplotlib (each process < 384 MB):
    every grader module, every probe module, every test file and the reference solution, in a fresh process."""
    import subprocess

    script = r'''
import glob, importlib, importlib.util, sys
sys.path.insert(0, ".")
for name in ("grader", "src.grading.host.worker_client", "src.grading.host.plugin", "src.grading.host.report",
             "src.grading.worker.main", "src.grading.host.launchers", "src.grading.worker.probes.selftest_probes"):
    importlib.import_module(name)
for path in sorted(glob.glob("src/grading/worker/probes/q*.py")):
    importlib.import_module("src.grading.worker.probes." + path.split("/")[-1][:-3])
for index, path in enumerate(sorted(glob.glob("tests/**/test_*.py", recursive=True) + glob.glob("hidden_tests/test_*.py"))):
    spec = importlib.util.spec_from_file_location(f"graded_test_{index}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
sys.path.insert(0, "solution")
for name in ("autoregressive", "made", "pixelcnn"):
    importlib.import_module(name)
print(sorted({m.split(".")[0] for m in sys.modules} & {"torchvision", "matplotlib", "PIL", "pandas", "scipy"}))
'''
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
