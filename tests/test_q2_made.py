"""Public tests of Question 2 (made.py): 2a MaskedLinear, degrees and masks; 2b MADE; 2c sampling.

The probes are in ``src/grading/worker/probes/q2.py``.  2b and 2c run your ``MADE`` with
stand-ins for ``MaskedLinear``, ``made_degrees`` and ``made_masks`` (they build a
valid but simpler MADE than the one 2a asks for), so each part is graded on its
own: a bug in ``made_masks`` costs points in 2a only.

No points without a correct result: a part that checks a property that code
computing nothing could have (autoregressive, D forward passes, reproducible, ...)
earns its points only when the same function also gives correct values in the
part it names (``requires``).  A part whose own check is a result of the student's
code and needs no other part (the mask buffer that ``MaskedLinear.__init__``
registers) is credited on its own.

Tolerances: the models and inputs are float32 (as in training), so values are
compared within float32 rounding of a few sums (``F32``); log-likelihoods that
the test computes from your own logits are compared in float64 against your
float32 result (``LL``).
"""
import torch

from src.grading.host.graded import graded
from src.grading.host.judging.goodness_of_fit import MIN_P_VALUE
from src.grading.host.judging.checks import expect_close, expect_equal, expect_sums_to_one, expect_tensor
from src.grading.host.judging.device import expect_same_on_another_device
from src.grading.host.judging.subcases import SubCases
from src.grading.host.judging.q2 import (
    F32,
    LL,
    mask_label,
    sample_p_value,
    needs,
    expect_true,
    bernoulli_ll,
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

@graded("2a-0-basic", partial=True)
def test_2a_masked_linear_degrees_masks(student, reference, set_score=None):
    """Four parts judged on their own (no ``requires``) and a device part:

    * ``the mask buffer`` (0.25): what ``__init__`` registers (a buffer, in the state_dict, all ones) and that
      the buffer then holds what ``set_mask`` stored (a result, so that a layer computing nothing earns
      nothing); it does not depend on forward, so a failing gradient does not withhold it;
    * ``set_mask, forward and gradients`` (0.2): values against the reference's, the gradient 0 where the mask
      is 0, and forward leaving ``self.weight`` unchanged;
    * ``made_degrees``, ``made_masks`` (0.2 each): values against the reference's;
    * ``set_mask, forward on another device`` (0.15): the same values there as on the CPU; needs the values part.
    """
    cases = SubCases()
    what, out = "MaskedLinear", None
    with cases.case(0.25, "MaskedLinear: the mask buffer"):
        out = student.run("q2.masked_linear", seed=0, in_features=5, out_features=3, batch=4)
        case = "MaskedLinear(5, 3)"
        expect_true(out["is_buffer"], what=what, case=case,
                    problem="self.mask must be registered with register_buffer('mask', ...)")
        expect_true(not out["is_parameter"], what=what, case=case, problem="the mask must be a buffer, not a Parameter")
        expect_true(out["in_state_dict"], what=what, case=case,
                    problem="'mask' is not in the layer's state_dict() (register it as a persistent buffer)")
        mask = expect_tensor(out["initial_mask"], what=what, case=case + ", mask after __init__", shape=(3, 5),
                             dtype_kind="float")
        expect_true(bool((mask == 1).all()), what=what, case=case, problem="the initial mask must be all ones")
        # the buffer must also hold what set_mask stored: a registered buffer alone is structure, which a
        # MaskedLinear that computes nothing (set_mask doing nothing) would have too
        expect_equal(out["mask_after_set"], out["mask_set"], what="MaskedLinear.set_mask",
                     case=case + ", the mask buffer after set_mask")
    with cases.case(0.2, "MaskedLinear: set_mask, forward and gradients"):
        case = "MaskedLinear(5, 3), one random mask, batch of 4"
        needs(out, what=what, case=case, part="MaskedLinear: the mask buffer")
        expect_equal(out["mask_after_set"], out["mask_set"], what="MaskedLinear.set_mask", case=case)
        expect_close(out["out"], reference("ml_out", out["out"]), what="MaskedLinear.forward", case=case, **F32)
        grad = expect_masked_gradient(out, (3, 5), case=case)
        expect_close(grad, reference("ml_weight_grad", grad), what="MaskedLinear.forward",
                     case=case + ", gradient of the weight", **F32)

    order, hidden = [2, 0, 3, 1], [6, 5]
    with cases.case(0.2, "made_degrees"):
        what, case = "made_degrees", f"order={order}, hidden_sizes={hidden}"
        out = student.run("q2.made_degrees", order=order, hidden_sizes=hidden, seed=0)
        degrees = out["degrees"]
        expect_true(isinstance(degrees, list) and len(degrees) == 3, what=what, case=case,
                    problem=f"expected a list of 3 tensors, got {degrees!r}"[:300])
        expect_tensor(degrees[0], what=what, case=case + ", input degrees m0", shape=(4,), dtype_kind="int")
        expect_equal(degrees[0], reference("m0", degrees[0]), what=what, case=case + ", input degrees m0")
        low = 0
        for layer, size in enumerate(hidden, start=1):
            m = expect_tensor(degrees[layer], what=what, case=f"{case}, layer {layer}", shape=(size,),
                              dtype_kind="int")
            expect_true(bool(((m >= low) & (m <= 2)).all()), what=what, case=f"{case}, layer {layer}",
                        problem=f"hidden degrees must lie in {{{low}, ..., D-2 = 2}}, got {m.tolist()}")
            low = int(m.min())
        again = out["again"]
        expect_true(all(torch.equal(a, b) for a, b in zip(degrees, again)), what=what, case=case,
                    problem="two calls with generators of the same seed gave different degrees: draw them with "
                            "the generator")
    with cases.case(0.2, "made_masks"):
        what = "made_masks"
        for k in (1, 2):
            degrees = [[1, 3, 0, 2], [0, 2, 1, 1, 0], [1, 2, 2, 0, 1, 2]]
            case = f"degrees={degrees}, k={k}"
            masks = student.run("q2.made_masks", degrees=degrees, k=k)
            expect_true(isinstance(masks, list) and len(masks) == 3, what=what, case=case,
                        problem=f"expected a list of 3 masks, got {masks!r}"[:300])
            for layer, (mask, shape) in enumerate(zip(masks, [(5, 4), (6, 5), (4 * k, 6)])):
                expect_tensor(mask, what=what, case=f"{case}, {mask_label(layer, 3)}", shape=shape, dtype_kind="float")
                expect_equal(mask, reference(f"masks_k{k}_{layer}", mask), what=what, case=f"{case}, {mask_label(layer, 3)}")
    with cases.case(0.15, "MaskedLinear.set_mask, forward on another device",
                    requires="MaskedLinear: set_mask, forward and gradients") as notes:
        label = "MaskedLinear.set_mask, forward"
        out = student.run("device.made_part", question="2a", label=label)
        expect_same_on_another_device(out, notes, question="2a", label=label)
    cases.finish(set_score)


# ---------------------------------------------------------------------------
# 2b
# ---------------------------------------------------------------------------

@graded("2b-0-basic", partial=True)
def test_2b_made_forward_update_masks_log_prob(student, reference, set_score=None):
    cases = SubCases()
    what = "MADE.forward / update_masks"
    forward_values = "forward with given weights and masks"
    with cases.case(0.2, "forward: shape and autoregressive property (natural ordering)", requires=forward_values):
        case = "MADE(4, [16], 4), natural ordering, one mask set"
        out = student.run("q2.made_structure", nin=4, hidden_sizes=[16], nout=4, num_masks=1,
                          natural_ordering=True, seed=0, n_sets=1)
        entry = out["sets"][0]
        expect_true(entry["out_shape"] == [8, 4], what="MADE.forward", case=case + ", batch of 8",
                    problem=f"expected logits of shape (8, 4), got {entry['out_shape']}")
        expect_true(entry["out_dtype"].startswith("torch.float"), what="MADE.forward", case=case,
                    problem=f"expected float logits, got {entry['out_dtype']}")
        expect_equal(entry["order"], torch.arange(4), what="MADE.update_masks", case=case + ", self.order")
        expect_true(entry["mask_index"] == 0, what="MADE.update_masks", case=case,
                    problem=f"after __init__, mask_index must be 0, got {entry['mask_index']!r}")
        expect_autoregressive(entry, 4, 4, what=what, case=case)
    with cases.case(0.2, "update_masks: random orderings, cycling through 2 mask sets", requires=forward_values):
        case = "MADE(5, [24], 5, num_masks=2, natural_ordering=False)"
        out = student.run("q2.made_structure", nin=5, hidden_sizes=[24], nout=5, num_masks=2,
                          natural_ordering=False, seed=1, n_sets=3)
        for i, entry in enumerate(out["sets"]):
            expect_true(entry["mask_index"] == i % 2, what="MADE.update_masks", case=f"{case}, after {i} calls",
                        problem=f"expected mask_index {i % 2}, got {entry['mask_index']!r}")
            expect_autoregressive(entry, 5, 5, what=what, case=f"{case}, after {i} calls of update_masks")
        expect_same_state(out["sets"][2], out["sets"][0], what="MADE.update_masks", case=case,
                          problem="after num_masks = 2 calls the model must be back to the masks it started with")
    with cases.case(0.15, forward_values):
        case = "MADE(4, [8], 4) with seeded weights and random 0/1 masks set by set_mask"
        out = student.run("q2.made_forward_loaded", nin=4, hidden_sizes=[8], nout=4, seed=3, batch=6)
        expect_close(out["logits"], reference("loaded_logits", out["logits"]), what="MADE.forward", case=case,
                     **F32)
    with cases.case(0.1, "log_prob with one mask set"):
        case = "MADE(4, [16], 4), natural ordering, all 16 binary inputs"
        out = student.run("q2.made_log_prob", nin=4, hidden_sizes=[16], num_masks=1, natural_ordering=True, seed=2)
        log_p = expect_tensor(out["log_prob"], what="MADE.log_prob", case=case, shape=(16,), dtype_kind="float")
        expected = bernoulli_ll(out["x"], out["per_set"][0]["logits"])
        expect_close(log_p, expected, what="MADE.log_prob", case=case + " (vs the Bernoulli log-likelihood of your "
                     "own forward logits)", **LL)
        expect_sums_to_one(log_p, what="MADE.log_prob", case=case, outcomes="16 binary inputs")
    with cases.case(0.1, "log_prob with 2 mask sets: normalised, mask set restored"):
        case = "MADE(4, [16], 4, num_masks=2, natural_ordering=False), all 16 binary inputs"
        out = student.run("q2.made_log_prob", nin=4, hidden_sizes=[16], num_masks=2, natural_ordering=False,
                          seed=4)
        log_p = expect_tensor(out["log_prob"], what="MADE.log_prob", case=case, shape=(16,), dtype_kind="float")
        expect_close(log_p, ensemble_log_prob(out["per_set"], out["x"]), what="MADE.log_prob",
                     case=case + " (vs log (1/M) sum_k p_k(x), from your own forward logits under each mask set)",
                     **LL)
        expect_sums_to_one(log_p, what="MADE.log_prob", case=case, outcomes="16 binary inputs",
                           hint=": the ensemble must be the log of the mean of the likelihoods")
        expect_same_state(out["after"], out["before"], what="MADE.log_prob", case=case,
                          problem="log_prob must leave the model with the mask set it had before the call")
    one_set, ensemble = "MADE.forward, log_prob", "MADE.log_prob (3 mask sets), update_masks"
    with cases.case(0.1, f"{one_set} on another device",
                    requires=(forward_values, "log_prob with one mask set")) as notes:
        out = student.run("device.made_part", question="2b", label=one_set)
        expect_same_on_another_device(out, notes, question="2b", label=one_set)
    with cases.case(0.05, f"{ensemble} on another device",
                    requires="log_prob with 2 mask sets: normalised, mask set restored") as notes:
        out = student.run("device.made_part", question="2b", label=ensemble)
        expect_same_on_another_device(out, notes, question="2b", label=ensemble)
    with cases.case(0.1, "MADE.log_prob of a float64 model (model.double())"):
        case = "MADE(6, [12, 12], 6) in float64, a batch of 5 binary float64 inputs"
        out = student.run("device.made_part", question="2b", label=one_set, dtype="float64")["cpu"]
        for key in ("forward", "log_prob"):
            expect_close(out[key], reference(f"float64_{key}", out[key]), what=f"MADE.{key}", case=case, **F32)
    cases.finish(set_score)


# ---------------------------------------------------------------------------
# 2c
# ---------------------------------------------------------------------------

@graded("2c-0-basic", partial=True)
def test_2c_made_sample(student, reference, set_score=None):
    cases = SubCases()
    what = "MADE.sample"
    case = "MADE(4, [16], 4) with a random ordering, sample(4000, generator)"
    out = None
    distribution = "sample: distribution (chi-square test against the model's own probabilities)"
    with cases.case(0.2, "sample: shape, values, D forward passes, reproducible", requires=distribution):
        out = student.run("q2.made_sample", nin=4, hidden_sizes=[16], num_masks=1, natural_ordering=False, seed=2,
                          weight_scale=3.0, n=4000, gen_seed=0)
        samples = out["samples"]
        expect_binary_samples(samples, 4000, 4, what=what, case=case)
        expect_true(out["forward_calls"] == 4, what=what, case=case,
                    problem=f"expected exactly D = 4 forward passes, counted {out['forward_calls']}")
        first, second = out["repeat"]
        expect_binary_samples(first, 64, 4, what=what, case="sample(64, generator)")
        expect_true(torch.equal(first, second), what=what, case="sample(64) twice with generators of the same seed",
                    problem="the samples differ: draw every random number from `generator`")
    with cases.case(0.2, distribution):
        samples = needs(out, what=what, case=case)["samples"]
        expect_binary_samples(samples, 4000, 4, what=what, case=case)
        expect_model_depends_on_inputs(out, what=what, case=case)
        p_value, stat, df = sample_p_value(samples, out["all_x"], out["logits"])
        expect_true(p_value >= MIN_P_VALUE, what=what, case=case + f", order {out['before']['order'].tolist()}",
                    problem=f"the 4000 samples do not follow the model's distribution p(x) computed from its "
                            f"forward pass (chi-square {stat:.1f} with {df} degrees of freedom, p-value "
                            f"{p_value:.2g} < {MIN_P_VALUE:g}): sample the variables in the order self.order, "
                            "one forward pass each")
    with cases.case(0.1, "MADE.sample on another device", requires=distribution) as notes:
        out = student.run("device.made_part", question="2c", label="MADE.sample")
        expect_same_on_another_device(out, notes, question="2c", label="MADE.sample")
    cases.finish(set_score)
