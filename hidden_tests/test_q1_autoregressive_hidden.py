"""Hidden tests of Question 1 (autoregressive.py): likelihoods, bits/dim, DiscreteAR2D, FVSBN.

Each test scores graded parts (partial credit); a part that checks a property
(reproducible, normalised, the upper triangle unused, ...) names as a fourth
element the parts whose correct values it needs (``requires``).  The probes are in
src/grading/worker/probes/q1.py; its docstring says how a bug in 1a is kept from costing
points in 1d (``expect_fvsbn_log_prob``).

Tolerances: float64 inputs within 1e-5 + 1e-5*|expected| (a student may compute in
float32 internally); the float32 models of 1c/1d within 1e-4 + 1e-5*|expected|.

Sampling: the samples are judged against the reference's ``log_prob`` of every
outcome (recorded, so a bug in the student's log_prob is graded in the log_prob
parts only), with Pearson's chi-square test at a fixed seed; the test fails when p < 1e-6, so a correct
sampler fails with probability below 1e-6.  The sample sizes make every bug of
the catalogue of planted bugs fail with p far below that.
"""

import torch

from src.grading.host.graded import graded
from src.grading.host.judging.checks import expect_close, expect_tensor, fail, normalisation_problem
from src.grading.host.judging.subcases import run_subcases
from src.grading.host.judging.q1 import (FLOAT32_TOL, FLOAT64_TOL, binary_codes, check_bits_per_dim, check_distribution,
                                    check_samples, describe_bernoulli_case, describe_categorical_case,
                                    expect_fvsbn_log_prob)



def _compare_cases(student, reference, probe, cases, *, key, what, describe, batch_of):
    outs = student.run(probe, cases=cases)
    for index, (case, out) in enumerate(zip(cases, outs)):
        name = describe(case)
        expect_tensor(out, what=what, case=name, shape=(batch_of(case),), dtype_kind="float")
        tol = FLOAT32_TOL if case.get("logits_dtype") == "float32" else FLOAT64_TOL
        expect_close(out, reference(f"{key}/{index}", out), what=what, case=name, hidden=True, **tol)


# ------------------------------------------------------------------------------------------------- 1a
BERNOULLI_SHAPES = [dict(seed=101, shape=[5, 9], scale=2.0), dict(seed=102, shape=[2, 3, 4, 5], scale=4.0),
                    dict(seed=103, shape=[6, 1, 28, 28], scale=3.0), dict(seed=104, shape=[1, 7], scale=1.0)]
BERNOULLI_VECTOR = [dict(seed=105, shape=[7], scale=2.0)]
BERNOULLI_DTYPES = [dict(seed=106, shape=[4, 6], scale=2.0, x_dtype="int64"),
                    dict(seed=107, shape=[3, 1, 5, 5], scale=2.0, x_dtype="uint8"),
                    dict(seed=108, shape=[5, 8], scale=2.0, x_dtype="float32", logits_dtype="float32"),
                    dict(seed=109, shape=[4, 2, 3], scale=2.0, x_dtype="uint8", logits_dtype="float32")]
BERNOULLI_EXTREME = [dict(seed=110, shape=[8, 6], scale=2.0, extreme=0.25),
                     dict(seed=111, shape=[8, 6], scale=2.0, logits_dtype="float32", extreme=0.25),
                     dict(seed=112, shape=[4, 1, 3, 3], scale=2.0, x_dtype="int64", logits_dtype="float32",
                          extreme=1.0)]
CATEGORICAL_SHAPES = [dict(seed=120, batch=6, num_values=4, rest=[], scale=2.0),
                      dict(seed=121, batch=3, num_values=5, rest=[7], scale=2.0),
                      dict(seed=122, batch=2, num_values=3, rest=[2, 4, 5], scale=3.0),
                      dict(seed=123, batch=4, num_values=2, rest=[1, 6, 6], scale=2.0),
                      dict(seed=124, batch=3, num_values=6, rest=[3], scale=2.0, logits_dtype="float32")]
CATEGORICAL_EXTREME = [dict(seed=125, batch=6, num_values=4, rest=[5], scale=2.0, extreme=0.3),
                       dict(seed=126, batch=5, num_values=3, rest=[2, 2], scale=2.0, logits_dtype="float32",
                            extreme=0.5)]


