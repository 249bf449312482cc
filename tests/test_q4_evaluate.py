"""Public test of Question 4a: ``evaluate_nll`` (autoregressive.py).

The model is the grader's ``KnownModel`` (src/grading/worker/probes/q4.py): its
``log_prob`` is a known function of each example, so this test needs nothing
else of your code.  The expected values are the contract's definition, computed
here in float64: the mean over all examples of ``-log p(x)``, and that divided by
``D * ln 2`` with ``D = x[0].numel()``.  Every partial sum is exact in float32,
so the tolerance (1e-6 relative) only absorbs the last bits of a division.
"""
from src.grading.host.graded import graded
from src.grading.host.judging.q4 import check_evaluation

BASIC_CASE = dict(seed=400, kind="binary_images", n=13, batch_size=5, batching="dataloader")


@graded("4a-0-basic")
def test_evaluate_nll_basic(student):
    out = student.run("q4.evaluate", **BASIC_CASE)
    check_evaluation(out, BASIC_CASE, strict_types=True)
