"""Checks (host side): assertions with messages that say what was called, on what, and what came back.

Every failure message names the student function (``what``), the input case
(``case``), what was expected and what came back.  For hidden tests pass
``hidden=True``: the message then gives the size of the error but never the
expected values.
"""
import torch


def _describe(value):
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:200]


def fail(what, case, problem):
    raise AssertionError(f"{what} [{case}]: {problem}")


def needs(result, *, what, case, part=None):
    """A part that reuses the result of a probe run by an earlier part (``part``), which raised (``result`` is
    None only then: the parts collect their results before they judge them)."""
    if result is None:
        where = f"part '{part}'" if part else "the first failed part"
        fail(what, case, f"not checked: this part uses what your code returned in {where}, where it raised an error "
                         "(see that part)")
    return result


def expect_tensor(value, *, what, case, shape=None, dtype_kind=None):
    """Check type, shape and dtype kind (``"float"``, ``"int"`` or ``"bool"``) of a result."""
    if not isinstance(value, torch.Tensor):
        fail(what, case, f"expected a torch.Tensor, got {_describe(value)}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        fail(what, case, f"expected shape {tuple(shape)}, got {tuple(value.shape)}")
    kinds = {"float": value.is_floating_point(), "bool": value.dtype == torch.bool,
             "int": not value.is_floating_point() and not value.is_complex() and value.dtype != torch.bool}
    if dtype_kind is not None and not kinds[dtype_kind]:
        fail(what, case, f"expected a {dtype_kind} tensor, got dtype {value.dtype}")
    return value


def expect_finite(value, *, what, case):
    value = expect_tensor(value, what=what, case=case)
    if value.is_floating_point() and not torch.isfinite(value).all():
        bad = (~torch.isfinite(value)).sum().item()
        fail(what, case, f"{bad} of {value.numel()} entries are NaN or infinite")
    return value


def expect_close(actual, expected, *, what, case, atol=1e-5, rtol=1e-5, hidden=False):
    """Compare a result with the reference value within ``atol + rtol * |expected|``."""
    expected = torch.as_tensor(expected)
    actual = expect_tensor(actual, what=what, case=case, shape=expected.shape)
    actual = expect_finite(actual, what=what, case=case).double()
    expected = expected.double()
    error = (actual - expected).abs()
    allowed = atol + rtol * expected.abs()
    if bool((error <= allowed).all()):
        return
    worst = int((error - allowed).argmax())
    where = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), error.shape)) if error.dim() else ()
    if hidden:
        fail(what, case, f"differs from the reference solution: largest error {error.max().item():.3g} "
                         f"(tolerance {atol:g} + {rtol:g}*|expected|), at index {where}")
    fail(what, case, f"expected {expected.flatten()[worst].item():.6g} at index {where}, "
                     f"got {actual.flatten()[worst].item():.6g} (tolerance {atol:g} + {rtol:g}*|expected|); "
                     f"{int((error > allowed).sum())} of {error.numel()} entries differ")


def expect_equal(actual, expected, *, what, case, hidden=False):
    expected = torch.as_tensor(expected)
    actual = expect_tensor(actual, what=what, case=case, shape=expected.shape)
    mismatched = actual.to(expected.dtype) != expected
    if not bool(mismatched.any()):
        return
    count = int(mismatched.sum())
    if hidden:
        fail(what, case, f"{count} of {mismatched.numel()} entries differ from the reference solution")
    index = tuple(int(i) for i in mismatched.nonzero()[0])
    fail(what, case, f"{count} of {mismatched.numel()} entries differ; at index {index} expected "
                     f"{expected[index].item()}, got {actual[index].item()}")


NORMALISATION_ATOL = 1e-4  # |sum over all outcomes of exp(log_prob) - 1|: float32 log-probabilities, any order


def normalisation_problem(log_probs, outcomes):
    """None if ``exp(log_probs)`` (float, one per possible outcome) sums to 1 within ``NORMALISATION_ATOL``,
    else what is wrong; ``outcomes`` names them ("16 binary inputs")."""
    total = log_probs.double().exp().sum().item()
    if abs(total - 1.0) <= NORMALISATION_ATOL:
        return None
    return f"exp(log_prob) should sum to 1 over all {outcomes}, got {total:.6g}"


def expect_sums_to_one(log_probs, *, what, case, outcomes, hint=""):
    """Fail unless ``exp(log_probs)`` sums to 1 over all outcomes (``normalisation_problem``); ``hint`` ends the
    message."""
    problem = normalisation_problem(log_probs, outcomes)
    if problem:
        fail(what, case, problem + hint)
