"""Probes for Question 4: ``evaluate_nll`` (4a) and the learning tests (4b, 4c).

Nothing here implements a graded function (this file ships to students).

4a runs the student's ``evaluate_nll`` on a grader-made model (``KnownModel``)
whose ``log_prob`` is a known function of each example, so 4a does not depend
on any other part of the student's code.  ``evaluate_nll`` may call the
student's ``nll_to_bits_per_dim``; the probe also returns what that function
gives for the student's NLL and the right number of dimensions, and the tests
accept that value too (a bug in 1b is graded in 1b only).

4b and 4c train the student's ``made.MADE`` / ``pixelcnn.PixelCNN`` with the
course library (``src.train.train_steps``: a fixed number of Adam steps on
``-model.log_prob(x).mean()``) on the fixed binarised-MNIST slice
``tests/data/mnist_slice.pt`` and return the model's ``log_prob`` of the slice's
test images, before and after training.
"""
from pathlib import Path

import torch
import torch.nn as nn

from . import probe

SLICE = Path(__file__).resolve().parents[3] / "tests" / "data" / "mnist_slice.pt"


def _generator(seed):
    return torch.Generator().manual_seed(int(seed))


# -- 4a ---------------------------------------------------------------------------------------------------
def known_log_prob(x):
    """The log-likelihood of ``KnownModel``: float64 ``(B,)``, exact multiples of 1/8.

    ``log p(x) = -(sum_d w_d x_d) / 8 - 3`` with ``w_d = d % 5 + 1``: every
    example gets its own value and every partial sum is exact in float32 too.
    """
    flat = x.reshape(x.shape[0], -1).double()
    weights = (torch.arange(flat.shape[1]) % 5 + 1).double()
    return -(flat * weights).sum(dim=1) / 8 - 3.0


class KnownModel(nn.Module):
    """A stand-in model: one parameter, ``log_prob(x) = known_log_prob(x)`` in float32."""

    def __init__(self):
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(()))
        self.examples_seen = 0
        self.calls = 0

    def forward(self, x):
        raise RuntimeError("evaluate_nll must call model.log_prob(x); model(x) gives logits, not log-likelihoods")

    def log_prob(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"model.log_prob(x) expects the batch tensor x, got a {type(x).__name__}: a batch "
                            f"(x, y) must be unpacked")
        self.calls += 1
        self.examples_seen += x.shape[0]
        # float32 and attached to the parameter, as a real model's log_prob would be
        return known_log_prob(x).float() + 0.0 * self.offset


def evaluation_data(seed, kind, n):
    """``n`` examples and labels: ``"binary_images"`` uint8 (n, 1, 28, 28) in {0, 1},
    ``"colour_images"`` int64 (n, 3, 4, 4) in 0..3, ``"vectors"`` float32 (n, 10) in {0, 1}.
    The last example is all ones (highest NLL), so that its batch differs from the others."""
    g = _generator(seed)
    if kind == "binary_images":
        x = (torch.rand(n, 1, 28, 28, generator=g) < 0.15).to(torch.uint8)
    elif kind == "colour_images":
        x = torch.randint(0, 4, (n, 3, 4, 4), generator=g)
    elif kind == "vectors":
        x = torch.randint(0, 2, (n, 10), generator=g).float()
    else:
        raise ValueError(kind)
    x[-1] = 3 if kind == "colour_images" else 1
    labels = torch.randint(0, 10, (n,), generator=g)
    return x, labels


def _batches(x, labels, batch_size, batching):
    if batching == "dataloader":  # yields lists [x, y]
        from torch.utils.data import DataLoader, TensorDataset
        return DataLoader(TensorDataset(x, labels), batch_size=batch_size, shuffle=False)
    if batching == "tuples":
        return [(xb, yb) for xb, yb in zip(x.split(batch_size), labels.split(batch_size))]
    if batching == "tensors":
        return list(x.split(batch_size))
    raise ValueError(batching)


def _number(value):
    kind = type(value).__module__ + "." + type(value).__qualname__
    if isinstance(value, torch.Tensor):
        return {"type": kind, "tensor": value.detach()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"type": kind, "float": float(value)}
    return {"type": kind}


