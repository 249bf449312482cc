"""Regenerate the student stubs in submission/ from the reference in solution/.

Everything between a ``### START CODE HERE ###`` line and its
``### END CODE HERE ###`` line is replaced by ``raise NotImplementedError``
(indented like the markers, which are kept); every other line is copied as is.

    python tools/make_stubs.py          # write submission/*.py
    python tools/make_stubs.py --check  # exit 1 if submission/ is out of date
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTION_DIR = ROOT / "solution"
SUBMISSION_DIR = ROOT / "submission"
MODULES = ("autoregressive.py", "made.py", "pixelcnn.py")
START, END = "### START CODE HERE ###", "### END CODE HERE ###"


def marked_regions(lines):
    """Yield ``(start, end)`` line indices of each marker pair (the marker lines themselves)."""
    start = None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == START:
            if start is not None:
                raise ValueError(f"line {i + 1}: {START} inside another region")
            start = i
        elif text == END:
            if start is None:
                raise ValueError(f"line {i + 1}: {END} without {START}")
            yield start, i
            start = None
    if start is not None:
        raise ValueError(f"line {start + 1}: {START} is never closed")


def make_stub(source):
    """Return the stub text for the reference text ``source``."""
    lines = source.splitlines(keepends=True)
    out, copied_to = [], 0
    for start, end in marked_regions(lines):
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        out += lines[copied_to : start + 1]
        out.append(f"{indent}raise NotImplementedError\n")
        out.append(lines[end])
        copied_to = end + 1
    out += lines[copied_to:]
    return "".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that submission/ is up to date")
    args = parser.parse_args(argv)
    stale = []
    for name in MODULES:
        stub = make_stub((SOLUTION_DIR / name).read_text())
        target = SUBMISSION_DIR / name
        if target.exists() and target.read_text() == stub:
            continue
        stale.append(name)
        if not args.check:
            SUBMISSION_DIR.mkdir(exist_ok=True)
            target.write_text(stub)
            print(f"wrote submission/{name}")
    if args.check and stale:
        print(f"submission/ is out of date for {', '.join(stale)}: run python tools/make_stubs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