@graded("1a-1-hidden", partial=True)
def test_log_likelihoods_hidden(student, reference, set_score=None):
    def bernoulli(key, cases):
        return lambda: _compare_cases(student, reference, "q1.bernoulli_ll", cases, key=key,
                                      what="bernoulli_log_likelihood", describe=describe_bernoulli_case,
                                      batch_of=lambda case: case["shape"][0])

    def categorical(key, cases):
        return lambda: _compare_cases(student, reference, "q1.categorical_ll", cases, key=key,
                                      what="categorical_log_likelihood", describe=describe_categorical_case,
                                      batch_of=lambda case: case["batch"])

    run_subcases([
        ("bernoulli_log_likelihood, several shapes", 0.35, bernoulli("bernoulli_shapes", BERNOULLI_SHAPES)),
        ("bernoulli_log_likelihood, x of shape (B,)", 0.1, bernoulli("bernoulli_vector", BERNOULLI_VECTOR)),
        ("bernoulli_log_likelihood, integer x and float32 logits", 0.2,
         bernoulli("bernoulli_dtypes", BERNOULLI_DTYPES)),
        ("bernoulli_log_likelihood, logits of +-1e4", 0.3, bernoulli("bernoulli_extreme", BERNOULLI_EXTREME)),
        ("categorical_log_likelihood, class dimension 1 and trailing dimensions", 0.3,
         categorical("categorical_shapes", CATEGORICAL_SHAPES)),
        ("categorical_log_likelihood, logits of +-1e4", 0.25, categorical("categorical_extreme", CATEGORICAL_EXTREME)),
    ], set_score)


# ------------------------------------------------------------------------------------------------- 1b
BITS_FLOATS = [(543.4, 784), (1.0, 1), (2129.5, 3072), (0.0, 10)]
BITS_TENSORS = [(torch.tensor(300.0, dtype=torch.float64), 784),
                (torch.tensor([[10.0, 20.0, 30.0], [1.5, 0.0, 7.0]], dtype=torch.float64), 12),
                (torch.tensor([100.0, 250.0, 543.0], dtype=torch.float32), 784),
                (torch.linspace(0.0, 50.0, 11, dtype=torch.float64), 3)]


@graded("1b-1-hidden", partial=True)
def test_bits_per_dim_hidden(student, set_score=None):
    def judge(cases):
        def check():
            outs = student.run("q1.bits_per_dim", cases=[{"nll": nll, "num_dims": d} for nll, d in cases])
            for (nll, num_dims), out in zip(cases, outs):
                check_bits_per_dim(out, nll, num_dims, hidden=True)
        return check

    run_subcases([("Python floats", 0.25, judge(BITS_FLOATS)), ("tensors", 0.25, judge(BITS_TENSORS))], set_score)


# ------------------------------------------------------------------------------------------------- 1c
def _ar2d_name(K, order, what_x):
    return f"DiscreteAR2D({K}, order={tuple(order)}) with random logit tables, x = {what_x}"


@graded("1c-1-hidden", partial=True)
def test_discrete_ar2d_log_prob_hidden(student, reference, set_score=None):
    def values(order):
        def check():
            out = student.run("q1.ar2d_log_prob", seed=200, num_values=4, order=order, batch=50)
            name = _ar2d_name(4, order, "all 16 pairs (a, b) in the order (0, 0), (0, 1), ..., (3, 3)")
            expect_tensor(out["all"], what="DiscreteAR2D.log_prob", case=name, shape=(16,), dtype_kind="float")
            batch_name = _ar2d_name(4, order, "50 random pairs")
            expect_tensor(out["batch"], what="DiscreteAR2D.log_prob", case=batch_name, shape=(50,),
                          dtype_kind="float")
            expect_close(out["all"], reference(f"all/{tuple(order)}", out["all"]), what="DiscreteAR2D.log_prob",
                         case=name, hidden=True, **FLOAT32_TOL)
            expect_close(out["batch"], reference(f"batch/{tuple(order)}", out["batch"]),
                         what="DiscreteAR2D.log_prob", case=batch_name, hidden=True, **FLOAT32_TOL)
        return check

    def normalisation():
        cases = [(2, [0, 1], 201), (5, [1, 0], 202), (5, [0, 1], 203)]
        outs = [student.run("q1.ar2d_log_prob", seed=seed, num_values=K, order=order) for K, order, seed in cases]
        for (K, order, _), out in zip(cases, outs):
            name = _ar2d_name(K, order, f"all {K * K} pairs")
            expect_tensor(out["all"], what="DiscreteAR2D.log_prob", case=name, shape=(K * K,), dtype_kind="float")
            problem = normalisation_problem(out["all"], f"{K * K} possible inputs")
            if problem:
                fail("DiscreteAR2D.log_prob", name, problem)

    run_subcases([("order (0, 1)", 0.35, values([0, 1])), ("order (1, 0)", 0.35, values([1, 0])),
                  ("normalisation", 0.3, normalisation, ("order (0, 1)", "order (1, 0)"))], set_score)


