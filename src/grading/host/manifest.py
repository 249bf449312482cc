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

from ..paths import MANIFEST_PATH


@lru_cache(maxsize=None)
def load_manifest(path=MANIFEST_PATH):
    return json.loads(Path(path).read_text())


def question_of(test_id):
    """``"2b"`` for ``"2b-1-hidden"``."""
    return test_id.split("-")[0]


def is_hidden(test_id):
    """Hidden tests are graded on Gradescope only; their expected values never reach a student."""
    return test_id.endswith("-hidden")


def visibility_of(test_id):
    """Gradescope's visibility: a hidden test's result shows once the grades are published."""
    return "after_published" if is_hidden(test_id) else "visible"


def is_selected(test_id, selection):
    """Whether ``selection`` (test ids and question ids; empty or None: everything) takes ``test_id``."""
    return not selection or test_id in selection or question_of(test_id) in selection
