"""``@graded("2b-0-basic")`` (host side): a test's points, number and visibility from the manifest."""
from gradescope_utils.autograder_utils.decorators import number, partial_credit, visibility, weight

from .manifest import load_manifest, visibility_of


def graded(test_id, partial=False):
    """Decorate a pytest test with its points, number and visibility from the manifest.

    Uses gradescope-utils' decorators, so the attributes are the usual
    ``__weight__``, ``__number__`` and ``__visibility__``; ``__test_id__`` names
    the manifest entry.  ``partial=True`` wraps the test with ``partial_credit``:
    the test then takes ``set_score=None`` and calls ``set_score(points)``.
    """
    entry = load_manifest()["tests"][test_id]

    def decorate(func):
        func = partial_credit(entry["points"])(func) if partial else weight(entry["points"])(func)
        func = number(test_id)(func)
        func = visibility(visibility_of(test_id))(func)
        func.__test_id__ = test_id
        return func

    return decorate