AR2D_SAMPLE_TABLES = {
    "first": torch.tensor([0.3, -0.4, 0.9, 0.0]),
    "second": torch.tensor([[1.5, -1.0, 0.0, 0.5], [-1.0, 1.0, 0.5, -0.5], [0.0, 0.0, 2.0, -1.5],
                            [0.8, -0.7, -0.2, 1.2]]),
}
AR2D_SAMPLES = 20000


@graded("1c-2-hidden", partial=True)
def test_discrete_ar2d_sample_hidden(student, reference, set_score=None):
    def run(order, **kwargs):
        return student.run("q1.ar2d_sample", num_values=4, order=order, **AR2D_SAMPLE_TABLES, **kwargs)

    def shapes():
        out = run([1, 0], n=50, seed=210, without_generator=30)
        check_samples(out, what="DiscreteAR2D.sample", case="DiscreteAR2D(4, order=(1, 0)), n=50", n=50, dim=2,
                      int_values=4, no_generator=30)

    def reproducible():
        out = run([0, 1], n=100, seed=211, repeat=True)
        check_samples(out, what="DiscreteAR2D.sample", case="DiscreteAR2D(4, order=(0, 1)), n=100", n=100, dim=2,
                      int_values=4, repeat=True)

    def distribution(order, seed):
        def check():
            out = run(order, n=AR2D_SAMPLES, seed=seed, distribution=True)
            case = f"DiscreteAR2D(4, order={tuple(order)}), {AR2D_SAMPLES} samples"
            check_samples(out, what="DiscreteAR2D.sample", case=case, n=AR2D_SAMPLES, dim=2, int_values=4)
            samples = out["samples"]
            check_distribution(samples[:, 0] * 4 + samples[:, 1], reference(f"distribution/{tuple(order)}",
                                                                             out["log_probs"]),
                               what="DiscreteAR2D.sample", case=case)
        return check

    correct = ("distribution, order (0, 1)", "distribution, order (1, 0)")
    run_subcases([("shape, dtype and values", 0.1, shapes, correct),
                  ("same generator seed, same samples", 0.1, reproducible, correct),
                  ("distribution, order (0, 1)", 0.15, distribution([0, 1], 212)),
                  ("distribution, order (1, 0)", 0.15, distribution([1, 0], 213))], set_score)


# ------------------------------------------------------------------------------------------------- 1d
def _fvsbn_name(dim, order, extra=""):
    return (f"FVSBN({dim}, order={list(order)}) with random weight and bias{extra}, x = all {2 ** dim} binary "
            f"vectors (row k holds the bits of k, most significant first)")


