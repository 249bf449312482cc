"""Judging of Question 2, MADE (host side), on what ``worker/probes/q2.py`` returns.  Tolerances: the models and inputs are
float32 (as in training), so values are compared within float32 rounding of a
few sums (``F32``); log-likelihoods computed here from the student's own logits
are compared in float64 against the student's float32 result (``LL``).
"""
import torch
import torch.nn.functional as F

from ...inputs import binary_codes
from . import goodness_of_fit
from .checks import expect_tensor, fail, needs  # noqa: F401  (needs: used by the tests)

F32 = dict(atol=1e-5, rtol=1e-4)  # float32 matrix products of width <= 64, any summation order
LL = dict(atol=1e-4, rtol=1e-5)  # sums of D float32 log-probabilities


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def expect_true(condition, *, what, case, problem):
    if not condition:
        fail(what, case, problem)


def expect_masked_gradient(out, shape, *, case):
    """The weight's gradient (returned): 0 wherever the mask is 0; forward leaves the weight itself unchanged and
    keeps the graph back to it."""
    what = "MaskedLinear.forward"
    if out.get("forward_changed_weight"):
        fail(what, case, "forward changed self.weight itself (as `self.weight.data *= self.mask` does): the weights "
             "where this mask is 0 are lost for every later mask set, and their gradients are not 0; leave "
             "self.weight unchanged and compute with mask * weight")
    grad = out["weight_grad"]
    if out.get("backward_error") or not isinstance(grad, torch.Tensor):
        how = f"backward raised {out['backward_error']}" if out.get("backward_error") else "weight.grad is None"
        fail(what, case, f"the output has no gradient with respect to self.weight ({how}): compute with "
             "self.mask * self.weight, not self.weight.data or a detached copy, so that the weights train")
    expect_tensor(grad, what=what, case=case + ", weight.grad", shape=shape)
    expect_true(bool((grad[out["mask_set"] == 0] == 0).all()), what=what, case=case,
                problem="a weight whose mask entry is 0 got a non-zero gradient: multiply the weight by the mask "
                        "inside forward")
    return grad


def mask_label(layer, n_masks):
    """How a message names ``made_masks``' mask number ``layer`` of ``n_masks``: which layers it joins."""
    if layer == n_masks - 1:
        return f"mask {layer} (last hidden layer -> output)"
    return f"mask {layer} ({'input' if layer == 0 else f'hidden layer {layer}'} -> hidden layer {layer + 1})"


def bernoulli_ll(x, logits):
    """float64 log-likelihood of binary ``x`` (B, D) under Bernoulli(sigmoid(logits)), summed over D."""
    return -F.binary_cross_entropy_with_logits(logits.double(), x.double(), reduction="none").sum(1)


def input_degrees(order):
    """The contract's input degrees: ``m0[order[i]] = i``."""
    return torch.argsort(order)


def expect_permutation(order, nin, *, what, case):
    expect_tensor(order, what=what, case=case, shape=(nin,), dtype_kind="int")
    expect_true(sorted(order.tolist()) == list(range(nin)), what=what, case=case,
                problem=f"the order buffer is not a permutation of range({nin}): {order.tolist()}")


def expect_autoregressive(entry, nin, nout, *, what, case, connected=True):
    """Output ``o`` (modelling input ``o % D``) may depend only on inputs of smaller degree."""
    order = entry["order"]
    expect_permutation(order, nin, what=what, case=case)
    m0 = input_degrees(order)
    dependence = entry["dependence"]
    allowed = m0[None, :] < m0[torch.arange(nout) % nin][:, None]
    bad = (dependence != 0) & ~allowed
    if bool(bad.any()):
        o, j = (int(i) for i in bad.nonzero()[0])
        fail(what, case, f"with order = {order.tolist()} (mask set {entry['mask_index']}), output {o} "
                         f"(which models x[{o % nin}], degree {int(m0[o % nin])}) depends on input x[{j}] of "
                         f"degree {int(m0[j])}: it may only depend on inputs of smaller degree")
    if connected:
        last = [o for o in range(nout) if int(m0[o % nin]) == nin - 1]
        expect_true(bool((dependence[last] != 0).any()), what=what, case=case,
                    problem=f"with order = {order.tolist()}, the outputs of the last variable in the order "
                            f"(x[{int(order[-1])}]) depend on no input at all: are the masks installed?")


def expect_same_state(actual, expected, *, what, case, problem):
    """Two snapshots (mask_index, order, masks) describe the same mask set."""
    same = actual["mask_index"] == expected["mask_index"] and torch.equal(actual["order"], expected["order"]) \
        and len(actual["masks"]) == len(expected["masks"]) \
        and all(torch.equal(a, b) for a, b in zip(actual["masks"], expected["masks"]))
    if not same:
        fail(what, case, f"{problem} (mask_index {expected['mask_index']} -> {actual['mask_index']}, "
                         f"order {expected['order'].tolist()} -> {actual['order'].tolist()})")


def ensemble_log_prob(per_set, x):
    """log (1/M) sum_k p_k(x), from the model's own logits under each mask set (float64)."""
    ll = torch.stack([bernoulli_ll(x, entry["logits"]) for entry in per_set])
    return torch.logsumexp(ll, 0) - torch.log(torch.tensor(float(len(per_set)), dtype=torch.float64))


def expect_model_depends_on_inputs(out, *, what, case):
    """Causality first: the samples of ``q2.made_sample`` are judged against the model's own
    logits, which must depend on the earlier variables (else any noise of the right marginals passes)."""
    order, logits = out["before"]["order"], expect_tensor(out["logits"], what="MADE.forward", case=case,
                                                          shape=tuple(out["all_x"].shape), dtype_kind="float")
    last = int(order[-1])
    column = logits[:, last].double()
    spread = (column - column[0]).abs().max().item()
    expect_true(spread > 1e-4 * max(1.0, column.abs().max().item()), what=what, case=case,
                problem=f"the model's own logit of x[{last}] (last in the order) is the same for all "
                        f"{logits.shape[0]} inputs: forward does not depend on the earlier variables, so no "
                        "sample can be judged")


def sample_p_value(samples, all_x, logits):
    """p-value of Pearson's chi-square test of binary ``samples`` (n, D) against
    p(x) = exp(bernoulli_ll(x, logits)) over all outcomes ``all_x`` (2**D, D), in any order."""
    log_p = bernoulli_ll(all_x, logits)
    log_p = log_p - torch.logsumexp(log_p, dim=0)
    cell_of = torch.full((2 ** all_x.shape[1],), -1, dtype=torch.long)
    cell_of[binary_codes(all_x)] = torch.arange(all_x.shape[0])
    return goodness_of_fit.chi_square_p_value(cell_of[binary_codes(samples)], log_p)


def expect_binary_samples(samples, n, nin, *, what, case):
    expect_tensor(samples, what=what, case=case, shape=(n, nin), dtype_kind="float")
    bad = ~((samples == 0) | (samples == 1))
    if bool(bad.any()):
        fail(what, case, f"{int(bad.sum())} of {samples.numel()} values are not 0 or 1, e.g. {samples[bad][0].item()}")
