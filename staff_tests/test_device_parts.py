"""The device parts of the public tests: judged on the stand-in on every machine, CUDA only noted.

The judging (``src/grading/host/judging/device.py``) is tried on made-up probe results (fast); one grade of a
device mutant shows the part in results.json.  The catalogue itself (``staff_tests/mutants/device.json``) is
graded by ``test_mutants.py`` like every other mutant.

    python -m pytest staff_tests/test_device_parts.py -q      # about 20 s
"""
import json
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, grade_submission

from src import device_check
from src.grading.host.judging.device import expect_same_on_another_device
from src.grading.worker.probes import device as device_probes

SAMPLE = ("2c", "MADE.sample")


def _run(values, error=None, copies=None):
    return {"values": values, "error": error, "host_copies": copies}


def _out(standin, cuda=None):
    out = {"cpu": {"sample": torch.ones(7, 6)}, "standin": standin}
    if cuda is not None:
        out["cuda"] = cuda
    return out


def _judge(out):
    notes = {}
    expect_same_on_another_device(out, notes, question=SAMPLE[0], label=SAMPLE[1])
    return notes


def test_the_stand_ins_values_must_equal_the_cpus():
    notes = _judge(_out(_run({"sample": torch.ones(7, 6)}, copies={"waits": 1, "elements": 6})))
    assert notes == {"ran_on": ["cpu", "stand-in"]}
    with pytest.raises(AssertionError, match=r"^MADE.sample \[on another device .*\]: sample differs from the "
                                             r"CPU's: different values"):
        _judge(_out(_run({"sample": torch.zeros(7, 6)}, copies={"waits": 1, "elements": 6})))
    with pytest.raises(AssertionError, match="torch.zeros created its tensor on the CPU"):
        _judge(_out(_run({}, error="MADE.sample: torch.zeros created its tensor on the CPU (line 3 of made.py)")))


def test_a_sampler_that_copies_to_the_host_at_every_pixel_fails():
    waits, elements = device_check.sampling_limits(device_check.part_named(*SAMPLE))
    assert (waits, elements) == (14, 54)  # 2 per variable + 2; (n + 2) numbers per variable
    _judge(_out(_run({"sample": torch.ones(7, 6)}, copies={"waits": waits, "elements": elements})))
    with pytest.raises(AssertionError, match=r"sample copied to the CPU 42 times \(42 numbers\), more than the 14"):
        _judge(_out(_run({"sample": torch.ones(7, 6)}, copies={"waits": 42, "elements": 42})))


def test_a_cuda_run_is_noted_but_never_changes_the_points():
    fine = _run({"sample": torch.ones(7, 6)}, copies={"waits": 1, "elements": 6})
    refused = {"values": {}, "error": "MADE.sample: mixes devices, which CUDA refuses: ...", "sampling_ratio": None}
    notes = _judge(_out(fine, cuda=refused))  # passes: the stand-in carries the points
    assert notes["ran_on"] == ["cpu", "stand-in", "cuda"]
    assert notes["cuda"].startswith("MADE.sample: mixes devices")
    other_sample = {"values": {"sample": torch.zeros(7, 6)}, "error": None, "sampling_ratio": 1.23456}
    notes = _judge(_out(fine, cuda=other_sample))  # CUDA's random numbers are not the CPU's: samples not compared
    assert notes["cuda"] == "same values" and notes["cuda_sampling_ratio"] == 1.235


def test_the_sampling_time_ratio_runs_on_the_cpu_too():
    """The ratio that a GPU run puts in the notes (CUDA events there, the CPU clock of worker/timing.py here)."""
    mods = device_check.load_modules(ROOT / "solution")
    part = device_check.part_named(*SAMPLE)
    result = device_check.run_part(part, mods)
    ratio = device_probes.sampling_ratio(part, result.model, torch.device("cpu"), repeats=3)
    assert 0.3 < ratio < 20, ratio


def test_a_device_bug_costs_only_its_device_part_and_the_part_says_where_it_ran(tmp_path):
    mutant = next(m for m in json.loads((ROOT / "staff_tests" / "mutants" / "device.json").read_text())
                  if m["id"] == "dev-made-sample-canvas-cpu")
    folder = tmp_path / "submission"
    shutil.copytree(ROOT / "solution", folder, ignore=shutil.ignore_patterns("__pycache__"))
    target = folder / mutant["file"]
    target.write_text(target.read_text().replace(mutant["find"], mutant["replace"]))
    scores = grade_submission(folder, tmp_path / "results.json", "2c")
    assert scores["2c-1-hidden"] == (1.5, 1.5)
    test = next(t for t in json.loads((tmp_path / "results.json").read_text())["tests"] if t["number"] == "2c-0-basic")
    parts = {p["name"]: p for p in test["extra_data"]["parts"]}
    device_part = parts["MADE.sample on another device"]
    assert device_part["earned"] == 0 and device_part["ran_on"][:2] == ["cpu", "stand-in"]
    assert all(p["earned"] == p["points"] for name, p in parts.items() if name != "MADE.sample on another device")
    assert "MADE.sample [on another device (the stand-in for a GPU)]: torch.zeros created its tensor on the CPU" \
        in test["output"]
    assert device_part["points"] == 0.1 and test["score"] == pytest.approx(0.4)


LIMITS_WITH = """
import json, sys
from src.grading.worker import main
main.cuda_present = lambda: {cuda}
main.cap_gpu_memory = lambda mb: mb
print(json.dumps(main.apply_limits({{"memory_mb": 1024, "gpu_memory_mb": 4096, "fsize_mb": 512}})))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is set on Linux only")
@pytest.mark.parametrize("cuda", [False, True])
def test_the_worker_keeps_its_address_space_limit_unless_it_has_a_gpu(cuda):
    """Starting CUDA needs far more address space than RLIMIT_AS allows: on a GPU machine the resident-size
    watch of the grader and torch's GPU memory cap take its place; CPU machines keep every limit."""
    run = subprocess.run([sys.executable, "-c", LIMITS_WITH.format(cuda=cuda)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    applied = json.loads(run.stdout.splitlines()[-1])
    if cuda:
        assert applied["RLIMIT_AS"].startswith("not set: CUDA is present") and applied["gpu_memory_mb"] == 4096
    else:
        assert isinstance(applied["RLIMIT_AS"], int) and "gpu_memory_mb" not in applied
