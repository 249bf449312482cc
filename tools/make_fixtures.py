"""Regenerate the reference values that the tests compare against, from solution/.

Runs every public and hidden test on ``solution/`` in record mode: each
``reference(key, actual)`` call stores the reference's own value (float64).
Then it says which values changed and by how much, and writes
``tests/fixtures/public.pt`` and ``hidden_tests/fixtures/expected.pt``.

A value that moved by no more than ``RTOL``/``ATOL`` is not a change: the
committed value stays, and a file whose values all stay is not rewritten.  Such
moves are expected between machines: torch picks its vectorised kernels by CPU
(``torch.backends.cpu.get_cpu_capability()``: AVX2, AVX512, ...), and they sum
in different orders (``1a-0-basic/categorical/1`` differs by 3.6e-15 between
AVX2 and AVX512).  On one machine with one torch, recording gives the same
bytes every time (keys sorted, compact tensors: ``reference.write_values``).

    python tools/make_fixtures.py           # regenerate in place
    python tools/make_fixtures.py --check   # exit 1 if the committed files disagree with solution/
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from src.grading.host.reference import HIDDEN_FIXTURES, PUBLIC_FIXTURES, write_values  # noqa: E402

RTOL, ATOL = 1e-9, 1e-12  # float64 values from the same code: only the last bits may move


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}/{key}" if prefix else key)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def compare(old, new, moved=None):
    """Lines describing how ``new`` differs from ``old`` (empty when they agree within RTOL/ATOL).

    ``moved``, a list, receives ``(key, max abs difference)`` of the values that moved within the tolerance.
    """
    old = dict(_flatten({k: v for k, v in old.items() if k != "_meta"}))
    new = dict(_flatten({k: v for k, v in new.items() if k != "_meta"}))
    lines = [f"  added    {key}" for key in sorted(new.keys() - old.keys())]
    lines += [f"  removed  {key}" for key in sorted(old.keys() - new.keys())]
    for key in sorted(old.keys() & new.keys()):
        a, b = old[key], new[key]
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            if a.shape != b.shape or a.dtype != b.dtype:
                lines.append(f"  changed  {key}: {a.dtype}{tuple(a.shape)} -> {b.dtype}{tuple(b.shape)}")
            elif not torch.equal(a, b):
                diff = (a.double() - b.double()).abs().max().item()
                if torch.allclose(a.double(), b.double(), rtol=RTOL, atol=ATOL, equal_nan=True):
                    if moved is not None and diff > 0:  # NaN == NaN counts as equal
                        moved.append((key, diff))
                else:
                    lines.append(f"  changed  {key}: max abs difference {diff:.3g}")
        elif a != b:
            lines.append(f"  changed  {key}: {a!r} -> {b!r}")
    return lines


def merge(old, new):
    """``new``, except that every test value (top-level key) that agrees with ``old`` keeps ``old``'s:
    recording again changes only what changed.  ``_meta`` follows the new values if any changed."""
    merged = {key: old[key] if key in old and not compare({key: old[key]}, {key: value}) else value
              for key, value in new.items() if key != "_meta"}
    merged["_meta"] = new["_meta"] if compare(old, new) or "_meta" not in old else old["_meta"]
    return merged


def record(out_dir):
    command = [sys.executable, "-m", "pytest", "-q", "-p", "src.grading.host.plugin", "-p", "no:cacheprovider",
               "tests", "hidden_tests", "--submission", "solution", "--record-fixtures", "--fixtures-out", str(out_dir)]
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"the reference solution failed some tests (pytest exit {result.returncode}); fixtures not written")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed files")
    args = parser.parse_args(argv)
    print(f"recording with torch {torch.__version__} (seeds are fixed in the probes)")
    with tempfile.TemporaryDirectory() as tmp:
        record(tmp)
        stale = False
        for committed in (PUBLIC_FIXTURES, HIDDEN_FIXTURES):
            fresh = Path(tmp) / committed.name
            old = torch.load(committed, weights_only=True) if committed.exists() else {}
            new = torch.load(fresh, weights_only=True)
            moved = []
            lines = compare(old, new, moved)
            print(f"{committed.relative_to(ROOT)}: " + ("unchanged" if not lines else f"{len(lines)} differences"))
            if lines:
                print("\n".join(lines[:50]) + (f"\n  ... and {len(lines) - 50} more" if len(lines) > 50 else ""))
            if moved:
                key, diff = max(moved, key=lambda item: item[1])
                print(f"  {len(moved)} value(s) moved within rtol={RTOL:g}, atol={ATOL:g} (largest: {key}, by "
                      f"{diff:.3g}): the committed values are kept")
            stale |= bool(lines)
            if lines and not args.check:
                write_values(merge(old, new), committed)
                print(f"  rewrote {committed.relative_to(ROOT)}")
    if args.check and stale:
        print("the committed fixtures disagree with solution/: run python tools/make_fixtures.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
