"""Public tests of Question 1 (autoregressive.py): likelihoods, bits/dim, DiscreteAR2D, FVSBN.

The probes are in src/grading/worker/probes/q1.py (see its docstring for how a bug in
1a is kept from costing points in 1d, and how samples are judged).  Tolerances: float64 inputs are compared within
1e-5 + 1e-5*|expected| (a student may compute in float32 internally); the models
of 1c/1d are float32 (as in training) and are compared within 1e-4 + 1e-5*|expected|.
Every bug these tests look for moves the values by 0.01 or (much) more.
"""
import math

import torch

from src.grading.host.graded import graded
from src.grading.host.judging.checks import expect_close, expect_tensor
from src.grading.host.judging.device import expect_same_on_another_device
from src.grading.host.judging.subcases import SubCases
from src.grading.host.judging.q1 import (FLOAT32_TOL, FLOAT64_TOL, binary_codes, check_bits_per_dim, check_distribution,
                                    check_samples, describe_bernoulli_case, describe_categorical_case,
                                    expect_fvsbn_log_prob)


BERNOULLI_BASIC = [
    dict(seed=1, shape=[4, 3], scale=3.0),
    dict(seed=2, shape=[3, 1, 4, 4], scale=2.0, x_dtype="int64"),
    dict(seed=3, shape=[6, 5], scale=2.0, logits_dtype="float32", extreme=0.3),
]
CATEGORICAL_BASIC = [
    dict(seed=4, batch=4, num_values=5, rest=[], scale=2.0),
    dict(seed=5, batch=3, num_values=4, rest=[2, 3], scale=2.0),
    dict(seed=6, batch=5, num_values=3, rest=[4], scale=2.0, logits_dtype="float32", extreme=0.3),
]


def _log_likelihood_values(student, reference):
    bern = student.run("q1.bernoulli_ll", cases=BERNOULLI_BASIC)
    cat = student.run("q1.categorical_ll", cases=CATEGORICAL_BASIC)
    for index, (case, out) in enumerate(zip(BERNOULLI_BASIC, bern)):
        name = describe_bernoulli_case(case)
        expect_tensor(out, what="bernoulli_log_likelihood", case=name, shape=(case["shape"][0],), dtype_kind="float")
        tol = FLOAT32_TOL if case.get("logits_dtype") == "float32" else FLOAT64_TOL
        expect_close(out, reference(f"bernoulli/{index}", out), what="bernoulli_log_likelihood", case=name, **tol)
    for index, (case, out) in enumerate(zip(CATEGORICAL_BASIC, cat)):
        name = describe_categorical_case(case)
        expect_tensor(out, what="categorical_log_likelihood", case=name, shape=(case["batch"],), dtype_kind="float")
        tol = FLOAT32_TOL if case.get("logits_dtype") == "float32" else FLOAT64_TOL
        expect_close(out, reference(f"categorical/{index}", out), what="categorical_log_likelihood", case=name,
                     **tol)


@graded("1a-0-basic", partial=True)
def test_log_likelihoods_basic(student, reference, set_score=None):
    """Values against the reference's; then the same functions on another device, which needs the values."""
    cases, values = SubCases(), "bernoulli_log_likelihood and categorical_log_likelihood: values"
    with cases.case(0.8, values):
        _log_likelihood_values(student, reference)
    with cases.case(0.2, "bernoulli_log_likelihood, categorical_log_likelihood on another device",
                    requires=values) as notes:
        label = "bernoulli_log_likelihood, categorical_log_likelihood"
        out = student.run("device.autoregressive_part", question="1a", label=label)
        expect_same_on_another_device(out, notes, question="1a", label=label)
    cases.finish(set_score)


BITS_BASIC = [
    (784 * math.log(2.0), 784),
    (torch.tensor([784 * math.log(2.0), 0.0, 150.0], dtype=torch.float64), 784),
]


@graded("1b-0-basic")
def test_bits_per_dim_basic(student):
    outs = student.run("q1.bits_per_dim", cases=[{"nll": nll, "num_dims": d} for nll, d in BITS_BASIC])
    for (nll, num_dims), out in zip(BITS_BASIC, outs):
        check_bits_per_dim(out, nll, num_dims)


AR2D_BASIC = [dict(seed=10, num_values=3, order=[0, 1]), dict(seed=10, num_values=3, order=[1, 0])]


