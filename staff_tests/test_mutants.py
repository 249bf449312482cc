"""Mutation check of the grader: every plausible student bug must lose points in its question.

The catalogue lives in ``staff_tests/mutants/*.json``: each mutant is one exact
text edit (``find`` -> ``replace``) of a file of ``solution/`` and names the
question that must lose points.  Each mutant is graded with ``grader.py
<question> --submission <mutated copy>``; the summary says how many mutants the
public tests alone catch.

    python -m pytest staff_tests/test_mutants.py -q -s     # prints the summary table
"""
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import grade_submission

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = sorted((ROOT / "staff_tests" / "mutants").glob("*.json"))
MIN_MUTANTS = 25


def load_catalogue():
    mutants = []
    for path in CATALOGUE:
        for mutant in json.loads(path.read_text()):
            mutants.append({**mutant, "catalogue": path.name})
    return mutants


def make_mutant(mutant, folder):
    """Copy solution/ into ``folder`` with the mutant's edit applied."""
    shutil.copytree(ROOT / "solution", folder)
    target = folder / mutant["file"]
    source = target.read_text()
    count = source.count(mutant["find"])
    if count != 1:
        raise ValueError(f"mutant {mutant['id']}: 'find' occurs {count} times in solution/{mutant['file']}")
    target.write_text(source.replace(mutant["find"], mutant["replace"]))


def grade(mutant, workdir):
    """Grade the mutant's question; return {test id: (score, max_score)}."""
    folder = workdir / mutant["id"]
    make_mutant(mutant, folder / "submission")
    return grade_submission(folder / "submission", folder / "results.json", mutant["question"])


@pytest.fixture(scope="module")
def graded_mutants(tmp_path_factory):
    mutants = load_catalogue()
    workdir = tmp_path_factory.mktemp("mutants")
    with ThreadPoolExecutor(max_workers=2) as pool:  # each grade is a pytest process plus a worker
        outcomes = list(pool.map(lambda m: grade(m, workdir), mutants))
    return list(zip(mutants, outcomes))


def test_catalogue_is_large_enough_and_well_formed():
    mutants = load_catalogue()
    ids = [m["id"] for m in mutants]
    assert len(ids) >= MIN_MUTANTS, f"only {len(ids)} mutants in the catalogue"
    assert len(set(ids)) == len(ids), "mutant ids must be unique"
    manifest = json.loads((ROOT / "tests" / "points.json").read_text())
    for mutant in mutants:
        assert mutant["question"] in manifest["questions"], mutant["id"]
        assert (ROOT / "solution" / mutant["file"]).read_text().count(mutant["find"]) == 1, mutant["id"]


def test_every_mutant_loses_points_in_its_question(graded_mutants):
    missed, public_catches, lines = [], 0, []
    for mutant, scores in graded_mutants:
        in_question = {t: s for t, s in scores.items() if t.startswith(mutant["question"] + "-")}
        lost = [t for t, (score, top) in in_question.items() if score < top]
        caught_publicly = any(t.endswith("-basic") for t in lost)
        public_catches += caught_publicly
        lines.append(f"{mutant['id']:<45} {mutant['question']}  lost in: {', '.join(sorted(lost)) or 'NOTHING'}")
        if not lost:
            missed.append(mutant["id"])
    print("\n".join(lines))
    print(f"\n{len(graded_mutants) - len(missed)}/{len(graded_mutants)} mutants lose points in their question; "
          f"{public_catches} of them are caught by the public tests alone")
    assert not missed, f"mutants that lose no points in their question: {missed}"
