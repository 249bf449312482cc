"""Judging the device parts (host side): the student's code on another device gives the CPU's values.

The probes (``worker/probes/device.py``) run a part of ``src/device_check.py`` on the CPU, on the stand-in
device (every machine) and on CUDA (where the worker has a GPU).  The stand-in's run carries the points
on every machine: CUDA's rules of device mixing with the CPU's own values, so the values must be equal
and a sampler's copies to the host are counted (work, not seconds).  A CUDA run, where there is one, is
judged too (values within float tolerance, samples not compared: CUDA's random numbers are not the
CPU's) and goes into the part's notes in results.json with its time ratio; it never changes the points,
so that a grade is the same with or without a GPU.
"""
from .... import device_check, standin_device
from .checks import fail

STANDIN = "on another device (the stand-in for a GPU)"


def _function(label, sampling=False):
    """The function a part's message names: the label's first ("MADE.forward, log_prob" -> "MADE.forward"), or
    its sampler ("FVSBN.log_prob, sample" -> "FVSBN.sample")."""
    first = label.split(",")[0].strip()
    return f"{first.rsplit('.', 1)[0]}.sample" if sampling and "." in first else first


def _problem(part, expected, run, *, exact, skip=()):
    """One line if ``run`` (a probe's ``{"values", "error", "host_copies"}``) is refused or differs from the
    CPU's ``expected`` values, else None."""
    if run["error"]:
        return run["error"]
    for key, value in expected.items():
        if key in skip:
            continue
        if key not in run["values"]:
            return f"gave no {key}"
        problem = device_check.differs(value, run["values"][key], exact)
        if problem:
            return f"{key} differs from the CPU's: {problem}"
    return None


def expect_same_on_another_device(out, notes, *, question, label):
    """Fail unless the stand-in run of part ``label`` of ``question`` gives the CPU's values and, for a
    sampler, copies to the host within :func:`src.device_check.sampling_limits`.

    ``out``: the device probe's result.  ``notes``: the dict of the part (``SubCases.case``): gets
    ``ran_on`` and, with a GPU, ``cuda`` (``"same values"`` or the problem) and ``cuda_sampling_ratio``.
    """
    part = device_check.part_named(question, label)
    ran_on = ["cpu", "stand-in"]  # the stand-in device of src/standin_device.py
    if "cuda" in out:
        ran_on.append("cuda")
        cuda = out["cuda"]
        notes["cuda"] = _problem(part, out["cpu"], cuda, exact=False, skip={"sample"}) or "same values"
        if cuda.get("sampling_ratio") is not None:
            notes["cuda_sampling_ratio"] = round(cuda["sampling_ratio"], 3)
    notes["ran_on"] = ran_on
    standin = out["standin"]
    if standin["error"]:  # one line that starts with the student's function: "MADE.sample: torch.zeros ..."
        what, _, problem = standin["error"].partition(": ")
        if not problem or " " in what:  # not "Function.name: ...": name the part's function instead
            what, problem = _function(label), standin["error"]
        fail(what, STANDIN, problem)
    problem = _problem(part, out["cpu"], standin, exact=True)
    if problem:
        fail(_function(label), STANDIN, problem)
    copies = standin["host_copies"]
    problem = copies and device_check.sampling_problem(part, standin_device.HostCopies(**copies))
    if problem:
        fail(_function(label, sampling=True), STANDIN, problem.removeprefix(f"{label}: "))
