"""Assertions with messages that say what was called, on what, and what came back.

Every failure message names the student function (``what``), the input case
(``case``), what was expected and what came back.  For hidden tests pass
``hidden=True``: the message then gives the size of the error but never the
expected values.
"""
import contextlib

import torch


def _describe(value):
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:200]


def fail(what, case, problem):
    raise AssertionError(f"{what} [{case}]: {problem}")


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


def needs(result, *, what, case, part=None):
    """A part that reuses the result of a probe run by an earlier part (``part``), which raised (``result`` is
    None only then: the parts collect their results before they judge them)."""
    if result is None:
        where = f"part '{part}'" if part else "the first failed part"
        fail(what, case, f"not checked: this part uses what your code returned in {where}, where it raised an error "
                         "(see that part)")
    return result


_FINISHED_PARTS = []  # the parts of the tests finished since the plugin last took them (take_parts)


def take_parts():
    """The parts finished since the last call, as ``[{"name", "points", "earned"}, ...]`` (``earned`` None:
    unknown in this copy); the plugin takes them after each test and writes them into results.json."""
    parts = [{"name": name, "points": points, "earned": earned} for name, points, earned in _FINISHED_PARTS]
    _FINISHED_PARTS.clear()
    return parts


class SubCases:
    """The parts of a partial-credit test: each part adds its points when its block passes.

    Use ``with cases.case(points, name): ...`` for each part, then
    ``cases.finish(set_score)``; :func:`run_subcases` does the same for a list of
    functions.  A failing part is recorded and the next one runs.  ``finish`` sets
    the score and raises one error listing every failed part: a
    ``StudentCodeError`` if the student's code raised, timed out or crashed in any
    of them (so that its traceback is shown even where hidden verdicts are not).
    A missing hidden reference value is re-raised when nothing failed, and noted
    when something did.

    No points without a correct result: a part that judges speed, structure or a
    property (vectorised, autoregressive, number of forward passes, reproducible,
    masks untouched, ...), which a function that computes nothing could pass, names
    with ``requires`` the part(s) that check a correct result of the same function
    (usually on the same call).  It earns its points only if those parts passed
    too (and their own ``requires``, in turn); otherwise it is listed as failed,
    saying which part it needed.
    ``parts`` lists each part's outcome, ``(name, points, earned)`` (``earned``
    None: unknown here), after the ``requires`` rule; ``finish`` hands them to
    the plugin (:func:`take_parts`), which writes them into results.json.
    """

    def __init__(self, total):
        self.total, self.declared, self.earned, self.count = total, 0.0, 0.0, 0
        self.failures, self.student_error, self.absent = [], None, None
        self.verdicts, self.gated = {}, []  # name -> "passed" / "failed" / "absent"; parts with requires
        self.order = []  # (name, points) of each part, in the order they ran

    @contextlib.contextmanager
    def case(self, points, name, requires=()):
        """One graded part; ``requires``: name(s) of the parts that must also pass for it to earn points."""
        from .reference import ExpectedValuesAbsent
        from .sandbox import StudentCodeError

        self.declared += points
        self.count += 1
        self.order.append((name, points))
        self.verdicts[name] = "failed"
        try:
            yield
        except ExpectedValuesAbsent as error:
            self.absent = self.absent or error
            self.verdicts[name] = "absent"
        except StudentCodeError as error:
            self.student_error = self.student_error or error
            self.failures.append((f"{name}, {points:g} pt", str(error)))
        except AssertionError as error:
            self.failures.append((f"{name}, {points:g} pt", str(error)))
        else:
            self.verdicts[name] = "passed"
            requires = (requires,) if isinstance(requires, str) else tuple(requires)
            if requires:
                self.gated.append((name, points, requires))
            else:
                self.earned += points

    def _credit_gated_parts(self):
        """Credit each passed part whose required parts passed (transitively); list the others as failed."""
        changed = True
        while changed:  # a part whose requirement is not credited is not credited either
            changed = False
            for name, _, requires in self.gated:
                if self.verdicts[name] == "passed" and any(self.verdicts.get(r) != "passed" for r in requires):
                    unknown = all(self.verdicts.get(r) in ("passed", "absent") for r in requires)
                    self.verdicts[name] = "absent" if unknown else "not credited"
                    changed = True
        for name, points, requires in self.gated:
            if self.verdicts[name] == "passed":
                self.earned += points
            elif self.verdicts[name] == "not credited":
                missing = ", ".join(f"'{r}'" for r in requires if self.verdicts.get(r) != "passed")
                self.failures.append((f"{name}, {points:g} pt",
                                      f"not credited: what this part checks holds even for code that computes "
                                      f"nothing, so its points need a correct result in {missing}, which failed"))

    @property
    def parts(self):
        """``[(name, points, earned), ...]`` in the order the parts ran; ``earned`` None: unknown here."""
        def earned(name, points):
            verdict = self.verdicts[name]
            return points if verdict == "passed" else None if verdict == "absent" else 0.0

        return [(name, points, earned(name, points)) for name, points in self.order]

    def finish(self, set_score):
        from .sandbox import StudentCodeError

        assert abs(self.declared - self.total) < 1e-9, f"the parts' points add up to {self.declared}, not {self.total}"
        unknown = [r for _, _, requires in self.gated for r in requires if r not in self.verdicts]
        assert not unknown, f"requires names no part of this test: {unknown}"
        self._credit_gated_parts()
        set_score(round(min(self.earned, self.total), 6))
        _FINISHED_PARTS.extend(self.parts)
        if not self.failures:
            if self.absent is not None:
                raise self.absent
            return
        lines, seen = [], set()
        for name, message in self.failures:
            lines.append(f"- [{name}] " + ("(same error as above)" if message in seen else message))
            seen.add(message)
        message = f"{len(self.failures)} of {self.count} parts failed:\n" + "\n".join(lines)
        if self.absent is not None:
            message += ("\n(the score shown counts only the parts judged here: the others need the hidden values, "
                        "so their verdict is unknown in this copy)")
        if self.student_error is not None:
            raise StudentCodeError(message, not_implemented=self.student_error.not_implemented)
        raise AssertionError(message)


def run_subcases(subcases, set_score):
    """Run graded parts ``[(name, points, function), ...]`` with :class:`SubCases`; a part may add a fourth
    element, the ``requires`` of :meth:`SubCases.case`."""
    cases = SubCases(sum(part[1] for part in subcases))
    for name, points, function, *requires in subcases:
        with cases.case(points, name, requires=requires[0] if requires else ()):
            function()
    cases.finish(set_score)
