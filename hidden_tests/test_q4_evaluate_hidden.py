"""Hidden test of Question 4a: ``evaluate_nll`` (autoregressive.py), with partial credit.

As in tests/test_q4_evaluate.py, the model is the grader's ``KnownModel`` and the
expected values are the contract's definition computed here in float64.  The
value parts read a one-element tensor with ``.item()``; only the last part asks
for Python floats.
"""
from src.grading.host.graded import graded
from src.grading.host.judging.subcases import run_subcases
from src.grading.host.judging.q4 import check_evaluation, check_float_types

CASES = {
    "tensors": dict(seed=410, kind="vectors", n=11, batch_size=4, batching="tensors"),
    "tuples": dict(seed=411, kind="colour_images", n=10, batch_size=4, batching="tuples"),
    "dataloader": dict(seed=412, kind="binary_images", n=7, batch_size=3, batching="dataloader"),
    "one_batch": dict(seed=413, kind="binary_images", n=6, batch_size=8, batching="tensors"),
}


@graded("4a-1-hidden", partial=True)
def test_evaluate_nll_hidden(student, set_score=None):
    outs = {}

    def run(key):
        if key not in outs:
            outs[key] = student.run("q4.evaluate", **CASES[key])
        return outs[key]

    def values(*keys):
        def check():
            for key in keys:
                run(key)
            for key in keys:
                check_evaluation(outs[key], CASES[key], strict_types=False, hidden=True)
        return check

    def types():
        for key in CASES:
            run(key)
        for key in CASES:
            check_float_types(outs[key], CASES[key])

    value_parts = ("bare tensor batches, uneven last batch", "(x, y) tuples, colour images",
                   "DataLoader with a last batch of 1; a single batch")
    run_subcases([(value_parts[0], 0.4, values("tensors")), (value_parts[1], 0.4, values("tuples")),
                  (value_parts[2], 0.4, values("dataloader", "one_batch")),
                  ("Python floats", 0.3, types, value_parts)], set_score)
