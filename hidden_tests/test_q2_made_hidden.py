"""Hidden tests of Question 2 (made.py): 2a MaskedLinear, degrees and masks; 2b MADE; 2c sampling.

Same conventions as tests/test_q2_made.py (both import their helpers from src/grading/host/judging/q2.py):
2b and 2c run the student's MADE with stand-ins for 2a (see
src/grading/worker/probes/q2.py), values computed by the test from the student's own
outputs are compared in float64 within float32 tolerances, and expected values of
the reference are never printed (hidden=True).
"""
import torch

from src.grading.host.graded import graded
from src.grading.host.judging.goodness_of_fit import MIN_P_VALUE
from src.grading.host.judging.checks import expect_close, expect_equal, expect_sums_to_one, expect_tensor, fail
from src.grading.host.judging.subcases import SubCases
from src.grading.host.judging.q2 import (
    F32,
    LL,
    mask_label,
    sample_p_value,
    needs,
    expect_true,
    bernoulli_ll,
    expect_permutation,
    expect_autoregressive,
    expect_same_state,
    expect_binary_samples,
    ensemble_log_prob,
    expect_masked_gradient,
    expect_model_depends_on_inputs,
)


# ---------------------------------------------------------------------------
# 2a
# ---------------------------------------------------------------------------

MASKED_LINEAR_CASES = {  # name: (seed, in_features, out_features, batch, bias); later parts fetch results by name
    "7 -> 4": (11, 7, 4, 5, True),
    "3 -> 8": (12, 3, 8, 1, True),
    "6 -> 2, no bias": (13, 6, 2, 3, False),
}

DEGREE_ORDERS = [list(range(6)), [5, 4, 3, 2, 1, 0], [3, 6, 0, 5, 1, 4, 2], [1, 0], [2, 0, 1]]

MASK_CASES = [  # (degrees, k): valid degrees, input degrees first
    ([[2, 0, 1]], 1),  # no hidden layer
    ([[2, 0, 1]], 2),
    ([[4, 3, 2, 0, 1, 5], [4, 0, 4, 3, 3, 3, 2, 2, 2], [1, 2, 3, 0, 4, 4, 4], [4, 4, 4, 2, 2, 0, 3, 1]], 1),
    ([[4, 1, 3, 2, 0], [0, 2, 2, 3, 0, 0, 3]], 3),
    ([[0, 1, 2, 3], [0, 2, 0, 1, 2], [2, 1, 0, 0, 2]], 1),
    ([[2, 0, 3, 1, 4], [2, 3], [3, 2, 2, 3, 3]], 2),
    ([[0, 1], [0, 0, 0]], 2),
]