def _discrete_ar2d_values(student, reference):
    outs = [student.run("q1.ar2d_log_prob", **case) for case in AR2D_BASIC]
    first, second = torch.tensor([0.5, -1.0, 0.2]), torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5], [-2.0, 1.0, 0.0]])
    sample_case = dict(num_values=3, order=[1, 0], first=first, second=second, seed=3)
    samples = student.run("q1.ar2d_sample", **sample_case, n=200, repeat=True)
    many = student.run("q1.ar2d_sample", **sample_case, n=5000, distribution=True)
    for case, out in zip(AR2D_BASIC, outs):
        name = (f"DiscreteAR2D(3, order={tuple(case['order'])}) with random logit tables, x = all 9 pairs "
                f"(a, b) in the order (0, 0), (0, 1), ..., (2, 2)")
        expect_tensor(out["all"], what="DiscreteAR2D.log_prob", case=name, shape=(9,), dtype_kind="float")
        expect_close(out["all"], reference(f"log_prob/{tuple(case['order'])}", out["all"]),
                     what="DiscreteAR2D.log_prob", case=name, **FLOAT32_TOL)
    check_samples(samples, what="DiscreteAR2D.sample", case="DiscreteAR2D(3, order=(1, 0)), n=200", n=200, dim=2,
                  int_values=3, repeat=True)
    case = "DiscreteAR2D(3, order=(1, 0)), 5000 samples"
    check_samples(many, what="DiscreteAR2D.sample", case=case, n=5000, dim=2, int_values=3)
    check_distribution(many["samples"][:, 0] * 3 + many["samples"][:, 1],
                       reference("distribution", many["log_probs"]), what="DiscreteAR2D.sample", case=case)


@graded("1c-0-basic", partial=True)
def test_discrete_ar2d_basic(student, reference, set_score=None):
    """Values and samples against the reference's; then on another device, which needs them."""
    cases, values = SubCases(), "DiscreteAR2D.log_prob and sample"
    with cases.case(0.8, values):
        _discrete_ar2d_values(student, reference)
    with cases.case(0.2, "DiscreteAR2D.log_prob, sample on another device", requires=values) as notes:
        label = "DiscreteAR2D.log_prob, sample"
        out = student.run("device.autoregressive_part", question="1c", label=label)
        expect_same_on_another_device(out, notes, question="1c", label=label)
    cases.finish(set_score)


FVSBN_BASIC = dict(seed=20, dim=4)


def _fvsbn_values(student, reference):
    out = student.run("q1.fvsbn_values", **FVSBN_BASIC)
    order = tuple(out["order"].tolist())
    weight = torch.tensor([[0.0, 9.0, 9.0], [1.5, 0.0, 9.0], [-2.0, 1.0, 0.0]])
    sample_case = dict(dim=3, weight=weight, bias=torch.tensor([0.5, -0.5, 0.0]), order=[2, 0, 1], seed=4)
    samples = student.run("q1.fvsbn_sample", **sample_case, n=200, repeat=True)
    many = student.run("q1.fvsbn_sample", **sample_case, n=5000, distribution=True)
    name = (f"FVSBN(4, order={list(order)}) with a random weight (also on and above the diagonal) and bias, "
            f"x = all 16 binary vectors (row k holds the bits of k, most significant first)")
    expect_tensor(out["logits"], what="FVSBN.conditional_logits", case=name, shape=(16, 4), dtype_kind="float")
    expect_close(out["logits"], reference("logits", out["logits"]), what="FVSBN.conditional_logits", case=name,
                 **FLOAT32_TOL)
    log_prob = out["log_prob"]["log_prob"]
    expect_fvsbn_log_prob(out["log_prob"], reference("log_prob", log_prob), case=name, **FLOAT32_TOL)
    check_samples(samples, what="FVSBN.sample", case="FVSBN(3, order=[2, 0, 1]), n=200", n=200, dim=3,
                  binary=True, repeat=True)
    case = "FVSBN(3, order=[2, 0, 1]), 5000 samples"
    check_samples(many, what="FVSBN.sample", case=case, n=5000, dim=3, binary=True)
    check_distribution(binary_codes(many["samples"]), reference("distribution", many["log_probs"]),
                       what="FVSBN.sample", case=case)


@graded("1d-0-basic", partial=True)
def test_fvsbn_basic(student, reference, set_score=None):
    """Values and samples against the reference's; then on another device, which needs them."""
    cases, values = SubCases(), "FVSBN.conditional_logits, log_prob and sample"
    with cases.case(0.8, values):
        _fvsbn_values(student, reference)
    with cases.case(0.2, "FVSBN.log_prob, sample on another device", requires=values) as notes:
        label = "FVSBN.log_prob, sample"
        out = student.run("device.autoregressive_part", question="1d", label=label)
        expect_same_on_another_device(out, notes, question="1d", label=label)
    cases.finish(set_score)
