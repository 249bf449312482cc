"""Probes for Question 1, autoregressive.py (worker side).

Nothing here implements a graded function: this file ships to students (and
their code can import it), so the expected values are the reference's recorded
values (``reference(key, actual)`` in the tests), not formulas.  One exception:
1b's expected values are the formula ``nll / (num_dims * ln 2)``
(``host/judging/q1.check_bits_per_dim``), which is the stub's own docstring, so it
gives nothing away; the release's leak check allows it there (``DOCSTRING_FORMULAS``)
and fails if the docstring stops stating it.

Isolation between the parts of Question 1.  ``FVSBN.log_prob`` may call the
student's own ``bernoulli_log_likelihood`` (the reference's does).  The 1d probes
therefore also return ``bernoulli_log_likelihood(x, conditional_logits(x))``
computed with the student's own functions, and the tests accept a ``log_prob``
that equals either the reference's or that value: a bug in 1a then costs points
in 1a only.  (``DiscreteAR2D.log_prob`` may call ``categorical_log_likelihood``
on ``(B, K)`` logits, where the plausible 1a bugs do not show.)

Models are built with the stub's constructor (float32 parameters, as in
training) and get their values through ``load_state_dict``: the tests compare
with tolerances that float32 arithmetic in any order meets.  Samples are judged
against the reference's ``log_prob`` of every outcome (recorded), so a bug in
``log_prob`` costs points in the log_prob parts only.

The tests judge the probes' results with ``src/grading/host/judging/q1.py``, which
runs in the grader's process, never in the worker.
"""
import torch

from ...inputs import all_binary, seeded_generator
from .registry import probe


_DTYPES = {"float64": torch.float64, "float32": torch.float32, "int64": torch.int64, "uint8": torch.uint8,
           "int32": torch.int32}


# -- 1a ---------------------------------------------------------------------------------------------------
def bernoulli_inputs(seed, shape, scale, x_dtype="float64", logits_dtype="float64", extreme=0.0):
    """x in {0, 1} and logits ~ N(0, scale^2); a fraction ``extreme`` of the logits set to +-1e4."""
    g = seeded_generator(seed)
    x = torch.randint(0, 2, shape, generator=g)
    logits = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    if extreme:
        chosen = torch.rand(shape, generator=g, dtype=torch.float64) < extreme
        sign = torch.randint(0, 2, shape, generator=g).double() * 2 - 1
        logits = torch.where(chosen, 1e4 * sign, logits)
    return x.to(_DTYPES[x_dtype]), logits.to(_DTYPES[logits_dtype])


def categorical_inputs(seed, batch, num_values, rest, scale, logits_dtype="float64", extreme=0.0):
    """x (batch, *rest) in {0..K-1} and logits (batch, K, *rest); some logits set to +-1e4."""
    g = seeded_generator(seed)
    x = torch.randint(0, num_values, (batch, *rest), generator=g)
    shape = (batch, num_values, *rest)
    logits = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    if extreme:
        chosen = torch.rand(shape, generator=g, dtype=torch.float64) < extreme
        sign = torch.randint(0, 2, shape, generator=g).double() * 2 - 1
        logits = torch.where(chosen, 1e4 * sign, logits)
    return x, logits.to(_DTYPES[logits_dtype])


@probe("autoregressive")
def bernoulli_ll(submission, *, cases):
    """``bernoulli_log_likelihood`` on each case (keyword arguments of ``bernoulli_inputs``)."""
    results = []
    for case in cases:
        x, logits = bernoulli_inputs(**case)
        results.append(submission.autoregressive.bernoulli_log_likelihood(x, logits))
    return results


@probe("autoregressive")
def categorical_ll(submission, *, cases):
    """``categorical_log_likelihood`` on each case (keyword arguments of ``categorical_inputs``)."""
    results = []
    for case in cases:
        x, logits = categorical_inputs(**case)
        results.append(submission.autoregressive.categorical_log_likelihood(x, logits))
    return results