@graded("2a-1-hidden", partial=True)
def test_2a_hidden(student, reference, set_score=None):
    """The rule per part (``requires``: credited only if the named part also passed):

    * the mask buffer, .double(), the state_dict: each checks what ``__init__`` registered and that the buffer
      then holds the mask that set_mask stored (the mask set has 0s): a registered buffer alone is structure,
      which a layer computing nothing would have; they need no forward values, so a failing gradient does not
      withhold them;
    * set_mask with array-likes, in place, twice; forward and its gradients (0 where the mask is 0, and the weight
      itself left unchanged): values, judged on their own;
    * ``MaskedLinear.forward is vectorised``: speed, which code that computes nothing would pass: requires
      forward's values;
    * ``made_degrees``: input degrees are values; the hidden-degree range, coverage and reproducibility are
      properties that require the input degrees;
    * ``made_masks``: values.
    """
    cases = SubCases()
    what = "MaskedLinear"
    results = dict.fromkeys(MASKED_LINEAR_CASES)  # name -> the probe's result (None: not run); a wrong name fails
    linear_values = "MaskedLinear.forward and its gradients"
    buffer_part = "MaskedLinear: the mask buffer (other shapes, bias=False)"
    with cases.case(0.15, "MaskedLinear: the mask buffer (other shapes, bias=False)"):
        # every result first: later parts judge them all
        for name, (seed, cin, cout, batch, bias) in MASKED_LINEAR_CASES.items():
            results[name] = student.run("q2.masked_linear", seed=seed, in_features=cin, out_features=cout,
                                        batch=batch, bias=bias)
        for name, (seed, cin, cout, batch, bias) in MASKED_LINEAR_CASES.items():
            case = f"MaskedLinear({cin}, {cout}, bias={bias})"
            out = results[name]
            expect_true(out["is_buffer"] and not out["is_parameter"] and out["in_state_dict"], what=what, case=case,
                        problem="the mask must be a buffer registered with register_buffer('mask', ...) (in the "
                                "state_dict, not a Parameter)")
            mask = expect_tensor(out["initial_mask"], what=what, case=case + ", mask after __init__",
                                 shape=(cout, cin), dtype_kind="float")
            expect_true(bool((mask == 1).all()), what=what, case=case, problem="the initial mask must be all ones")
            # and holds what set_mask stored: a registered buffer alone is structure (see the docstring)
            expect_equal(out["mask_after_set"], out["mask_set"], what="MaskedLinear.set_mask",
                         case=case + ", the mask buffer after set_mask")
    set_mask_double = "MaskedLinear.set_mask: in place (same tensor, dtype kept after .double())"
    out_double = None
    double_part = "MaskedLinear: the mask moves with the module (.double())"
    with cases.case(0.1, double_part):
        case = "MaskedLinear(5, 3).double()"
        out_double = student.run("q2.masked_linear", seed=14, in_features=5, out_features=3, batch=4, double=True)
        mask = expect_tensor(out_double["mask_after_double"], what=what, case=case, shape=(3, 5))
        expect_true(mask.dtype == torch.float64, what=what, case=case,
                    problem=f"after .double() the mask has dtype {mask.dtype}: it must be a buffer, so that "
                            ".to()/.double() convert it")
        expect_equal(out_double["mask_after_set"], out_double["mask_set"],
                     what="MaskedLinear.set_mask", case=case + ", the mask buffer after set_mask")
    with cases.case(0.15, "MaskedLinear.set_mask: array-likes (list, bool tensor, numpy array, float64 tensor)"):
        for kind in ("list", "bool", "numpy", "double"):
            case = f"set_mask with a {kind} mask"
            out = student.run("q2.masked_linear", seed=15, in_features=4, out_features=3, batch=2, mask_kind=kind)
            mask = expect_tensor(out["mask_after_set"], what="MaskedLinear.set_mask", case=case, shape=(3, 4),
                                 dtype_kind="float")
            expect_true(mask.dtype == torch.float32, what="MaskedLinear.set_mask", case=case,
                        problem=f"the mask buffer became {mask.dtype}: copy the values into the float buffer")
            expect_equal(mask, out["mask_set"], what="MaskedLinear.set_mask", case=case)
    with cases.case(0.1, set_mask_double):
        out = needs(results["7 -> 4"], what="MaskedLinear.set_mask", case="MaskedLinear(7, 4)", part=buffer_part)
        expect_true(out["same_object"], what="MaskedLinear.set_mask", case="MaskedLinear(7, 4)",
                    problem="self.mask is a new tensor after set_mask: copy into the buffer in place (copy_)")
        case = "MaskedLinear(5, 3).double(), set_mask(float32 mask)"
        needs(out_double, what="MaskedLinear.set_mask", case=case, part=double_part)
        expect_true(out_double["same_object"], what="MaskedLinear.set_mask", case=case,
                    problem="self.mask is a new tensor after set_mask: copy into the buffer in place (copy_)")
        mask = expect_tensor(out_double["mask_after_set"], what="MaskedLinear.set_mask", case=case, shape=(3, 5))
        expect_true(mask.dtype == torch.float64, what="MaskedLinear.set_mask", case=case,
                    problem=f"the mask buffer became {mask.dtype}, it must keep the module's dtype float64")
        expect_equal(mask, out_double["mask_set"], what="MaskedLinear.set_mask", case=case)
        expect_close(out_double["out"], reference("double_out", out_double["out"]), what="MaskedLinear.forward",
                     case=case + ", float64 input", atol=1e-12, rtol=1e-10, hidden=True)
    with cases.case(0.1, "MaskedLinear: set_mask twice (the second mask replaces the first)"):
        case = "MaskedLinear(6, 5), set_mask twice"
        out = student.run("q2.masked_linear", seed=16, in_features=6, out_features=5, batch=3, masks=2)
        expect_equal(out["mask_after_set"], out["mask_set"], what="MaskedLinear.set_mask", case=case)
        expect_close(out["out"], reference("twice_out", out["out"]), what="MaskedLinear.forward", case=case,
                     hidden=True, **F32)
    with cases.case(0.25, linear_values):
        for name, (seed, cin, cout, batch, bias) in MASKED_LINEAR_CASES.items():
            case = f"MaskedLinear({cin}, {cout}, bias={bias}), batch {batch}"
            out = needs(results[name], what="MaskedLinear.forward", case=case, part=buffer_part)
            expect_equal(out["mask_after_set"], out["mask_set"], what="MaskedLinear.set_mask", case=case)
            expect_close(out["out"], reference(f"out_{seed}", out["out"]), what="MaskedLinear.forward", case=case,
                         hidden=True, **F32)
            grad = expect_masked_gradient(out, (cout, cin), case=case)
            expect_close(grad, reference(f"weight_grad_{seed}", grad), what="MaskedLinear.forward",
                         case=case + ", gradient of the weight", hidden=True, **F32)
            if bias:
                expect_close(out["bias_grad"], reference(f"bias_grad_{seed}", out["bias_grad"]),
                             what="MaskedLinear.forward", case=case + ", gradient of the bias", hidden=True, **F32)
    with cases.case(0.1, "MaskedLinear: the mask is saved in and loaded from the state_dict"):
        out = needs(results["7 -> 4"], what=what, case="MaskedLinear(7, 4)", part=buffer_part)
        case = "MaskedLinear(7, 4): a fresh layer loads the state_dict of one with a mask set"
        reloaded = expect_tensor(out["reloaded_mask"], what=what, case=case, shape=(4, 7))
        expect_equal(reloaded, out["mask_set"], what=what, case=case)
    with cases.case(0.1, "MaskedLinear.forward is vectorised", requires=linear_values):
        timing = student.run("q2.masked_linear_timing", in_features=256, out_features=256, batch=64)
        ratio = timing["student_s"] / timing["plain_s"]
        expect_true(ratio < 10, what="MaskedLinear.forward", case="256 -> 256, batch 64",
                    problem=f"{ratio:.0f} times slower than nn.Linear of the same shape ({timing['student_s'] * 1e3:.2f} "
                            f"ms per call): compute x @ (mask * weight).T + bias in one matrix product")

    input_degrees = "made_degrees: input degrees"
    with cases.case(0.2, input_degrees):
        for index, order in enumerate(DEGREE_ORDERS):
            case = f"order={order}, hidden_sizes=[3]"
            out = student.run("q2.made_degrees", order=order, hidden_sizes=[3], seed=index)
            degrees = out["degrees"]
            expect_true(isinstance(degrees, list) and len(degrees) == 2, what="made_degrees", case=case,
                        problem=f"expected a list of 2 tensors, got {degrees!r}"[:300])
            m0 = expect_tensor(degrees[0], what="made_degrees", case=case + ", m0", shape=(len(order),),
                               dtype_kind="int")
            expect_equal(m0, reference(f"m0_{index}", m0), what="made_degrees", case=case + ", m0", hidden=True)

    def check_hidden_degrees(degrees, nin, hidden_sizes, case):
        expect_true(isinstance(degrees, list) and len(degrees) == len(hidden_sizes) + 1, what="made_degrees",
                    case=case, problem=f"expected a list of {len(hidden_sizes) + 1} tensors, got {degrees!r}"[:300])
        low = int(expect_tensor(degrees[0], what="made_degrees", case=case + ", m0", shape=(nin,)).min())
        for layer, size in enumerate(hidden_sizes, start=1):
            m = expect_tensor(degrees[layer], what="made_degrees", case=f"{case}, layer {layer}", shape=(size,),
                              dtype_kind="int")
            expect_true(bool(((m >= low) & (m <= nin - 2)).all()), what="made_degrees", case=f"{case}, layer {layer}",
                        problem=f"hidden degrees must lie in {{min of the layer below = {low}, ..., D-2 = {nin - 2}}}, "
                                f"got values from {int(m.min())} to {int(m.max())}")
            low = int(m.min())
        return degrees

    range_cases = [([4, 0, 5, 1, 3, 2], [10, 3, 8], 0), ([1, 0], [4, 4], 1), (list(range(9)), [1, 50, 50], 2),
                   ([2, 0, 1], [6], 3)]
    with cases.case(0.2, "made_degrees: hidden degrees lie in {min of the layer below, ..., D-2}",
                    requires=input_degrees):
        for order, hidden_sizes, seed in range_cases:
            case = f"order={order}, hidden_sizes={hidden_sizes}, seed {seed}"
            out = student.run("q2.made_degrees", order=order, hidden_sizes=hidden_sizes, seed=seed)
            check_hidden_degrees(out["degrees"], len(order), hidden_sizes, case)
    with cases.case(0.1, "made_degrees: every allowed degree occurs in a wide layer", requires=input_degrees):
        for seed in range(6):
            order, hidden_sizes = [3, 7, 1, 10, 0, 5, 8, 2, 11, 4, 9, 6], [1, 300]
            case = f"D=12, hidden_sizes={hidden_sizes}, seed {seed}"
            out = student.run("q2.made_degrees", order=order, hidden_sizes=hidden_sizes, seed=seed)
            degrees = check_hidden_degrees(out["degrees"], 12, hidden_sizes, case)
            low, seen = int(degrees[1].min()), set(degrees[2].tolist())
            missing = sorted(set(range(low, 11)) - seen)
            expect_true(not missing, what="made_degrees", case=case + ", layer 2",
                        problem=f"300 degrees drawn uniformly from {{{low}, ..., 10}} never took the values "
                                f"{missing}: is the upper end D-2 included?")
    with cases.case(0.1, "made_degrees: drawn with the generator (reproducible; generator=None works)",
                    requires=input_degrees):
        order, hidden_sizes = [2, 4, 0, 3, 1], [40, 40]
        case = f"order={order}, hidden_sizes={hidden_sizes}"
        out = student.run("q2.made_degrees", order=order, hidden_sizes=hidden_sizes, seed=5, other_seed=6,
                          none_generator=True)
        degrees = check_hidden_degrees(out["degrees"], 5, hidden_sizes, case + ", seed 5")
        check_hidden_degrees(out["none"], 5, hidden_sizes, case + ", generator=None")
        again, other = out["again"], check_hidden_degrees(out["other"], 5, hidden_sizes, case + ", seed 6")
        expect_true(all(torch.equal(a, b) for a, b in zip(degrees, again)), what="made_degrees", case=case,
                    problem="two calls with generators of the same seed gave different degrees: draw them with "
                            "the generator")
        expect_true(not torch.equal(degrees[1], other[1]), what="made_degrees", case=case,
                    problem="generators with different seeds gave the same 40 hidden degrees: the degrees must be "
                            "drawn at random from the generator")
    with cases.case(0.35, "made_masks"):
        for index, (degrees, k) in enumerate(MASK_CASES):
            nin = len(degrees[0])
            case = f"degrees={degrees}, k={k}"[:200]
            masks = student.run("q2.made_masks", degrees=degrees, k=k)
            expect_true(isinstance(masks, list) and len(masks) == len(degrees), what="made_masks", case=case,
                        problem=f"expected a list of {len(degrees)} masks, got {masks!r}"[:300])
            shapes = [(len(b), len(a)) for a, b in zip(degrees[:-1], degrees[1:])] + [(k * nin, len(degrees[-1]))]
            for layer, (mask, shape) in enumerate(zip(masks, shapes)):
                expect_tensor(mask, what="made_masks", case=f"{case}, {mask_label(layer, len(degrees))}", shape=shape, dtype_kind="float")
                expect_equal(mask, reference(f"masks_{index}_{layer}", mask), what="made_masks",
                             case=f"{case}, {mask_label(layer, len(degrees))}", hidden=True)
    cases.finish(set_score)


