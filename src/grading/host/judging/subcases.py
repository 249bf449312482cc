"""Partial credit (host side): a test's graded parts, each adding its points when it passes."""
import contextlib

from ...errors import ExpectedValuesAbsent, StudentCodeError

_FINISHED_PARTS = []  # the parts of the tests finished since the plugin last took them (take_parts)


def take_parts():
    """The parts finished since the last call, as ``[{"name", "points", "earned"}, ...]`` (``earned`` None:
    unknown in this copy; plus what the part noted, such as ``"ran_on"``); the plugin takes them after each
    test and writes them into results.json."""
    parts = [{"name": name, "points": points, "earned": earned, **notes}
             for name, points, earned, notes in _FINISHED_PARTS]
    _FINISHED_PARTS.clear()
    return parts


class SubCases:
    """The parts of a partial-credit test: each part adds its points when its block passes.

    Use ``with cases.case(points, name): ...`` for each part, then
    ``cases.finish(set_score)``.  ``SubCases()`` takes the test's total from ``tests/points.json`` (through the
    ``set_score`` of ``@graded(..., partial=True)``) and scales the parts' points to it, so that adding a part
    changes only the test file; ``SubCases(total)`` insists that the parts add up to ``total``.
    :func:`run_subcases` does what ``SubCases()`` does for a list of functions.  A failing part is recorded and
    the next one runs.  ``finish`` sets the score and raises one error listing every failed part: a
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
    ``parts`` lists each part's outcome, ``(name, points, earned, notes)`` (``earned``
    None: unknown here), after the ``requires`` rule; ``finish`` hands them to
    the plugin (:func:`take_parts`), which writes them into results.json.
    """

    def __init__(self, total=None):
        self.total, self.declared, self.earned, self.count = total, 0.0, 0.0, 0
        self.failures, self.student_error, self.absent = [], None, None
        self.stub_part = False  # a part failed because the student's function is not implemented yet
        self.verdicts, self.gated = {}, []  # name -> "passed" / "failed" / "absent"; parts with requires
        self.order = []  # (name, points) of each part, in the order they ran
        self.notes = {}  # name -> what the part noted for results.json (the dict that case() yields)
        self.scale = 1.0  # points in the test's total per point given to case(); set by finish

    @contextlib.contextmanager
    def case(self, points, name, requires=()):
        """One graded part; ``requires``: name(s) of the parts that must also pass for it to earn points.

        Yields a dict: what the block puts there (``notes["ran_on"] = [...]``) goes with the part into
        results.json."""
        self.declared += points
        self.count += 1
        self.order.append((name, points))
        self.verdicts[name] = "failed"
        self.notes[name] = {}
        try:
            yield self.notes[name]
        except ExpectedValuesAbsent as error:
            self.absent = self.absent or error
            self.verdicts[name] = "absent"
        except StudentCodeError as error:
            self.student_error = self.student_error or error
            self.stub_part = self.stub_part or error.kind == "not_implemented"
            self.failures.append((name, points, str(error)))
        except AssertionError as error:
            self.failures.append((name, points, str(error)))
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
                self.failures.append((name, points,
                                      f"not credited: what this part checks holds even for code that computes "
                                      f"nothing, so its points need a correct result in {missing}, which failed"))

    def _points(self, points):
        """A part's points in the test's total (``SubCases()``: its share scaled to the manifest's total)."""
        return points if self.scale == 1.0 else round(points * self.scale, 6)

    @property
    def parts(self):
        """``[(name, points, earned, notes), ...]`` in the order the parts ran; ``earned`` None: unknown here."""
        def earned(name, points):
            verdict = self.verdicts[name]
            return points if verdict == "passed" else None if verdict == "absent" else 0.0

        return [(name, self._points(points), earned(name, self._points(points)), self.notes[name])
                for name, points in self.order]

    def _scale_to(self, set_score):
        """Fix ``total`` and ``scale``: the parts' points as given, or (``SubCases()``) as shares of the
        manifest's total for this test."""
        if self.total is None:
            self.total = float(set_score.total)
            self.scale = 1.0 if abs(self.declared - self.total) < 1e-9 else self.total / self.declared
        else:
            assert abs(self.declared - self.total) < 1e-9, \
                f"the parts' points add up to {self.declared}, not {self.total}"
            self.scale = 1.0

    def finish(self, set_score):
        self._scale_to(set_score)
        unknown = [r for _, _, requires in self.gated for r in requires if r not in self.verdicts]
        assert not unknown, f"requires names no part of this test: {unknown}"
        self._credit_gated_parts()
        earned = self.earned if self.scale == 1.0 else self.earned * self.scale
        set_score(round(min(earned, self.total), 6))
        _FINISHED_PARTS.extend(self.parts)
        if not self.failures:
            if self.absent is not None:
                raise self.absent
            return
        lines, seen = [], set()
        for name, points, message in self.failures:
            label = f"{name}, {self._points(points):g} pt"
            lines.append(f"- [{label}] " + ("(same error as above)" if message in seen else message))
            seen.add(message)
        message = f"{len(self.failures)} of {self.count} parts failed:\n" + "\n".join(lines)
        if self.absent is not None:
            message += ("\n(the score shown counts only the parts judged here: the others need the hidden values, "
                        "so their verdict is unknown in this copy)")
        if self.student_error is not None:
            raise StudentCodeError(message, kind="not_implemented" if self.stub_part else self.student_error.kind)
        raise AssertionError(message)


def run_subcases(subcases, set_score):
    """Run graded parts ``[(name, points, function), ...]`` with ``SubCases()`` (the total from tests/points.json,
    the parts' points as shares of it); a part may add a fourth element, the ``requires`` of :meth:`SubCases.case`."""
    cases = SubCases()
    for name, points, function, *requires in subcases:
        with cases.case(points, name, requires=requires[0] if requires else ()):
            function()
    cases.finish(set_score)
