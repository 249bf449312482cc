"""``@graded("2b-0-basic")`` (host side): a test's points, number and visibility from the manifest."""
import functools

from gradescope_utils.autograder_utils.decorators import number, partial_credit, visibility, weight

from .manifest import load_manifest, visibility_of


def graded(test_id, partial=False):
    """Decorate a pytest test with its points, number and visibility from the manifest.

    Uses gradescope-utils' decorators, so the attributes are the usual
    ``__weight__``, ``__number__`` and ``__visibility__``; ``__test_id__`` names
    the manifest entry.  ``partial=True`` wraps the test with ``partial_credit``:
    the test then takes ``set_score=None`` and calls ``set_score(points)``; ``set_score.total`` is the test's
    points (what ``SubCases()`` scales its parts to).
    """
    entry = load_manifest()["tests"][test_id]

    def decorate(func):
        func = partial_credit(entry["points"])(_knowing_total(func, entry["points"])) if partial else \
            weight(entry["points"])(func)
        func = number(test_id)(func)
        func = visibility(visibility_of(test_id))(func)
        func.__test_id__ = test_id
        return func

    return decorate


class _ScoreSetter:
    """gradescope-utils' ``set_score``, which also knows the test's total."""

    def __init__(self, set_score, total):
        self.set_score, self.total = set_score, float(total)

    def __call__(self, score):
        self.set_score(score)


def _knowing_total(func, total):
    @functools.wraps(func)
    def test(*args, set_score=None, **kwargs):
        return func(*args, set_score=_ScoreSetter(set_score, total), **kwargs)

    return test