@graded("1d-1-hidden", partial=True)
def test_fvsbn_log_prob_hidden(student, reference, set_score=None):
    def values(key, seed, dim, order_via, extra):
        def check():
            out = student.run("q1.fvsbn_values", seed=seed, dim=dim, order_via=order_via, batch=40)
            name = _fvsbn_name(dim, out["order"].tolist(), extra)
            expect_tensor(out["logits"], what="FVSBN.conditional_logits", case=name, shape=(2 ** dim, dim),
                          dtype_kind="float")
            log_prob, batch_log_prob = out["log_prob"]["log_prob"], out["batch_log_prob"]["log_prob"]
            batch_name = name.split(", x = ")[0] + ", x = 40 random binary vectors"
            expect_close(out["logits"], reference(f"{key}/logits", out["logits"]), what="FVSBN.conditional_logits",
                         case=name, hidden=True, **FLOAT32_TOL)
            expect_fvsbn_log_prob(out["log_prob"], reference(f"{key}/log_prob", log_prob), case=name, hidden=True,
                                  **FLOAT32_TOL)
            expect_fvsbn_log_prob(out["batch_log_prob"], reference(f"{key}/batch", batch_log_prob), case=batch_name,
                                  hidden=True, **FLOAT32_TOL)
        return check

    def triangle():
        for seed, dim in ((310, 5), (311, 6)):
            out = student.run("q1.fvsbn_values", seed=seed, dim=dim)
            name = _fvsbn_name(dim, out["order"].tolist(), ", after new random values on and above the diagonal "
                                                           "of weight")
            expect_close(out["logits_triangle"], out["logits"], what="FVSBN.conditional_logits", case=name,
                         hidden=True, **FLOAT32_TOL)
            expect_close(out["log_prob_triangle"], out["log_prob"]["log_prob"], what="FVSBN.log_prob", case=name,
                         hidden=True, **FLOAT32_TOL)

    def dependence():
        for seed, dim in ((330, 5), (331, 6)):
            out = student.run("q1.fvsbn_dependence", seed=seed, dim=dim)
            order = out["order"].tolist()
            name = _fvsbn_name(dim, order)
            expect_tensor(out["logits"], what="FVSBN.conditional_logits", case=name, shape=(2 ** dim, dim),
                          dtype_kind="float")
            for i, trials in enumerate(out["changed"]):
                d = order[i]
                for changed in trials:
                    expect_tensor(changed, what="FVSBN.conditional_logits", case=name, shape=(2 ** dim, dim))
                    if not torch.allclose(changed[:, d].double(), out["logits"][:, d].double(), atol=1e-4, rtol=1e-5):
                        fail("FVSBN.conditional_logits", name,
                             f"column {d} (the variable generated at position {i}) changed when only the variables "
                             f"{order[i:]} (position {i} and later in the ordering) changed: it may depend only on "
                             f"the variables {order[:i]} that come before it")

    run_subcases([
        ("values, ordering given to the constructor", 0.2, values("constructor", 300, 6, "constructor", "")),
        ("values, ordering loaded with load_state_dict", 0.15,
         values("state_dict", 301, 5, "state_dict", " (ordering loaded with load_state_dict)")),
        ("values, default ordering", 0.15, values("default", 302, 5, "default", " (order=None)")),
        ("entries on and above the diagonal have no effect", 0.25, triangle,
         "values, ordering given to the constructor"),
        ("each conditional depends only on earlier variables", 0.25, dependence,
         "values, ordering given to the constructor"),
    ], set_score)


FVSBN_SAMPLE_CASES = [
    dict(dim=4, order=[2, 0, 3, 1],
         weight=torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0], [-1.5, 1.5, 0.0, 0.0],
                              [1.0, -2.0, 1.5, 0.0]]) + torch.triu(torch.full((4, 4), 3.0)),
         bias=torch.tensor([0.5, -1.0, 0.3, -0.2])),
    dict(dim=5, order=[4, 1, 3, 0, 2],
         weight=torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0], [-2.0, 0.0, 0.0, 0.0, 0.0], [1.5, 1.0, 0.0, 0.0, 0.0],
                              [0.5, -1.5, 2.0, 0.0, 0.0], [-1.0, 1.0, -1.0, 1.5, 0.0]]),
         bias=torch.tensor([1.0, 0.5, -0.5, 0.0, -0.8])),
]
FVSBN_SAMPLES = 20000


@graded("1d-2-hidden", partial=True)
def test_fvsbn_sample_hidden(student, reference, set_score=None):
    def shapes():
        out = student.run("q1.fvsbn_sample", **FVSBN_SAMPLE_CASES[1], n=50, seed=340, without_generator=30)
        check_samples(out, what="FVSBN.sample", case="FVSBN(5, order=[4, 1, 3, 0, 2]), n=50", n=50, dim=5,
                      binary=True, no_generator=30)

    def reproducible():
        out = student.run("q1.fvsbn_sample", **FVSBN_SAMPLE_CASES[0], n=100, seed=341, repeat=True)
        check_samples(out, what="FVSBN.sample", case="FVSBN(4, order=[2, 0, 3, 1]), n=100", n=100, dim=4,
                      binary=True, repeat=True)

    def distribution(index, seed):
        def check():
            params = FVSBN_SAMPLE_CASES[index]
            out = student.run("q1.fvsbn_sample", **params, n=FVSBN_SAMPLES, seed=seed, distribution=True)
            case = f"FVSBN({params['dim']}, order={params['order']}), {FVSBN_SAMPLES} samples"
            check_samples(out, what="FVSBN.sample", case=case, n=FVSBN_SAMPLES, dim=params["dim"], binary=True)
            check_distribution(binary_codes(out["samples"]), reference(f"distribution/{index}", out["log_probs"]),
                               what="FVSBN.sample", case=case)
        return check

    correct = ("distribution, D=4", "distribution, D=5")
    run_subcases([("shape, dtype and values", 0.1, shapes, correct),
                  ("same generator seed, same samples", 0.1, reproducible, correct),
                  ("distribution, D=4", 0.15, distribution(0, 342)), ("distribution, D=5", 0.15, distribution(1, 343))],
                 set_score)
