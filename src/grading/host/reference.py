"""Expected values recorded from the reference solution (host side).

Tests build their inputs from fixed seeds and compare the student's outputs with
what the reference implementation gave on the same inputs.  Those values were
recorded by running the very same tests on the reference in record mode, and
are stored as float64 tensors:

* ``tests/fixtures/public.pt`` for public tests;
* ``HIDDEN_FIXTURES`` for hidden tests: on Gradescope only.

Where the hidden file is absent (a student's copy), ``ExpectedValuesAbsent``
turns a hidden test's outcome into "?" (ran without crashing; scored on Gradescope).
"""
import io
import os
from pathlib import Path

import torch

from ..errors import ExpectedValuesAbsent
from ..paths import PUBLIC_FIXTURES, ROOT
from .manifest import is_hidden

HIDDEN_TEST_DIR = ROOT / "tests" / "hidden"  # the students' copy: the hidden tests without their expected values
OUT_OF_DATE = "the recorded values are out of date (a grader problem, not your code)"
# BEGIN STAFF ONLY (tools/build_release.py leaves this out of the students' copy)
HIDDEN_TEST_DIR = ROOT / "hidden_tests"  # the staff's and Gradescope's copy, with fixtures/expected.pt
OUT_OF_DATE = "run python tools/make_fixtures.py (records them from solution/)"
# END STAFF ONLY
HIDDEN_FIXTURES = HIDDEN_TEST_DIR / "fixtures" / "expected.pt"


def _as_float64(value):
    if isinstance(value, torch.Tensor):  # a compact copy: torch.save writes the whole storage of a view
        dtype = torch.float64 if value.is_floating_point() else value.dtype
        return value.detach().to(dtype).clone(memory_format=torch.contiguous_format)
    if isinstance(value, float):
        return torch.tensor(value, dtype=torch.float64)
    if isinstance(value, (list, tuple)):
        return [_as_float64(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_float64(v) for k, v in value.items()}
    return value


def _load(path):
    return torch.load(path, weights_only=True) if path.exists() else None


def write_values(values, target):
    """Write recorded values to ``target``: the same values give the same bytes (keys sorted, compact
    tensors), and a grader reading the file never sees half of it."""
    buffer = io.BytesIO()
    torch.save(dict(sorted(values.items())), buffer)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, target)


class ReferenceStore:
    """All recorded values of one grading session (loaded once, written in record mode)."""

    def __init__(self, record=False):
        self.record = record
        self.values = {"public": {} if record else _load(PUBLIC_FIXTURES) or {},
                       "hidden": {} if record else _load(HIDDEN_FIXTURES)}
        self.recorded_tests = set()

    def lookup(self, test_id, key, actual):
        kind = "hidden" if is_hidden(test_id) else "public"
        full_key = f"{test_id}/{key}"
        if self.record:
            self.recorded_tests.add(test_id)
            self.values[kind][full_key] = _as_float64(actual)
            return self.values[kind][full_key]
        store = self.values[kind]
        if store is None:
            raise ExpectedValuesAbsent(full_key)
        if full_key not in store:
            raise KeyError(f"no recorded reference value {full_key!r}: {OUT_OF_DATE}")
        return store[full_key]

    def save(self, out_dir=None):
        """Write the recorded values, keeping those of tests that did not run this time.

        ``out_dir`` (default: in place) receives ``public.pt`` and ``expected.pt``.
        Each file also holds ``_meta``: the torch version that computed it.
        """
        for kind, path in (("public", PUBLIC_FIXTURES), ("hidden", HIDDEN_FIXTURES)):
            kept = {k: v for k, v in (_load(path) or {}).items()
                    if k != "_meta" and k.split("/", 1)[0] not in self.recorded_tests}
            values = {**kept, **self.values[kind], "_meta": {"torch_version": str(torch.__version__)}}
            write_values(values, Path(out_dir) / path.name if out_dir else path)


class Reference:
    """The ``reference`` fixture of one test: ``reference(key, actual) -> expected``."""

    def __init__(self, store, test_id):
        self.store, self.test_id = store, test_id

    def __call__(self, key, actual):
        return self.store.lookup(self.test_id, key, actual)