# ---------------------------------------------------------------------------
# 2b
# ---------------------------------------------------------------------------

SINGLE_SET_CONFIGS = [  # (nin, hidden_sizes, nout, natural_ordering, seed)
    (6, [32, 32], 6, True, 0),
    (7, [40], 7, False, 5),
    (5, [24, 24, 24], 5, False, 2),
    (4, [20], 8, False, 3),
    (3, [], 3, False, 4),
    (2, [8], 2, True, 6),
]


def _config_case(nin, hidden_sizes, nout, num_masks, natural_ordering):
    return (f"MADE({nin}, {hidden_sizes}, {nout}, num_masks={num_masks}, "
            f"natural_ordering={natural_ordering})")


@graded("2b-1-hidden", partial=True)
def test_2b_forward_update_masks_hidden(student, reference, set_score=None):
    cases = SubCases()
    what = "MADE.forward / update_masks"
    forward_values = "forward with given weights and masks"
    with cases.case(0.25, "forward: autoregressive for one mask set (orderings, depths, k > 1, no hidden layer)",
                    requires=forward_values):
        for nin, hidden_sizes, nout, natural, seed in SINGLE_SET_CONFIGS:
            case = _config_case(nin, hidden_sizes, nout, 1, natural)
            out = student.run("q2.made_structure", nin=nin, hidden_sizes=hidden_sizes, nout=nout, num_masks=1,
                              natural_ordering=natural, seed=seed, n_sets=1)
            entry = out["sets"][0]
            expect_true(entry["out_shape"] == [8, nout], what="MADE.forward", case=case + ", batch of 8",
                        problem=f"expected logits of shape (8, {nout}), got {entry['out_shape']}")
            expect_autoregressive(entry, nin, nout, what=what, case=case)
    multi = {}
    every_set = "forward: autoregressive for every mask set"
    with cases.case(0.15, every_set, requires=forward_values):
        configs = [(5, [30], 15, 3, False, 7), (4, [16, 16], 8, 2, True, 8), (6, [32], 6, 3, False, 9)]
        for nin, hidden_sizes, nout, num_masks, natural, seed in configs:  # every result first: later parts use them
            multi[(nin, num_masks, natural)] = student.run(
                "q2.made_structure", nin=nin, hidden_sizes=hidden_sizes, nout=nout, num_masks=num_masks,
                natural_ordering=natural, seed=seed, n_sets=2 * num_masks + 1, twin=True)
        for nin, hidden_sizes, nout, num_masks, natural, seed in configs:
            case = _config_case(nin, hidden_sizes, nout, num_masks, natural)
            out = multi[(nin, num_masks, natural)]
            for i, entry in enumerate(out["sets"]):
                expect_autoregressive(entry, nin, nout, what=what, case=f"{case}, after {i} calls of update_masks")
    with cases.case(0.1, "update_masks: the order buffer", requires=every_set):
        out = needs(multi.get((4, 2, True)), what="MADE.update_masks", case="natural ordering")
        for i, entry in enumerate(out["sets"]):
            expect_equal(entry["order"], torch.arange(4), what="MADE.update_masks",
                         case=f"{_config_case(4, [16, 16], 8, 2, True)}, after {i} calls, self.order")
        out = needs(multi.get((6, 3, False)), what="MADE.update_masks", case="random ordering")
        expect_true(out["order_in_state_dict"], what="MADE.update_masks", case=_config_case(6, [32], 6, 3, False),
                    problem="'order' is no longer in the state_dict: copy the ordering into the buffer")
        for i, entry in enumerate(out["sets"]):
            expect_permutation(entry["order"], 6, what="MADE.update_masks",
                               case=f"{_config_case(6, [32], 6, 3, False)}, after {i} calls, self.order")
            expect_true(entry["order"].dtype == torch.int64, what="MADE.update_masks", case="self.order",
                        problem=f"the order buffer must stay int64, got {entry['order'].dtype}")
    with cases.case(0.1, "update_masks: mask_index advances modulo num_masks", requires=every_set):
        for key, num_masks in (((5, 3, False), 3), ((4, 2, True), 2)):
            out = needs(multi.get(key), what="MADE.update_masks", case=f"num_masks={num_masks}")
            indices = [entry["mask_index"] for entry in out["sets"]]
            expected = [i % num_masks for i in range(len(indices))]
            expect_true(indices == expected, what="MADE.update_masks", case=f"num_masks={num_masks}",
                        problem=f"mask_index after 0, 1, 2, ... calls should be {expected}, got {indices}")
    with cases.case(0.1, "update_masks: mask set k is a function of (seed, k) (cycling, same seed same masks)",
                    requires=every_set):
        for key, num_masks in (((5, 3, False), 3), ((4, 2, True), 2), ((6, 3, False), 3)):
            out = needs(multi.get(key), what="MADE.update_masks", case=f"num_masks={num_masks}")
            sets = out["sets"]
            for i in range(len(sets) - num_masks):
                expect_same_state(sets[i + num_masks], sets[i], what="MADE.update_masks",
                                  case=f"num_masks={num_masks}, mask sets {i} and {i + num_masks}",
                                  problem="installing a mask set again must give the same masks (and "
                                          "num_masks calls bring the model back to the masks it started with)")
            expect_same_state(out["twin"], sets[0], what="MADE.__init__ / update_masks",
                              case=f"num_masks={num_masks}, two models built with the same arguments",
                              problem="the first mask set must be the same: seed each mask set's generator "
                                      "with a function of (seed, k)")
    with cases.case(0.05, "update_masks: the mask sets differ", requires=every_set):
        out = needs(multi.get((6, 3, False)), what="MADE.update_masks", case="num_masks=3")
        sets = out["sets"][:3]
        expect_true(not all(torch.equal(s["order"], sets[0]["order"]) for s in sets), what="MADE.update_masks",
                    case=_config_case(6, [32], 6, 3, False),
                    problem="the 3 mask sets all have the same random ordering: each set k needs its own "
                            "generator seed")
    with cases.case(0.15, forward_values):
        case = "MADE(5, [12, 10], 10) with seeded weights and random 0/1 masks set by set_mask"
        out = student.run("q2.made_forward_loaded", nin=5, hidden_sizes=[12, 10], nout=10, seed=31, batch=7)
        expect_close(out["logits"], reference("loaded_logits", out["logits"]), what="MADE.forward", case=case,
                     hidden=True, **F32)
        case = "MADE(3, [], 3) with seeded weights and a random 0/1 mask set by set_mask"
        out = student.run("q2.made_forward_loaded", nin=3, hidden_sizes=[], nout=3, seed=32, batch=5)
        expect_close(out["logits"], reference("no_hidden_logits", out["logits"]), what="MADE.forward", case=case,
                     hidden=True, **F32)
    with cases.case(0.1, "forward is vectorised", requires=forward_values):
        timing = student.run("q2.made_forward_timing", nin=64, hidden_sizes=[128], batch=128)
        ratio = timing["student_s"] / timing["layers_s"]
        expect_true(ratio < 5, what="MADE.forward", case="MADE(64, [128], 64), batch 128",
                    problem=f"{ratio:.0f} times slower than running the model's own layers one after the other "
                            f"({timing['student_s'] * 1e3:.2f} ms per call): one pass through self.net gives every "
                            "output")
    cases.finish(set_score)