# -- 1b ---------------------------------------------------------------------------------------------------
@probe("autoregressive")
def bits_per_dim(submission, *, cases):
    """``nll_to_bits_per_dim`` on each case ``{"nll": float or tensor, "num_dims": int}``.

    Returns, per case, the result (a tensor, or a float as ``{"float": value}``
    so that the test can tell a Python float from a 0-d tensor) and its type name.
    """
    results = []
    for case in cases:
        nll = case["nll"]
        out = submission.autoregressive.nll_to_bits_per_dim(nll, case["num_dims"])
        kind = type(out).__module__ + "." + type(out).__qualname__
        if isinstance(out, torch.Tensor):
            results.append({"type": kind, "tensor": out})
        elif isinstance(out, (int, float)):
            results.append({"type": kind, "float": float(out)})
        else:
            results.append({"type": kind})
    return results


# -- 1c ---------------------------------------------------------------------------------------------------
def ar2d_tables(seed, num_values, scale=1.5):
    g = seeded_generator(seed)
    first = torch.randn(num_values, generator=g, dtype=torch.float64) * scale
    second = torch.randn(num_values, num_values, generator=g, dtype=torch.float64) * scale
    return first, second


def _ar2d(submission, num_values, order, first, second):
    model = submission.autoregressive.DiscreteAR2D(num_values, order=tuple(order))
    model.load_state_dict({"first_logits": torch.as_tensor(first, dtype=torch.float32),
                           "second_logits": torch.as_tensor(second, dtype=torch.float32)})
    return model


def all_pairs(num_values):
    values = torch.arange(num_values)
    return torch.cartesian_prod(values, values)  # row a * K + b is (a, b)


def _try_log_prob(model, x):
    """``model.log_prob(x)``, or None if it raises: the sampling probes return it only so that
    the tests can record the reference's distribution (``reference(key, actual)``)."""
    try:
        return model.log_prob(x)
    except Exception:  # noqa: BLE001  (graded in the log_prob parts, not here)
        return None


@probe("autoregressive")
def ar2d_log_prob(submission, *, seed, num_values, order, batch=0):
    """``DiscreteAR2D.log_prob`` on all K^2 pairs (row ``a*K + b`` is ``(a, b)``), and on
    ``batch`` random pairs (with repeats) if ``batch``; random tables from ``seed``."""
    first, second = ar2d_tables(seed, num_values)
    model = _ar2d(submission, num_values, order, first, second)
    out = {"all": model.log_prob(all_pairs(num_values))}
    if batch:
        x = torch.randint(0, num_values, (batch, 2), generator=seeded_generator(seed + 1))
        out["batch"] = model.log_prob(x)
    return out


def _samples(model, n, seed, repeat, without_generator):
    out = {"samples": model.sample(n, generator=seeded_generator(seed))}
    if repeat:
        torch.rand(7)
        out["again"] = model.sample(n, generator=seeded_generator(seed))
        out["other_seed"] = model.sample(n, generator=seeded_generator(seed + 1))
    if without_generator:
        out["no_generator"] = model.sample(without_generator)
    return out


@probe("autoregressive")
def ar2d_sample(submission, *, num_values, order, first, second, n, seed, repeat=False, without_generator=0,
                distribution=False):
    """``DiscreteAR2D.sample`` with the given tables: ``n`` samples from a generator seeded
    with ``seed``; with ``repeat``, ``n`` more from a fresh generator with the same seed
    (PyTorch's global generator is advanced in between, so a sampler that ignores
    ``generator`` cannot repeat itself) and ``n`` with the next seed; with
    ``without_generator``, that many samples with ``generator=None`` too.  With
    ``distribution``, also ``log_prob`` of all K^2 pairs (None if it raises)."""
    model = _ar2d(submission, num_values, order, first, second)
    out = _samples(model, n, seed, repeat, without_generator)
    if distribution:
        out["log_probs"] = _try_log_prob(model, all_pairs(num_values))
    return out


# -- 1d ---------------------------------------------------------------------------------------------------
def fvsbn_params(seed, dim, scale=1.5):
    """Random FVSBN parameters: a full weight matrix (upper triangle and diagonal too), bias, order."""
    g = seeded_generator(seed)
    weight = torch.randn(dim, dim, generator=g, dtype=torch.float64) * scale
    bias = torch.randn(dim, generator=g, dtype=torch.float64)
    order = torch.randperm(dim, generator=g)
    return weight, bias, order


