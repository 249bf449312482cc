"""Mutation check of the grader: every plausible student bug must lose points in its question.

The catalogue lives in ``staff_tests/mutants/*.json``; ``tools/mutation_check.py``
grades the mutants and says which tests and parts catch each.  One test per
question, so that ``-k`` narrows it; the mutants of all selected questions are
graded together (two at a time all along); ``-s`` prints the tool's report.

    python -m pytest staff_tests/test_mutants.py -q -s          # every question (5-10 minutes on 2 cores)
    python -m pytest staff_tests/test_mutants.py -q -s -k 1b    # one question
"""
import json

import pytest

from conftest import ROOT
from tools import mutation_check

MIN_MUTANTS = 25
QUESTIONS = sorted({mutant["question"] for mutant in mutation_check.load_catalogue()})


def test_catalogue_is_large_enough_and_well_formed():
    mutants = mutation_check.load_catalogue()
    ids = [m["id"] for m in mutants]
    assert len(ids) >= MIN_MUTANTS, f"only {len(ids)} mutants in the catalogue"
    assert len(set(ids)) == len(ids), "mutant ids must be unique"
    manifest = json.loads((ROOT / "tests" / "points.json").read_text())
    for mutant in mutants:
        assert mutant["question"] in manifest["questions"], mutant["id"]
        source = (ROOT / "solution" / mutant["file"]).read_text()
        assert source.count(mutant["find"]) == 1, mutant["id"]
        # a mutant that does not even compile is caught by the import alone: it would prove nothing
        compile(source.replace(mutant["find"], mutant["replace"]), f"{mutant['id']}/{mutant['file']}", "exec")


@pytest.fixture(scope="module")
def graded_questions(request):
    """{question: its mutants and their grades} for every question whose test is selected."""
    questions = sorted({item.callspec.params["question"] for item in request.session.items
                        if item.module is request.module and hasattr(item, "callspec")})
    mutants = mutation_check.load_catalogue(questions)
    graded = list(zip(mutants, mutation_check.grade_all(mutants)))
    return {question: [pair for pair in graded if pair[0]["question"] == question] for question in questions}


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_mutant_loses_points_in_its_question(question, graded_questions):
    report = mutation_check.attribute(*zip(*graded_questions[question]))
    print("\n" + mutation_check.format_text(report))
    missed = [row["id"] for row in report["mutants"] if not row["caught"]]
    assert not missed, f"mutants that lose no points in question {question}: {missed}"