@graded("2b-2-hidden", partial=True)
def test_2b_log_prob_hidden(student, reference, set_score=None):
    cases = SubCases()
    what = "MADE.log_prob"
    one_set = "log_prob with one mask set"
    several_sets = "log_prob with several mask sets: log of the mean of the likelihoods"
    with cases.case(0.2, one_set):
        for nin, hidden_sizes, natural, seed in [(8, [32, 32], False, 41), (6, [20], True, 42)]:
            case = _config_case(nin, hidden_sizes, nin, 1, natural) + ", random binary batch of 32"
            out = student.run("q2.made_log_prob", nin=nin, hidden_sizes=hidden_sizes, num_masks=1,
                              natural_ordering=natural, seed=seed, batch=32)
            log_p = expect_tensor(out["log_prob"], what=what, case=case, shape=(32,), dtype_kind="float")
            expect_close(log_p, bernoulli_ll(out["x"], out["per_set"][0]["logits"]), what=what,
                         case=case + " (vs the Bernoulli log-likelihood of your own forward logits)", **LL)
    with cases.case(0.2, "log_prob: exp(log_prob) sums to 1 over all inputs", requires=(one_set, several_sets)):
        for nin, hidden_sizes, num_masks, seed in [(6, [32], 1, 43), (5, [24], 3, 44)]:
            case = _config_case(nin, hidden_sizes, nin, num_masks, False) + f", all {2 ** nin} binary inputs"
            out = student.run("q2.made_log_prob", nin=nin, hidden_sizes=hidden_sizes, num_masks=num_masks,
                              natural_ordering=False, seed=seed)
            log_p = expect_tensor(out["log_prob"], what=what, case=case, shape=(2 ** nin,), dtype_kind="float")
            expect_sums_to_one(log_p, what=what, case=case, outcomes=f"{2 ** nin} binary inputs")
    with cases.case(0.3, several_sets):
        for nin, hidden_sizes, num_masks, natural, seed in [(6, [32], 3, False, 45), (5, [16, 16], 2, True, 46)]:
            case = _config_case(nin, hidden_sizes, nin, num_masks, natural) + ", random binary batch of 16"
            out = student.run("q2.made_log_prob", nin=nin, hidden_sizes=hidden_sizes, num_masks=num_masks,
                              natural_ordering=natural, seed=seed, batch=16)
            log_p = expect_tensor(out["log_prob"], what=what, case=case, shape=(16,), dtype_kind="float")
            expect_close(log_p, ensemble_log_prob(out["per_set"], out["x"]), what=what,
                         case=case + " (vs log (1/M) sum_k p_k(x), from your own forward logits under each mask "
                                     "set)", **LL)
    with cases.case(0.1, "log_prob leaves the model with the mask set it had", requires=several_sets):
        for advance in (1, 2):
            case = _config_case(5, [20], 5, 3, False) + f", mask set {advance} in use"
            out = student.run("q2.made_log_prob", nin=5, hidden_sizes=[20], num_masks=3, natural_ordering=False,
                              seed=47, batch=8, advance=advance)
            expect_same_state(out["after"], out["before"], what=what, case=case,
                              problem="log_prob must leave the model with the mask set it had before the call")
    with cases.case(0.1, "log_prob is finite and exact for large logits"):
        case = _config_case(6, [32], 6, 1, False) + ", weights scaled so that |logits| reach a few hundred"
        out = student.run("q2.made_log_prob", nin=6, hidden_sizes=[32], num_masks=1, natural_ordering=False,
                          seed=48, batch=16, weight_scale=80.0)
        log_p = expect_tensor(out["log_prob"], what=what, case=case, shape=(16,), dtype_kind="float")
        expect_close(log_p, bernoulli_ll(out["x"], out["per_set"][0]["logits"]), what=what,
                     case=case + " (do not take log(sigmoid(.)) directly)", **LL)
    with cases.case(0.1, "log_prob is differentiable with one mask set (training minimises -log_prob)",
                    requires=one_set):
        case = _config_case(5, [16], 5, 1, False)
        out = student.run("q2.made_log_prob", nin=5, hidden_sizes=[16], num_masks=1, natural_ordering=False,
                          seed=49, batch=8, backward=True)
        norms = out["grad_norms"]
        if isinstance(norms, str):
            fail(what, case, f"{norms.rstrip('.')}. With one mask set, log_prob must leave the masks alone (set_mask writes in "
                             "place into tensors that the backward pass needs): training minimises -log_prob")
        expect_true(all(0 < g < float("inf") for g in norms), what=what, case=case,
                    problem=f"sum(log_prob).backward() should give finite non-zero gradients to every weight, "
                            f"got gradient norms {norms}")
    cases.finish(set_score)


