"""The partial-credit runner and the goodness-of-fit test shared by the graded tests (src/grading/)."""
import pytest
import torch

from src.grading.host.judging.checks import fail
from src.grading.host.judging.subcases import SubCases, run_subcases, take_parts
from src.grading.host.judging.goodness_of_fit import chi_square_p_value
from src.grading.errors import ExpectedValuesAbsent
from src.grading.errors import StudentCodeError


def _wrong():
    fail("made.MADE.forward", "MADE(4, [8], 4)", "wrong logits")


def _not_implemented():
    raise StudentCodeError("made.MADE.sample: not implemented yet", not_implemented=True)


def _absent():
    raise ExpectedValuesAbsent("1a-1-hidden: expected values are not in this copy")


class _Score:
    """A ``set_score`` as ``@graded(..., partial=True)`` passes it: it knows the test's total."""

    def __init__(self, total):
        self.total, self.value = total, None

    def __call__(self, value):
        self.value = value


def _score(parts, total=None):
    """``run_subcases(parts)`` in a test whose total in tests/points.json is ``total`` (by default what the parts
    add up to); returns ``([score], error)``."""
    score = _Score(sum(part[1] for part in parts) if total is None else total)
    try:
        run_subcases(parts, score)
    except (AssertionError, ExpectedValuesAbsent) as error:
        return [score.value], error
    return [score.value], None


def test_passing_parts_add_their_points():
    assert _score([("a", 0.25, lambda: None), ("b", 0.5, lambda: None)]) == ([0.75], None)


def test_failures_are_listed_once_each_and_the_rest_still_counts():
    scores, error = _score([("a", 0.25, _wrong), ("b", 0.5, lambda: None), ("c", 0.25, _wrong)])
    assert scores == [0.5] and type(error) is AssertionError
    lines = str(error).splitlines()
    assert lines[0] == "2 of 3 parts failed:"
    assert lines[1] == "- [a, 0.25 pt] made.MADE.forward [MADE(4, [8], 4)]: wrong logits"
    assert lines[2] == "- [c, 0.25 pt] (same error as above)"


def test_student_code_errors_stay_student_code_errors():
    scores, error = _score([("a", 0.5, _wrong), ("b", 0.5, _not_implemented)])
    assert scores == [0.0] and isinstance(error, StudentCodeError) and error.not_implemented
    assert "not implemented yet" in str(error) and "wrong logits" in str(error)


def test_missing_hidden_values_are_raised_when_nothing_else_failed_and_noted_otherwise():
    scores, error = _score([("a", 0.5, lambda: None), ("b", 0.5, _absent)])
    assert scores == [0.5] and isinstance(error, ExpectedValuesAbsent)
    scores, error = _score([("a", 0.5, _wrong), ("b", 0.5, _absent)])
    assert scores == [0.0] and "verdict is unknown in this copy" in str(error)


def test_each_parts_outcome_is_handed_to_the_plugin():
    take_parts()
    _score([("a", 0.25, _wrong), ("b", 0.5, lambda: None), ("c", 0.25, _absent)])
    assert take_parts() == [{"name": "a", "points": 0.25, "earned": 0.0}, {"name": "b", "points": 0.5, "earned": 0.5},
                            {"name": "c", "points": 0.25, "earned": None}]
    assert take_parts() == []


def test_the_parts_must_add_up_to_the_declared_total():
    cases = SubCases(1.0)
    with cases.case(0.5, "a"):
        pass
    with pytest.raises(AssertionError, match="add up to 0.5, not 1.0"):
        cases.finish(lambda score: None)


def test_chi_square_accepts_a_true_sampler_and_rejects_a_wrong_one():
    generator = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.03125, 0.03125])
    codes = torch.multinomial(probs, 4000, replacement=True, generator=generator)
    p_value, stat, df = chi_square_p_value(codes, probs.log())
    assert p_value > 1e-3 and df == 5 and stat >= 0
    swapped = probs[[1, 0, 2, 3, 4, 5]]  # a sampler that confuses the first two outcomes
    assert chi_square_p_value(codes, swapped.log())[0] < 1e-6
    # cells expecting fewer than 5 samples are pooled; a code out of range has probability 0
    rare = torch.tensor([0.999, 0.0005, 0.0005])
    assert chi_square_p_value(torch.zeros(1000, dtype=torch.long), rare.log())[2] == 1
    assert chi_square_p_value(torch.tensor([0, 6]), probs.log())[0] == 0.0


def test_a_part_that_requires_a_failed_part_earns_nothing_and_says_which():
    scores, error = _score([("values", 0.5, _wrong), ("vectorised", 0.25, lambda: None, "values"),
                            ("cycling", 0.25, lambda: None, ("vectorised",))])
    assert scores == [0.0]
    text = str(error)
    assert text.startswith("3 of 3 parts failed:")
    assert "[vectorised, 0.25 pt] not credited" in text and "'values'" in text
    assert "[cycling, 0.25 pt] not credited" in text and "'vectorised'" in text


def test_a_part_whose_required_parts_pass_earns_its_points():
    assert _score([("vectorised", 0.25, lambda: None, "values"), ("values", 0.75, lambda: None)]) == ([1.0], None)


def test_a_required_part_with_unknown_verdict_leaves_the_part_unknown():
    scores, error = _score([("values", 0.5, _absent), ("vectorised", 0.5, lambda: None, "values")])
    assert scores == [0.0] and isinstance(error, ExpectedValuesAbsent)


def test_requires_must_name_a_part_of_the_test():
    with pytest.raises(AssertionError, match="requires names no part"):
        run_subcases([("a", 1.0, lambda: None, "typo")], _Score(1.0))


def test_run_subcases_takes_the_manifests_total_and_scales_the_parts_to_it():
    """As ``SubCases()``: the parts' points are shares of the test's total in tests/points.json."""
    take_parts()
    scores, error = _score([("a", 0.1, lambda: None), ("b", 0.1, lambda: None), ("c", 0.2, _wrong)], total=2.0)
    assert scores == [pytest.approx(1.0)] and "- [c, 1 pt] made.MADE.forward" in str(error)
    assert [p["points"] for p in take_parts()] == [0.5, 0.5, 1.0]


def test_subcases_without_a_total_take_the_manifests_and_scale_the_parts_to_it():
    """``SubCases()``: the total comes from tests/points.json (``set_score.total``); parts that add up to it keep
    their points, parts that do not are shares of it (a part added to a test needs no rebalancing by hand)."""
    exact, score = SubCases(), _Score(1.0)
    with exact.case(0.75, "a"):
        pass
    with exact.case(0.25, "b"):
        fail("f", "case", "wrong")
    with pytest.raises(AssertionError, match=r"\[b, 0.25 pt\]"):
        exact.finish(score)
    assert score.value == 0.75 and [p[1] for p in exact.parts] == [0.75, 0.25]
    take_parts()
    shares, score = SubCases(), _Score(2.0)
    for name in ("a", "b", "c"):
        with shares.case(0.1, name):
            if name == "c":
                fail("f", "case", "wrong")
    with pytest.raises(AssertionError, match=r"\[c, 0.666667 pt\]"):
        shares.finish(score)
    assert score.value == pytest.approx(4 / 3, abs=1e-6)
    assert [p["points"] for p in take_parts()] == [0.666667] * 3
