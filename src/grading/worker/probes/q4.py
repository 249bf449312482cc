"""Probes for Question 4 (worker side): ``evaluate_nll`` (4a) and the learning tests (4b, 4c).

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
import torch
import torch.nn as nn

from ...inputs import evaluation_data, known_log_prob, seeded_generator
from ...paths import GRADING_SLICE as SLICE
from .registry import probe

# -- 4a ---------------------------------------------------------------------------------------------------
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
    perm = torch.randperm(num_train, generator=seeded_generator(seed))
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
