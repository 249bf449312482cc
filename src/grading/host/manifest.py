"""The points manifest (host side), ``tests/points.json``: the one place where points live.

Shape (as in XCS courses)::

    {"regular_points": 40,
     "questions": {"2b": {"title": ..., "type": "coding"|"written", "file": "made.py", "extra_credit": false}},
     "tests": {"2b-0-basic": {"points": 1.0, "question": "2b", "type": "coding", "extra_credit": false}}}

A test id is ``<question>-<n>-<kind>``: ``basic`` tests are public, ``hidden``
tests are graded on Gradescope only, ``written`` ones are graded by hand.
"""
import json
from functools import lru_cache
from pathlib import Path

from gradescope_utils.autograder_utils.decorators import number, partial_credit, visibility, weight

from ..paths import MANIFEST_PATH



@lru_cache(maxsize=None)
def load_manifest(path=MANIFEST_PATH):
    return json.loads(Path(path).read_text())


def is_hidden(test_id):
    return test_id.endswith("-hidden")


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
        func = visibility("after_published" if is_hidden(test_id) else "visible")(func)
        func.__test_id__ = test_id
        return func

    return decorate
