"""Public test of Question 4a: ``evaluate_nll`` (autoregressive.py).

The model is the grader's ``KnownModel`` (src/grading/worker/probes/q4.py): its
``log_prob`` is a known function of each example, so this test needs nothing
else of your code.  The expected values are the contract's definition, computed
here in float64: the mean over all examples of ``-log p(x)``, and that divided by
``D * ln 2`` with ``D = x[0].numel()``.  Every partial sum is exact in float32,
so the tolerance (1e-6 relative) only absorbs the last bits of a division.
"""
from src.grading.host.graded import graded
from src.grading.host.judging.device import expect_same_on_another_device
from src.grading.host.judging.q4 import check_evaluation
from src.grading.host.judging.subcases import SubCases

BASIC_CASE = dict(seed=400, kind="binary_images", n=13, batch_size=5, batching="dataloader")


def _evaluate_values(student):
    out = student.run("q4.evaluate", **BASIC_CASE)
    check_evaluation(out, BASIC_CASE, strict_types=True)


@graded("4a-0-basic", partial=True)
def test_evaluate_nll_basic(student, set_score=None):
    """The average NLL and bits/dim; then evaluate_nll of a model on another device (CPU batches, as a DataLoader gives them)."""
    cases, values = SubCases(), "evaluate_nll: nll and bits_per_dim"
    with cases.case(0.8, values):
        _evaluate_values(student)
    with cases.case(0.2, "evaluate_nll on another device", requires=values) as notes:
        out = student.run("device.autoregressive_part", question="4a", label="evaluate_nll")
        expect_same_on_another_device(out, notes, question="4a", label="evaluate_nll")
    cases.finish(set_score)
