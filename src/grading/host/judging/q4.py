"""Judging of Question 4 (host side): ``evaluate_nll``'s result against its definition, and the learning tests."""
import math

from ...inputs import evaluation_data, known_log_prob
from .checks import expect_finite, expect_tensor, fail


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
    losses = out["losses"]
    bad = next((step for step, v in enumerate(losses, 1) if not (isinstance(v, float) and math.isfinite(v))), None)
    if bad == 1:
        fail(what, case, f"the training loss -{what}.log_prob(x).mean() was NaN or infinite at step 1 of "
                         f"{len(losses)}, before any update: {what}.log_prob returns NaN or infinity on training "
                         "images")
    if bad is not None:
        fail(what, case, f"the training loss -{what}.log_prob(x).mean() became NaN or infinite at step {bad} of "
                         f"{len(losses)} (finite before): after {bad - 1} updates {what}.log_prob gives NaN or "
                         "infinity: a log of a probability that reached 0 (use log-softmax or "
                         "binary_cross_entropy_with_logits), or gradients that made a weight NaN")
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


def other_findings(problems, limit=4):
    """The end of a learning test's message: what other tests of this grade found in the code the training
    uses (``problems``: lines from the ``known_problems`` fixture), or "" when they found nothing."""
    if not problems:
        return ""
    lines = [f"- {line[:300]}" for line in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"- ... and {len(problems) - limit} more")
    return "\nOther tests of this grade found problems in the code this training uses (fix those first):\n" + \
        "\n".join(lines)