def _fvsbn(submission, dim, weight, bias, order, order_via="constructor"):
    """An FVSBN with the given parameters (``load_state_dict``).  ``order_via``:
    ``"constructor"`` passes ``order`` to the constructor (and the state_dict),
    ``"state_dict"`` only loads it, ``"default"`` uses ``order=None`` (the identity)."""
    FVSBN = submission.autoregressive.FVSBN
    order = torch.as_tensor(order, dtype=torch.long)
    model = FVSBN(dim, order=order.tolist()) if order_via == "constructor" else FVSBN(dim)
    state = {"weight": torch.as_tensor(weight, dtype=torch.float32),
             "bias": torch.as_tensor(bias, dtype=torch.float32)}
    if order_via != "default":
        state["order"] = order
    model.load_state_dict(state, strict=order_via != "default")
    return model


def _triangle_perturbed(weight, seed):
    """The same weight with new random values on and above the diagonal."""
    noise = torch.randn(weight.shape, generator=seeded_generator(seed), dtype=torch.float64) * 5
    upper = torch.triu(torch.ones(weight.shape, dtype=torch.bool))
    return torch.where(upper, noise, weight)


def _log_prob_and_consistent(submission, model, x):
    """``model.log_prob(x)`` and, when it works, ``bernoulli_log_likelihood(x, conditional_logits(x))``
    with the student's own functions (None if that raises)."""
    out = {"log_prob": model.log_prob(x)}
    try:
        out["consistent"] = submission.autoregressive.bernoulli_log_likelihood(x, model.conditional_logits(x))
    except Exception:  # noqa: BLE001  (1a is graded in 1a)
        out["consistent"] = None
    return out


@probe("autoregressive")
def fvsbn_values(submission, *, seed, dim, order_via="constructor", batch=0):
    """``FVSBN.conditional_logits`` and ``log_prob`` on all 2^D inputs (float32, row k:
    the bits of k), for random parameters from ``seed``; the same after new values on
    and above the diagonal of ``weight``; and on ``batch`` random inputs if ``batch``.
    Each ``log_prob`` comes with the student's ``bernoulli_log_likelihood(x,
    conditional_logits(x))`` (see the module docstring)."""
    weight, bias, order = fvsbn_params(seed, dim)
    if order_via == "default":
        order = torch.arange(dim)
    x = all_binary(dim)
    out = {"order": order}
    model = _fvsbn(submission, dim, weight, bias, order, order_via)
    out["logits"] = model.conditional_logits(x)
    out["log_prob"] = _log_prob_and_consistent(submission, model, x)
    perturbed = _fvsbn(submission, dim, _triangle_perturbed(weight, seed + 1), bias, order, order_via)
    out["logits_triangle"] = perturbed.conditional_logits(x)
    out["log_prob_triangle"] = perturbed.log_prob(x)
    if batch:
        xb = torch.randint(0, 2, (batch, dim), generator=seeded_generator(seed + 2)).to(x.dtype)
        out["batch_log_prob"] = _log_prob_and_consistent(submission, model, xb)
    return out


@probe("autoregressive")
def fvsbn_dependence(submission, *, seed, dim, trials=3):
    """``FVSBN.conditional_logits`` on all 2^D inputs and on copies in which, for each
    position ``i`` of the ordering, the variables ``order[i:]`` are replaced by random
    bits.  ``out["changed"][i][t]`` are the logits for trial ``t`` of position ``i``."""
    weight, bias, order = fvsbn_params(seed, dim)
    x = all_binary(dim)
    g = seeded_generator(seed + 3)
    model = _fvsbn(submission, dim, weight, bias, order)
    out = {"order": order, "logits": model.conditional_logits(x), "changed": []}
    for i in range(dim):
        later = order[i:]
        per_trial = []
        for _ in range(trials):
            x_changed = x.clone()
            x_changed[:, later] = torch.randint(0, 2, (x.shape[0], len(later)), generator=g).float()
            per_trial.append(model.conditional_logits(x_changed))
        out["changed"].append(per_trial)
    return out


@probe("autoregressive")
def fvsbn_sample(submission, *, dim, weight, bias, order, n, seed, repeat=False, without_generator=0,
                 distribution=False):
    """``FVSBN.sample`` with the given parameters (see ``ar2d_sample``); with
    ``distribution``, also ``log_prob`` of all 2^D binary vectors (None if it raises)."""
    model = _fvsbn(submission, dim, weight, bias, order)
    out = _samples(model, n, seed, repeat, without_generator)
    if distribution:
        out["log_probs"] = _try_log_prob(model, all_binary(dim))
    return out