@probe("autoregressive")
def evaluate(submission, *, seed, kind, n, batch_size, batching):
    """``evaluate_nll(KnownModel(), batches)`` on ``evaluation_data(seed, kind, n)`` in
    batches of ``batch_size`` (the last one smaller) given as ``batching``."""
    x, labels = evaluation_data(seed, kind, n)
    model = KnownModel()
    module = submission.autoregressive
    result = module.evaluate_nll(model, _batches(x, labels, batch_size, batching))
    out = {"type": type(result).__module__ + "." + type(result).__qualname__,
           "examples_seen": model.examples_seen}
    if isinstance(result, dict):
        out["keys"] = sorted(str(k) for k in result)
        for key in ("nll", "bits_per_dim"):
            if key in result:
                out[key] = _number(result[key])
        try:  # the student's own conversion of the student's NLL, with D = x[0].numel()
            out["consistent_bits"] = _number(module.nll_to_bits_per_dim(result["nll"], x[0].numel()))
        except Exception:  # noqa: BLE001  (1b is graded in 1b)
            pass
    return out


# -- 4b, 4c -----------------------------------------------------------------------------------------------
def load_slice():
    """The binarised part of the grading slice: uint8 ``(2000, 1, 28, 28)`` and ``(500, 1, 28, 28)``."""
    data = torch.load(SLICE, weights_only=True)
    return data["binary_train"], data["binary_test"]


@torch.no_grad()
def _log_probs_in_chunks(model, x, chunk=100):
    """``model.log_prob(x)`` computed 100 examples at a time (keeps the worker's peak memory low)."""
    parts = []
    for part in x.split(chunk):
        log_p = model.log_prob(part)
        if not isinstance(log_p, torch.Tensor) or tuple(log_p.shape) != (part.shape[0],):
            return log_p  # the test reports the wrong type or shape
        parts.append(log_p)
    return torch.cat(parts)


def _train_batches(train, num_train, batch_size, seed):
    perm = torch.randperm(num_train, generator=_generator(seed))
    return list(train[:num_train][perm].split(batch_size))


def _train_and_measure(model, train, test, *, seed, steps, batch_size, lr, num_train, before):
    """``steps`` Adam steps (``src.train.train_steps``) on the first ``num_train`` training examples;
    ``log_prob`` of ``test`` after (and, with ``before``, before) training, and the losses."""
    from src.train import train_steps

    out = {}
    if before:
        out["before"] = _log_probs_in_chunks(model, test)
    out["losses"] = train_steps(model, _train_batches(train, num_train, batch_size, seed), steps=steps, lr=lr,
                                seed=seed)
    out["after"] = _log_probs_in_chunks(model, test)
    return out


@probe("made", fresh_process=True)
def made_learning(submission, *, seed, steps, batch_size, lr, hidden_sizes, num_train, num_test, before=False):
    """Train ``MADE(784, hidden_sizes, 784)`` (one mask set, natural ordering, weights
    initialised after ``torch.manual_seed(seed)``) for ``steps`` Adam steps on the first
    ``num_train`` training images; return its ``log_prob`` ``(num_test,)`` of the first
    ``num_test`` test images (also before training, with ``before``) and the losses."""
    train, test = load_slice()
    train = train.reshape(train.shape[0], -1).float()
    test = test[:num_test].reshape(num_test, -1).float()
    torch.manual_seed(seed)
    model = submission.made.MADE(784, list(hidden_sizes), 784, num_masks=1, natural_ordering=True, seed=seed)
    return _train_and_measure(model, train, test, seed=seed, steps=steps, batch_size=batch_size, lr=lr,
                              num_train=num_train, before=before)


@probe("pixelcnn", fresh_process=True)
def pixelcnn_learning(submission, *, seed, steps, batch_size, lr, channels, num_blocks, kernel_size, num_train,
                      num_test, before=False):
    """Train ``PixelCNN(1, 2, channels, num_blocks, kernel_size)`` (see ``made_learning``)."""
    train, test = load_slice()
    train, test = train.long(), test[:num_test].long()
    torch.manual_seed(seed)
    model = submission.pixelcnn.PixelCNN(1, 2, channels=channels, num_blocks=num_blocks, kernel_size=kernel_size)
    return _train_and_measure(model, train, test, seed=seed, steps=steps, batch_size=batch_size, lr=lr,
                              num_train=num_train, before=before)


# -- helpers that run in the grader's process --------------------------------------------------------------
_KINDS = {"binary_images": "uint8 images of shape (1, 28, 28)", "colour_images": "int64 images of shape (3, 4, 4)",
          "vectors": "float32 vectors of length 10"}
_BATCHINGS = {"dataloader": "a DataLoader of [x, y] batches", "tuples": "a list of (x, y) tuples",
              "tensors": "a list of bare tensors x"}


