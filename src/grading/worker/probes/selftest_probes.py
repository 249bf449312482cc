"""Probes (worker side) of the grader's self-test suite (``staff_tests/grader_suite``), independent of the real tests.

Registered as ``selftest_probes.<name>``; the worker imports this module when a
request names it (the worker client sends the module that ``index.py`` found).  It
lives here, not beside the suite, because ``staff_tests/`` is root-only while
the grader runs as root and the worker must be able to import it.  The inputs
are made by the functions below, which the grader's side calls too, so the
tests compute the expected values themselves.
"""
import torch

from ...inputs import seeded_generator
from .registry import probe


def bernoulli_inputs(seed):
    g = seeded_generator(seed)
    x = torch.randint(0, 2, (4, 3), generator=g).double()
    logits = torch.randn(4, 3, generator=g, dtype=torch.float64) * 3
    return x, logits


def categorical_inputs(seed):
    g = seeded_generator(seed)
    x = torch.randint(0, 4, (5, 2), generator=g)
    logits = torch.randn(5, 4, 2, generator=g, dtype=torch.float64)
    return x, logits


def linear_inputs(seed):
    g = seeded_generator(seed)
    weight = torch.randn(2, 3, generator=g)
    bias = torch.randn(2, generator=g)
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    x = torch.randn(4, 3, generator=g)
    return weight, bias, mask, x


@probe("autoregressive")
def bernoulli(submission, *, seed):
    return submission.autoregressive.bernoulli_log_likelihood(*bernoulli_inputs(seed))


@probe("autoregressive")
def categorical(submission, *, seed):
    return submission.autoregressive.categorical_log_likelihood(*categorical_inputs(seed))


@probe("autoregressive")
def bits(submission, *, nll, num_dims):
    return submission.autoregressive.nll_to_bits_per_dim(torch.tensor(nll, dtype=torch.float64), num_dims)


@probe("made")
def masked_linear(submission, *, seed):
    weight, bias, mask, x = linear_inputs(seed)
    layer = submission.made.MaskedLinear(3, 2)
    layer.set_mask(mask)
    layer.load_state_dict({"weight": weight, "bias": bias, "mask": mask})
    with torch.no_grad():
        return layer(x)


@probe("pixelcnn")
def conv_mask(submission, *, mask_type, size):
    return submission.pixelcnn.conv_mask(mask_type, 1, 1, size)
