"""The grader's own graded suite, for staff_tests/test_grader_*.py (run with ``grader.py --tests``).

Named suite_*.py so that a plain ``pytest staff_tests`` does not collect it.
Expected values are computed here from the same seeded inputs; the hidden tests
call ``reference`` first so that, in a students' copy (no hidden expected
values), they end as "unknown" after the student's code has run.
"""
import math

import torch
import torch.nn.functional as F

from src.grading.host.graded import graded
from src.grading.host.judging.checks import expect_close, expect_equal
from src.grading.worker.probes import selftest_probes as P


def _hidden_reference(reference, value):
    try:
        reference("value", value)  # raises ExpectedValuesAbsent in a students' copy
    except KeyError:
        pass  # the staff suite records nothing: expected values are computed here


@graded("1a-0-basic")
def test_bernoulli(student):
    out = student.run("selftest_probes.bernoulli", seed=1)
    x, logits = P.bernoulli_inputs(1)
    expected = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    expect_close(out, expected, what="bernoulli_log_likelihood", case="x, logits of shape (4, 3), seed 1")


@graded("1a-1-hidden")
def test_categorical_hidden(student, reference):
    out = student.run("selftest_probes.categorical", seed=2)
    _hidden_reference(reference, out)
    x, logits = P.categorical_inputs(2)
    expected = -F.cross_entropy(logits, x, reduction="none").sum(1)
    expect_close(out, expected, what="categorical_log_likelihood", case="x (5, 2), logits (5, 4, 2)", hidden=True)


@graded("1b-0-basic")
def test_bits(student):
    out = student.run("selftest_probes.bits", nll=[10.0, 20.0], num_dims=4)
    expected = torch.tensor([10.0, 20.0], dtype=torch.float64) / (4 * math.log(2))
    expect_close(out, expected, what="nll_to_bits_per_dim", case="nll [10, 20], 4 dims")


@graded("2a-0-basic")
def test_masked_linear(student):
    out = student.run("selftest_probes.masked_linear", seed=3)
    weight, bias, mask, x = P.linear_inputs(3)
    expect_close(out, F.linear(x, mask * weight, bias), what="MaskedLinear.forward", case="3 -> 2, seed 3",
                 atol=1e-5, rtol=1e-5)


@graded("2a-1-hidden")
def test_masked_linear_hidden(student, reference):
    out = student.run("selftest_probes.masked_linear", seed=4)
    _hidden_reference(reference, out)
    weight, bias, mask, x = P.linear_inputs(4)
    expect_close(out, F.linear(x, mask * weight, bias), what="MaskedLinear.forward", case="3 -> 2, seed 4",
                 atol=1e-5, rtol=1e-5, hidden=True)


@graded("3a-0-basic")
def test_conv_mask(student):
    out = student.run("selftest_probes.conv_mask", mask_type="A", size=3)
    expected = torch.tensor([[1.0, 1, 1], [1, 0, 0], [0, 0, 0]]).view(1, 1, 3, 3)
    expect_equal(out, expected, what="conv_mask", case="type A, 1 -> 1 channels, 3x3")


@graded("1b-1-hidden")
def test_bits_hidden(student, reference):
    out = student.run("selftest_probes.bits", nll=[3.0], num_dims=7)
    _hidden_reference(reference, out)
    expect_close(out, torch.tensor([3.0 / (7 * math.log(2))], dtype=torch.float64), what="nll_to_bits_per_dim",
                 case="nll [3], 7 dims", hidden=True)


@graded("3a-1-hidden")
def test_conv_mask_hidden(student, reference):
    out = student.run("selftest_probes.conv_mask", mask_type="B", size=5)
    _hidden_reference(reference, out)
    expected = torch.ones(5, 5)
    expected[2, 3:] = 0
    expected[3:] = 0
    expect_equal(out, expected.view(1, 1, 5, 5), what="conv_mask", case="type B, 1 -> 1 channels, 5x5", hidden=True)
