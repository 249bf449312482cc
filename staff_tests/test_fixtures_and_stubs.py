"""The generated files are up to date with solution/: the stubs in submission/ and the recorded expected values.

* ``python tools/make_stubs.py --check`` passes, and, checked here independently
  of that script, solution/ and submission/ are identical outside the marked
  regions, and every region of a stub is exactly ``raise NotImplementedError``.
* ``python tools/make_fixtures.py --check`` passes: the committed fixtures are
  what the tests record on solution/ (this grades the reference once, ~1 min).
* The fixture files hold the torch version and only keys of the manifest's
  tests, public values in the public file and hidden ones in the hidden file.
"""
import sys

import pytest
import torch

from conftest import ROOT, run

MODULES = ("autoregressive.py", "made.py", "pixelcnn.py")
START, END = "### START CODE HERE ###", "### END CODE HERE ###"
PUBLIC = ROOT / "tests" / "fixtures" / "public.pt"
HIDDEN = ROOT / "hidden_tests" / "fixtures" / "expected.pt"


def split_regions(text):
    """``(outside, regions)``: the lines outside the markers (markers included) and each region's lines."""
    outside, regions, current = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped == START:
            assert current is None, f"line {number}: {START} inside a region"
            outside.append(line)
            current = []
        elif stripped == END:
            assert current is not None, f"line {number}: {END} without {START}"
            regions.append(current)
            current = None
            outside.append(line)
        elif current is not None:
            current.append(line)
        else:
            outside.append(line)
    assert current is None, f"{START} never closed"
    return outside, regions


def test_stubs_are_up_to_date():
    result = run([sys.executable, "tools/make_stubs.py", "--check"], check=False)
    assert result.returncode == 0, f"submission/ is stale: run python tools/make_stubs.py\n{result.stderr}"


@pytest.mark.parametrize("module", MODULES)
def test_solution_and_stub_agree_outside_the_regions(module):
    solution = (ROOT / "solution" / module).read_text()
    stub = (ROOT / "submission" / module).read_text()
    solution_outside, solution_regions = split_regions(solution)
    stub_outside, stub_regions = split_regions(stub)
    assert solution_regions, f"solution/{module} has no marked region"
    assert len(stub_regions) == len(solution_regions), f"submission/{module}: a different number of regions"
    for a, b in zip(solution_outside, stub_outside):
        assert a == b, f"submission/{module} differs from solution/{module} outside the regions:\n  {a!r}\n  {b!r}"
    assert len(solution_outside) == len(stub_outside), f"submission/{module}: different length outside the regions"
    markers = [line for line in stub.splitlines() if line.strip() == START]
    for number, (region, marker) in enumerate(zip(stub_regions, markers), 1):
        indent = marker[: len(marker) - len(marker.lstrip())]
        assert region == [f"{indent}raise NotImplementedError"], \
            f"submission/{module}, region {number}: the stub must only raise NotImplementedError, has {region!r}"
    for number, region in enumerate(solution_regions, 1):
        assert any(line.strip() for line in region), f"solution/{module}, region {number} is empty"


def test_fixtures_match_the_solution():
    result = run([sys.executable, "tools/make_fixtures.py", "--check"], check=False, timeout=1200)
    assert result.returncode == 0, (
        "the committed fixtures disagree with solution/ (run python tools/make_fixtures.py):\n"
        + result.stdout[-3000:] + result.stderr[-3000:])


def test_fixture_files_hold_the_torch_version_and_known_keys(manifest):
    tests = manifest["tests"]
    for path, hidden in ((PUBLIC, False), (HIDDEN, True)):
        assert path.exists(), f"{path.relative_to(ROOT)} is missing: run python tools/make_fixtures.py"
        values = torch.load(path, weights_only=True)
        assert values.get("_meta", {}).get("torch_version"), f"{path.name} does not record the torch version"
        for key in values:
            if key == "_meta":
                continue
            test_id = key.split("/", 1)[0]
            assert test_id in tests, f"{path.name}: {key!r} belongs to no test of tests/points.json"
            kind, place = ("public", "hidden") if hidden else ("hidden", "public")
            assert test_id.endswith("-hidden") == hidden, f"{path.name}: {key!r} is a {kind} value in the {place} file"
