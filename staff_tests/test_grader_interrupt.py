"""Ctrl-C in ``grader.py``: the student stopped it, so it says "interrupted", exits 130, scores nothing and
blames nobody (no "GRADER PROBLEM", no partial totals such as "hidden 0 / 20").  SIGTERM (a time limit from
outside, as on Gradescope) keeps its own message: staff_tests/test_grader_hostile.py.  About 15 s."""
import json
import signal
import subprocess
import sys

from conftest import ROOT, validate_results

SELECT = ["1a", "1b", "2a", "3a"]


def test_ctrl_c_says_interrupted_and_scores_nothing(tmp_path):
    results = tmp_path / "results.json"
    command = [sys.executable, str(ROOT / "grader.py"), *SELECT, "--tests",
               str(ROOT / "staff_tests" / "grader_suite" / "suite_basic.py"), "--submission", str(ROOT / "solution"),
               "--results", str(results)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal has it
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("[ 1/"):  # grading, with its worker running
            process.send_signal(signal.SIGINT)
            break
    lines.append(process.communicate(timeout=120)[0])
    output = "".join(lines)
    assert process.returncode == 130, output
    assert "interrupted (Ctrl-C)" in output and "run the same command again" in output, output
    assert "GRADER PROBLEM" not in output and "grader problem" not in output and "hidden" not in output, output
    data = json.loads(results.read_text())
    validate_results(data)
    assert any("interrupted (Ctrl-C)" in test.get("output", "") for test in data["tests"]), data
