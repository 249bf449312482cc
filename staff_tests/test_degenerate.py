"""No points without a correct result: submissions that compute nothing score exactly 0 in every test.

The family (``staff_tests/degenerate.py``) is generated from the reference's marked
regions: zeros, ones, uniform noise and an echo of the input, each of exactly the
shape and dtype that the reference returns on the same call; ``None`` everywhere;
and the stubs with ``raise NotImplementedError`` replaced by ``pass``.  A speed,
structure or property check that such code passes must be tied to a correct result
(``requires`` in ``src/grading/checks.py``).  Each submission gets a full grade, two
at a time; the table of scores is printed (``-s``).
"""
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import grade_submission
from degenerate import KINDS, write_family


@pytest.fixture(scope="module")
def family_scores(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("degenerate")
    folders = write_family(workdir / "submissions")
    with ThreadPoolExecutor(max_workers=2) as pool:  # each grade is a pytest process plus a worker
        scores = pool.map(lambda kind: grade_submission(folders[kind], workdir / f"{kind}.json"), KINDS)
        return dict(zip(KINDS, scores))


def test_the_family_is_generated_from_every_marked_region():
    from degenerate import MODULES, ROOT, degenerate_module

    for name in MODULES:
        source = (ROOT / "solution" / name).read_text()
        for kind in KINDS:
            text = degenerate_module(source, kind)
            compile(text, f"{kind}/{name}", "exec")
            assert text.count("### START CODE HERE ###") == source.count("### START CODE HERE ###")


def test_every_degenerate_submission_scores_zero_in_every_test(family_scores):
    lines, scored = [], []
    for kind, scores in family_scores.items():
        earned = {test: score for test, (score, _) in scores.items() if score}
        lines.append(f"{kind:<6} {sum(earned.values()):5.2f} / {sum(top for _, top in scores.values()):g}  "
                     f"over {len(scores)} tests" + (f"; points in {earned}" if earned else ""))
        scored += [f"{kind}: {test} {score:g}" for test, score in earned.items()]
    print("\n" + "\n".join(lines))
    assert all(len(scores) == len(next(iter(family_scores.values()))) for scores in family_scores.values())
    assert not scored, "degenerate submissions earned points: " + "; ".join(scored)
