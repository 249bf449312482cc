"""Probes for the device parts of every question (worker side): the student's code on another device.

Each probe runs one part of ``src/device_check.py`` (a small model of one function, built on the CPU with
fixed seeds) three ways: on the CPU, where the student's errors are reported as in any other probe; on
the stand-in device of ``src/standin_device.py`` (CUDA's rules of device mixing, the CPU's values), on
every machine; and on CUDA where the worker has a GPU.  It returns what each run gave; the tests judge
(``host/judging/device.py``).  2b and 2c run with the stand-ins for 2a of ``q2.py``, 3b, 3c and 3e with
those for 3a of ``q3.py``, so that a device bug costs points where it lives only.
"""
import contextlib
import types

import torch

from .... import device_check, standin_device
from ..timing import best_times
from . import q2, q3
from .registry import probe


def _run_on_devices(mods, question, label, isolation=contextlib.nullcontext, prepare=None, dtype=None):
    """``{"cpu": values, "standin": run, "cuda": run}`` (a run: ``{"values", "error", "host_copies"}``; "cuda"
    only where CUDA is available).  ``dtype="float64"``: the CPU run only, with the model in float64."""
    part = device_check.part_named(question, label)
    with isolation():
        cpu = device_check.run_part(part, mods, "cpu", getattr(torch, dtype or "float32"), prepare=prepare,
                                    catch=False)  # the student's errors are reported as in any probe
        if dtype is not None:
            return {"cpu": cpu.values}
        with standin_device.active() as standin:
            on_standin = device_check.run_part(part, mods, standin, prepare=prepare)
        out = {"cpu": cpu.values, "standin": _plain(on_standin)}
        if torch.cuda.is_available():
            on_cuda = device_check.run_part(part, mods, "cuda", prepare=prepare)
            out["cuda"] = _plain(on_cuda)
            if part.sampling and on_cuda.error is None and on_cuda.model is not None:
                out["cuda"]["sampling_ratio"] = sampling_ratio(part, on_cuda.model, torch.device("cuda"))
    return out


def _plain(result):
    copies = result.host_copies
    return {"values": result.values, "error": result.error,
            "host_copies": None if copies is None else {"waits": copies.waits, "elements": copies.elements}}


def sampling_ratio(part, model, device, repeats=5):
    """Time of ``model.sample`` over the time of as many plain forward passes of ``model`` on a canvas of
    the sample's shape (the same device, best of ``repeats`` after a warm-up): about 1 for a sampler that
    does nothing but its forward passes and draws (``timing.best_times``: CUDA events on a GPU)."""
    n, steps = part.sampling
    kwargs = dict(part.sample_kwargs)
    with torch.no_grad():
        canvas = torch.zeros_like(model.sample(n, **kwargs))  # the warm-up, and the sample's shape and dtype

        def draw():
            model.sample(n, **kwargs)

        def forward_passes():
            for _ in range(steps):
                model(canvas)

        times = best_times({"draw": draw, "forward_passes": forward_passes}, repeats, device=device)
        return times["draw"] / times["forward_passes"]


@probe("autoregressive")
def autoregressive_part(submission, *, question, label):
    """1a, 1c, 1d and 4a: the parts of autoregressive.py."""
    return _run_on_devices(types.SimpleNamespace(autoregressive=submission.autoregressive), question, label)


@probe("made")
def made_part(submission, *, question, label, dtype=None):
    """2a with the student's MaskedLinear; 2b and 2c with the stand-ins for 2a."""
    made = submission.made
    isolation = contextlib.nullcontext if question == "2a" else lambda: q2.standins_for_2a(made)
    return _run_on_devices(types.SimpleNamespace(made=made), question, label, isolation, dtype=dtype)


@probe("pixelcnn")
def pixelcnn_part(submission, *, question, label):
    """3a with the student's conv_mask (its colour layer with all-ones masks: conv_mask's colour masks are
    3e's, so that 3a needs no extra credit); 3b, 3c and 3e with the stand-ins for 3a (all-ones masks at
    construction, every masked convolution run as torch's own convolution)."""
    px = submission.pixelcnn
    mods = types.SimpleNamespace(pixelcnn=px)
    if label == "MaskedConv2d.forward":
        return _run_on_devices(mods, question, label)
    if question == "3a":
        return _run_on_devices(mods, question, label, lambda: q3.stand_in_masks(px))
    return _run_on_devices(mods, question, label, lambda: q3.stand_in_masks(px), prepare=q3.use_torch_conv)
