"""The course library with device-unsafe student code (issue 16, point 4), on the stand-in device.

There is no GPU here: ``PSET_STANDIN_DEVICE=1`` makes ``--device cuda`` mean the stand-in device of
``src/standin_device.py`` (CUDA's rules of device mixing, the CPU's values).  A copy of the library
gets a ``submission/`` made of the reference with two device mutants of
``staff_tests/device_mutants/``: MADE.sample's canvas without ``device=`` and evaluate_nll's batches
not moved.  Then ``train``, ``evaluate`` and ``sample --device cuda`` stop with one line naming the
student's function (exit 2, no traceback), and ``check made`` names MADE.sample in one line.

    python -m pytest staff_tests/test_device_cli.py -q      # 2.5 minutes on 2 busy cores (30 s of CPU)
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

MUTANTS = ("dev-made-sample-canvas-cpu", "dev-evaluate-batches-not-moved")
ENV = {**os.environ, "PSET_STANDIN_DEVICE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """A copy of the library whose submission/ is the reference with MUTANTS applied."""
    folder = tmp_path_factory.mktemp("device_cli")
    shutil.copytree(ROOT / "src", folder / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "data").symlink_to(ROOT / "data")
    shutil.copytree(ROOT / "solution", folder / "submission", ignore=shutil.ignore_patterns("__pycache__"))
    catalogue = {m["id"]: m for m in json.loads((ROOT / "staff_tests" / "mutants" / "device.json")
                                                .read_text())}
    for mutant in map(catalogue.get, MUTANTS):
        path = folder / "submission" / mutant["file"]
        path.write_text(path.read_text().replace(mutant["find"], mutant["replace"]))
    return folder


def _cli(folder, *args):
    return subprocess.run([sys.executable, "-m", "src", *args], cwd=folder, env=ENV, capture_output=True,
                          text=True, timeout=600)


def _one_line_error(result, command, function):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"python -m src {command}: error: {function}: "), lines[0]
    return lines[0]


def test_train_evaluate_sample_stop_with_one_line(copy):
    run = copy / "runs" / "made"
    result = _cli(copy, "train", "made", "--device", "cuda", "--max-steps", "2", "--epochs", "1", "--train-limit",
                  "100", "--valid-limit", "100", "--test-limit", "100", "--hidden", "20", "--no-progress",
                  "--out", str(run))
    line = _one_line_error(result, "train", "evaluate_nll")
    assert "met the model's tensors on the device" in line, line
    assert (run / "best.pt").is_file()  # the training itself ran on the stand-in (library code moves its batches)

    result = _cli(copy, "evaluate", "made", "--checkpoint", str(run / "best.pt"), "--device", "cuda", "--limit",
                  "100", "--no-progress")
    _one_line_error(result, "evaluate", "evaluate_nll")

    result = _cli(copy, "sample", "made", "--checkpoint", str(run / "best.pt"), "--device", "cuda", "--n", "2",
                  "--no-progress")
    line = _one_line_error(result, "sample", "MADE.sample")
    assert "torch.zeros created its tensor on the CPU" in line and "pass device=" in line, line


def test_check_names_the_device_unsafe_function(copy):
    result = _cli(copy, "check", "made", "--out", str(copy / "runs" / "check"))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "autoregressive: yes", result.stdout  # the masks are right: only the device is wrong
    unsafe = [line for line in lines if line.startswith("on another device: NO")]
    assert len(unsafe) == 1 and unsafe[0].startswith("on another device: NO (2c): MADE.sample: torch.zeros created "
                                                     "its tensor on the CPU"), result.stdout
