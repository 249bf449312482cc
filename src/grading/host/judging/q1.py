"""Judging of Question 1, autoregressive.py (host side), on what ``worker/probes/q1.py`` returns (its
docstring says how a bug in 1a is kept from costing points in 1d, and how samples are judged)."""
import math

import torch

from ...inputs import binary_codes  # noqa: F401  (the tests import it from here: the row of inputs.all_binary)
from .checks import expect_close, expect_tensor, fail
from .goodness_of_fit import MIN_P_VALUE, chi_square_p_value

FLOAT64_TOL = dict(atol=1e-5, rtol=1e-5)  # float64 inputs: any summation order
FLOAT32_TOL = dict(atol=1e-4, rtol=1e-5)  # float32 logits or models


def describe_bernoulli_case(case):
    """One line naming a ``q1.bernoulli_ll`` case (dtypes, shape, logit scale, extreme logits)."""
    extreme = f", {case['extreme']:.0%} of the logits set to +-1e4" if case.get("extreme") else ""
    return (f"x {case.get('x_dtype', 'float64')} of shape {tuple(case['shape'])}, "
            f"logits {case.get('logits_dtype', 'float64')} ~ N(0, {case['scale']:g}^2){extreme}")


def describe_categorical_case(case):
    """One line naming a ``q1.categorical_ll`` case."""
    rest = tuple(case["rest"])
    extreme = f", {case['extreme']:.0%} of the logits set to +-1e4" if case.get("extreme") else ""
    return (f"x int64 of shape {(case['batch'], *rest)} in 0..{case['num_values'] - 1}, logits "
            f"{case.get('logits_dtype', 'float64')} of shape {(case['batch'], case['num_values'], *rest)}{extreme}")


def check_bits_per_dim(out, nll, num_dims, *, hidden=False):
    """Judge one result of the ``q1.bits_per_dim`` probe against ``nll / (num_dims * ln 2)``.

    The expected value is this formula, not a recorded value: it is the definition in the stub's docstring
    (allowed by the release's leak check, ``DOCSTRING_FORMULAS``)."""
    what = "nll_to_bits_per_dim"
    if isinstance(nll, torch.Tensor):
        case = f"nll a {nll.dtype} tensor of shape {tuple(nll.shape)}, num_dims={num_dims}"
        if "tensor" not in out:
            fail(what, case, f"expected a tensor of shape {tuple(nll.shape)} (the same type as nll), got {out['type']}")
        expected = nll.double() / (num_dims * math.log(2.0))
        expect_close(out["tensor"], expected, what=what, case=case, atol=1e-7, rtol=1e-6, hidden=hidden)
    else:
        case = f"nll={nll!r} (a Python float), num_dims={num_dims}"
        if "float" not in out or out["type"] == "builtins.bool":
            fail(what, case, f"expected a Python float (the same type as nll), got {out['type']}")
        expected = nll / (num_dims * math.log(2.0))
        if not abs(out["float"] - expected) <= 1e-7 + 1e-6 * abs(expected):
            if hidden:
                fail(what, case, f"differs from nll / (num_dims * ln 2) by {abs(out['float'] - expected):.3g}")
            fail(what, case, f"expected {expected:.9g} = nll / (num_dims * ln 2), got {out['float']:.9g}")


def check_samples(out, *, what, case, n, dim, int_values=None, binary=False, repeat=False, no_generator=0,
                  hidden=False):
    """Shape, dtype and range of ``out['samples']`` (and of the repeats, when asked for)."""
    keys = ["samples"] + (["again", "other_seed"] if repeat else []) + (["no_generator"] if no_generator else [])
    for key in keys:
        count = no_generator if key == "no_generator" else n
        label = case + (", generator=None" if key == "no_generator" else "")
        kind = "int" if int_values else "float"
        samples = expect_tensor(out[key], what=what, case=label, shape=(count, dim), dtype_kind=kind)
        if int_values and samples.dtype != torch.int64:
            fail(what, label, f"expected dtype torch.int64, got {samples.dtype}")
        if int_values and not bool(((samples >= 0) & (samples < int_values)).all()):
            fail(what, label, f"values must lie in 0..{int_values - 1}, got min {samples.min().item()} and max "
                              f"{samples.max().item()}")
        if binary and not bool(((samples == 0) | (samples == 1)).all()):
            bad = samples[(samples != 0) & (samples != 1)]
            fail(what, label, f"values must be 0. or 1., got {bad.numel()} other values such as {bad[0].item():g}")
    if repeat:
        if not torch.equal(out["samples"], out["again"]):
            fail(what, case, "two calls with generators seeded alike gave different samples: draw all randomness "
                             "from `generator` (e.g. torch.multinomial(..., generator=generator))")
        if torch.equal(out["samples"], out["other_seed"]):
            fail(what, case, "generators with different seeds gave the same samples")


def expect_fvsbn_log_prob(result, expected, *, case, hidden=False, **tol):
    """Judge one ``FVSBN.log_prob`` result of ``fvsbn_values``: it must equal the reference's
    value, or ``bernoulli_log_likelihood(x, conditional_logits(x))`` computed with the
    student's own functions (so that a bug in 1a is graded in 1a only)."""
    try:
        expect_close(result["log_prob"], expected, what="FVSBN.log_prob", case=case, hidden=hidden, **tol)
    except AssertionError:
        actual, consistent = result["log_prob"], result.get("consistent")
        if (isinstance(actual, torch.Tensor) and isinstance(consistent, torch.Tensor)
                and actual.shape == consistent.shape and actual.is_floating_point()
                and consistent.is_floating_point() and bool(torch.isfinite(actual).all())
                and torch.allclose(actual.double(), consistent.double(), atol=tol.get("atol", 1e-5),
                                   rtol=tol.get("rtol", 1e-5))):
            return
        raise


def check_distribution(codes, log_probs, *, what, case, p_min=MIN_P_VALUE):
    """Fail unless the sample ``codes`` pass Pearson's chi-square test against ``exp(log_probs)`` at ``p_min``."""
    p_value, stat, df = chi_square_p_value(codes, log_probs)
    if p_value < p_min:
        fail(what, case, f"the samples do not follow the model's distribution p(x) = exp(log_prob(x)): chi-square "
                         f"{stat:.1f} with {df} degrees of freedom, p = {p_value:.2g} < {p_min:g}")