def describe_evaluation(case):
    n, size = case["n"], case["batch_size"]
    sizes = [size] * (n // size) + ([n % size] if n % size else [])
    return (f"evaluate_nll(model, loader) with {n} {_KINDS[case['kind']]} in batches of {sizes} from "
            f"{_BATCHINGS[case['batching']]}")


def check_evaluation(out, case, *, strict_types, hidden=False):
    """Judge one result of the ``q4.evaluate`` probe against the contract's definition.

    ``strict_types``: a one-element tensor instead of a Python float fails (else it is
    read with ``.item()`` and only its value is judged).
    """
    import math

    from ..checks import fail

    what, name = "evaluate_nll", describe_evaluation(case)
    if "keys" not in out:
        fail(what, name, f"expected a dict with keys 'nll' and 'bits_per_dim', got {out['type']}")
    missing = [key for key in ("nll", "bits_per_dim") if key not in out["keys"]]
    if missing:
        fail(what, name, f"the returned dict lacks {missing}; it has the keys {out['keys']}")
    if out["examples_seen"] != case["n"]:
        fail(what, name, f"model.log_prob was given {out['examples_seen']} examples in all, expected each of the "
                         f"{case['n']} examples once")
    x, _ = evaluation_data(case["seed"], case["kind"], case["n"])
    expected_nll = -known_log_prob(x).mean().item()
    expected = {"nll": expected_nll, "bits_per_dim": expected_nll / (x[0].numel() * math.log(2.0))}
    meaning = {"nll": "the mean of -log p(x) over all examples, in nats",
               "bits_per_dim": "nll / (D * ln 2) with D = x[0].numel()"}

    def number(value, key):
        if "float" in value:
            return value["float"]
        if "tensor" in value and value["tensor"].numel() == 1 and (not strict_types or _type_from_1b(out, key)):
            return value["tensor"].double().item()
        if "tensor" in value:
            fail(what, name, f"result[{key!r}] should be a Python float, got a tensor of shape "
                             f"{tuple(value['tensor'].shape)} (use .item())")
        fail(what, name, f"result[{key!r}] should be a Python float, got {value['type']}")

    def close(actual, wanted):
        return abs(actual - wanted) <= 1e-6 * abs(wanted) + 1e-9

    for key in ("nll", "bits_per_dim"):
        actual = number(out[key], key)
        error = abs(actual - expected[key])
        if key == "bits_per_dim" and not close(actual, expected[key]) and "consistent_bits" in out:
            # your nll_to_bits_per_dim(nll, D) with the right D: a bug in it is graded in 1b only
            try:
                if close(actual, number(out["consistent_bits"], key)):
                    continue
            except AssertionError:
                pass
        if not close(actual, expected[key]):
            if hidden:
                fail(what, name, f"result[{key!r}] is not {meaning[key]}: it is off by {error:.4g} "
                                 f"({error / abs(expected[key]):.2%})")
            fail(what, name, f"result[{key!r}] should be {meaning[key]}: expected {expected[key]:.8g}, got "
                             f"{actual:.8g}")


def _type_from_1b(out, key):
    """True when ``result[key]`` is bits/dim of the type that the student's own
    ``nll_to_bits_per_dim`` returns for their (float) NLL: a wrong type there is graded in 1b."""
    consistent = out.get("consistent_bits")
    return (key == "bits_per_dim" and consistent is not None and "float" in out.get("nll", {})
            and consistent["type"] == out[key]["type"])


def check_float_types(out, case):
    """Both values of the dict must be Python floats (``float`` or a subclass)."""
    from ..checks import fail

    for key in ("nll", "bits_per_dim"):
        value = out.get(key) or {"type": "nothing"}
        if key in out and _type_from_1b(out, key):
            continue
        if "float" not in value or value["type"] in ("builtins.int",):
            fail("evaluate_nll", describe_evaluation(case), f"result[{key!r}] should be a Python float, got "
                                                            f"{value['type']} (use .item() or float(...))")


def describe_training(name, config):
    return (f"{name} trained by src.train.train_steps for {config['steps']} Adam steps (lr {config['lr']:g}, "
            f"batches of {config['batch_size']} of the first {config['num_train']} training images of the grading "
            f"slice), test NLL on {config['num_test']} test images")


def check_training(out, *, what, case, num_test):
    """Judge a learning probe's result; returns (test NLL before training or None, after), in nats.

    The test NLL is the mean over the test images of ``-model.log_prob(x)``, summed
    here in float64.
    """
    import math

    from ..checks import expect_finite, expect_tensor, fail

    if not all(isinstance(v, float) and math.isfinite(v) for v in out["losses"]):
        fail(what, case, "the training loss became NaN or infinite")
    nlls = []
    for key in ("before", "after"):
        if key not in out:
            nlls.append(None)
            continue
        label = f"{case}, {key} training"
        log_p = expect_tensor(out[key], what=f"{what}.log_prob", case=label, shape=(num_test,), dtype_kind="float")
        expect_finite(log_p, what=f"{what}.log_prob", case=label)
        nlls.append(-log_p.double().mean().item())
    return nlls