# ---------------------------------------------------------------------------
# 2c
# ---------------------------------------------------------------------------

@graded("2c-1-hidden", partial=True)
def test_2c_sample_hidden(student, reference, set_score=None):
    cases = SubCases()
    what = "MADE.sample"
    n = 4000
    runs = {}
    distribution_cases = [  # name, kwargs (seeds picked so that sampling in the wrong order is far off)
        ("natural ordering", dict(nin=5, hidden_sizes=[32], natural_ordering=True, seed=33)),
        ("random ordering, two hidden layers", dict(nin=5, hidden_sizes=[24, 24], natural_ordering=False, seed=58)),
        ("mask set 1 of 3 in use", dict(nin=5, hidden_sizes=[20, 20], natural_ordering=False, seed=43, num_masks=3,
                                         advance=1)),
    ]
    for name, kwargs in distribution_cases:
        with cases.case(0.3, f"sample: distribution, {name}"):
            case = f"MADE({kwargs['nin']}, {kwargs['hidden_sizes']}, {kwargs['nin']}, num_masks=" \
                   f"{kwargs.get('num_masks', 1)}), {name}, sample({n}, generator)"
            out = runs[name] = student.run("q2.made_sample", weight_scale=3.0, n=n, gen_seed=7, n_none=20, **kwargs)
            samples = out["samples"]
            expect_binary_samples(samples, n, kwargs["nin"], what=what, case=case)
            expect_model_depends_on_inputs(out, what=what, case=case)
            p_value, stat, df = sample_p_value(samples, out["all_x"], out["logits"])
            expect_true(p_value >= MIN_P_VALUE, what=what, case=case + f", order {out['before']['order'].tolist()}",
                        problem=f"the samples do not follow the model's distribution p(x) computed from its "
                                f"forward pass (chi-square {stat:.1f} with {df} degrees of freedom, p-value "
                                f"{p_value:.2g} < {MIN_P_VALUE:g}): sample the variables in the order self.order, "
                                "with the mask set in use")
    distributions = [f"sample: distribution, {name}" for name, _ in distribution_cases]
    with cases.case(0.15, "sample leaves the mask set in use", requires=distributions):
        for name, _ in distribution_cases:
            out = needs(runs.get(name), what=what, case=name)
            expect_same_state(out["after"], out["before"], what=what, case=name,
                              problem="sampling must not change the mask set (masks, order, mask_index)")
    with cases.case(0.2, "sample: exactly D forward passes", requires=distributions):
        for nin, hidden_sizes, sample_n in [(7, [16], 50), (2, [8], 10), (3, [], 1)]:
            case = f"MADE({nin}, {hidden_sizes}, {nin}), sample({sample_n}, generator)"
            out = runs[nin] = student.run("q2.made_sample", nin=nin, hidden_sizes=hidden_sizes, natural_ordering=False,
                                          seed=50 + nin, weight_scale=1.0, n=sample_n, gen_seed=3)
            expect_true(out["forward_calls"] == nin, what=what, case=case,
                        problem=f"expected exactly D = {nin} forward passes, counted {out['forward_calls']}")
        for name, _ in distribution_cases:
            out = needs(runs.get(name), what=what, case=name)
            expect_true(out["forward_calls"] == 5, what=what, case=name,
                        problem=f"expected exactly D = 5 forward passes, counted {out['forward_calls']}")
    with cases.case(0.1, "sample: shape, dtype and values for small n; same generator seed, same samples",
                    requires=distributions):
        for nin, sample_n in ((7, 50), (2, 10), (3, 1)):
            case = f"MADE({nin}, ..., {nin}), sample({sample_n}, generator)"
            out = needs(runs.get(nin), what=what, case=case)
            expect_binary_samples(out["samples"], sample_n, nin, what=what, case=case)
            first, second = out["repeat"]
            expect_binary_samples(first, 64, nin, what=what, case=f"MADE({nin}, ..., {nin}), sample(64, generator)")
            expect_true(torch.equal(first, second), what=what, case=f"MADE({nin}, ...), sample(64) twice with "
                        "generators of the same seed", problem="the samples differ: draw every random number from "
                                                                "`generator`")
    with cases.case(0.15, "sample with generator=None", requires=distributions):
        for name, kwargs in distribution_cases:
            out = needs(runs.get(name), what=what, case=name)
            expect_binary_samples(out["none"], 20, kwargs["nin"], what=what, case=f"{name}, sample(20) (generator=None)")
    cases.finish(set_score)
