"""The partial-credit runner shared by the graded tests (src/grading/checks.py)."""
import pytest

from src.grading.checks import SubCases, fail, run_subcases
from src.grading.reference import ExpectedValuesAbsent
from src.grading.sandbox import StudentCodeError


def _wrong():
    fail("made.MADE.forward", "MADE(4, [8], 4)", "wrong logits")


def _not_implemented():
    raise StudentCodeError("made.MADE.sample: not implemented yet", not_implemented=True)


def _absent():
    raise ExpectedValuesAbsent("1a-1-hidden: expected values are not in this copy")


def _score(parts):
    scores = []
    try:
        run_subcases(parts, scores.append)
    except (AssertionError, ExpectedValuesAbsent) as error:
        return scores, error
    return scores, None


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


def test_the_parts_must_add_up_to_the_declared_total():
    cases = SubCases(1.0)
    with cases.case(0.5, "a"):
        pass
    with pytest.raises(AssertionError, match="add up to 0.5, not 1.0"):
        cases.finish(lambda score: None)
