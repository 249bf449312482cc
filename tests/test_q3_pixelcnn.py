"""Public tests of Question 3 (pixelcnn.py): masked convolutions, PixelCNN, sampling.

3b and 3c run the student's PixelCNN on weights that the reference's masks have
already zeroed (recorded values) with torch's own convolution, so a bug in 3a
costs points in 3a only; 3c judges the samples against the model's own forward,
so a 3b bug that keeps the model autoregressive costs points in 3b only (see
src/grading/worker/probes/q3.py).  Models are float64 (forward must preprocess to the
weights' dtype, as its docstring says); logits and log-probabilities are compared
within 1e-4, which a student computing some of it in float32 still meets, far
below any real bug.
"""
import torch

from src.grading.host.graded import graded
from src.grading.host.judging.checks import expect_close, expect_equal, expect_tensor, fail, needs
from src.grading.host.judging.device import expect_same_on_another_device
from src.grading.host.judging.subcases import SubCases
from src.grading.host.judging.goodness_of_fit import MIN_P_VALUE, chi_square_p_value
from src.grading.host.judging.q3 import (LARGE_DRAW_TIMEOUT_S, expect_depends_on_earlier, expect_normalised,
                                   image_codes, log_probs_from_logits, recorded, run_model_probe)

GREY = dict(in_channels=1, num_levels=2, channels=8, num_blocks=1, kernel_size=3)


def _weights(student, reference, key, seed, gain=1.5, **layers):
    return recorded(student, reference, f"weights/{key}", "q3.reference_weights", seed=seed, gain=gain, **layers)


def _conv_mask_and_masked_conv_values(student, reference):
    cases = [["A", 2, 3, 3], ["B", 2, 3, 3], ["A", 1, 1, 5], ["B", 1, 1, 5]]
    masks = student.run("q3.conv_masks", cases=cases)
    for case, mask in zip(cases, masks):
        t, cin, cout, k = case
        what, name = "conv_mask", f"mask_type={t!r}, in={cin}, out={cout}, kernel_size={k}"
        expect_tensor(mask, what=what, case=name, shape=(cout, cin, k, k), dtype_kind="float")
        expect_equal(mask, reference(f"mask/{name}", mask), what=what, case=name)

    cases = [["A", 2, 3, 3, 2, 5, 6], ["B", 3, 2, 5, 1, 4, 4]]
    masks = recorded(student, reference, "masks_of_convs", "q3.conv_masks", cases=[c[:4] for c in cases], flat=True)
    outs = student.run("q3.masked_conv", seed=1, cases=cases, masks=masks)
    for case, out in zip(cases, outs):
        t, cin, cout, k, B, H, W = case
        what = "MaskedConv2d.forward"
        name = f"MaskedConv2d({t!r}, {cin}, {cout}, {k}) on a float64 input of shape {(B, cin, H, W)}"
        expect_close(out["out"], reference(f"out/{name}", out["out"]), what=what, case=name, atol=1e-8, rtol=1e-8)
        expect_close(out["out_other_masked_weights"], out["out"], what=what,
                     case=name + ", after changing the weights where the mask is 0 (the output must not change)",
                     atol=1e-8, rtol=1e-8)


@graded("3a-0-basic", partial=True)
def test_conv_mask_and_masked_conv(student, reference, set_score=None):
    """conv_mask and MaskedConv2d.forward against the reference's; then MaskedConv2d on another device, which needs them."""
    cases, values = SubCases(), "conv_mask and MaskedConv2d.forward"
    with cases.case(0.8, values):
        _conv_mask_and_masked_conv_values(student, reference)
    with cases.case(0.2, "MaskedConv2d.forward on another device", requires=values) as notes:
        for label in ("MaskedConv2d.forward", "MaskedConv2d.forward, colour"):  # a colour layer keeps its mask too
            out = student.run("device.pixelcnn_part", question="3a", label=label)
            expect_same_on_another_device(out, notes, question="3a", label=label)
    cases.finish(set_score)


@graded("3b-0-basic", partial=True)
def test_pixelcnn_forward_and_log_prob(student, reference, set_score=None):
    """Four parts of 0.2 and a device part of 0.2; values are judged by values, properties by properties:

    * ``ResidualBlock.forward``, ``PixelCNN.forward``, ``PixelCNN.log_prob``: values, against the reference's;
    * ``log_prob sums to 1 over all images``: a property, judged on the model's own outputs (exp(log_prob) sums
      to 1, log_prob is the chain rule of its own forward, and that forward depends on earlier pixels), so a
      forward with wrong values that stays autoregressive (an input scaled to [-1, 1] instead of ``preprocess``)
      keeps it; a log_prob that computes nothing does not earn it;
    * ``on another device`` (0.2): the same values there as on the CPU; needs ``PixelCNN.log_prob``.
    """
    cases = SubCases()
    with cases.case(0.2, "ResidualBlock.forward"):
        weights = _weights(student, reference, "residual", seed=2, residual_channels=6)
        out = run_model_probe(student, "q3.residual_block", weights=weights, seed=2, channels=6, batch=2, height=3,
                              width=4)
        case = "ResidualBlock(6) on a float64 input of shape (2, 6, 3, 4), random weights"
        expect_close(out, reference("residual", out), what="ResidualBlock.forward", case=case, atol=1e-4, rtol=1e-4)

    config = dict(GREY, num_levels=3)
    case = ("PixelCNN(num_levels=3, channels=8, num_blocks=1, kernel_size=3) with random weights, "
            "x of shape (3, 1, 4, 5)")
    out = None
    with cases.case(0.2, "PixelCNN.forward"):
        weights = _weights(student, reference, "forward", seed=3, config=config)
        out = run_model_probe(student, "q3.pixelcnn_forward", weights=weights, seed=3, config=config, batch=3,
                              height=4, width=5)
        expect_tensor(out["logits"], what="PixelCNN.forward", case=case, shape=(3, 3, 1, 4, 5), dtype_kind="float")
        expect_close(out["logits"], reference("logits", out["logits"]), what="PixelCNN.forward", case=case,
                     atol=1e-4, rtol=1e-4)
    with cases.case(0.2, "PixelCNN.log_prob"):
        needs(out, what="PixelCNN.log_prob", case=case, part="PixelCNN.forward")
        expect_tensor(out["log_prob"], what="PixelCNN.log_prob", case=case, shape=(3,), dtype_kind="float")
        expect_close(out["log_prob"], reference("log_prob", out["log_prob"]), what="PixelCNN.log_prob", case=case,
                     atol=1e-4, rtol=1e-4)

    with cases.case(0.2, "log_prob sums to 1 over all images"):
        weights = _weights(student, reference, "all", seed=4, config=GREY)
        out = run_model_probe(student, "q3.pixelcnn_all_log_probs", weights=weights, config=GREY, height=2, width=3)
        case = ("PixelCNN(num_levels=2, channels=8, num_blocks=1, kernel_size=3) on all 64 binary images of "
                "size 2x3")
        expect_normalised(out, levels=2, colors=1, height=2, width=3, case=case)
    with cases.case(0.2, "PixelCNN.forward, log_prob on another device", requires="PixelCNN.log_prob") as notes:
        out = student.run("device.pixelcnn_part", question="3b", label="PixelCNN.forward, log_prob")
        expect_same_on_another_device(out, notes, question="3b", label="PixelCNN.forward, log_prob")
    cases.finish(set_score)


def _pixelcnn_sample_values(student, reference):
    # gain 2.5: strong dependences between pixels, so that sampling in the wrong order is caught (checked with
    # planted bugs); a vectorised sampler takes well under a second here (the time limit: LARGE_DRAW_TIMEOUT_S)
    weights = _weights(student, reference, "sample", seed=7, gain=2.5, config=GREY)
    runs = [{"n": 4000, "generator_seed": 0}, {"n": 4000, "generator_seed": 0}, {"n": 3, "generator_seed": None}]
    out = run_model_probe(student, "q3.pixelcnn_sample", timeout_s=LARGE_DRAW_TIMEOUT_S, weights=weights, seed=7,
                          config=GREY, runs=runs, height=2, width=2, with_model_logits=True)
    for run, result in zip(runs, out["runs"]):
        case = f"n={run['n']}, image_shape=(2, 2), generator=" + (
            "None" if run["generator_seed"] is None else f"torch.Generator().manual_seed({run['generator_seed']})")
        samples = expect_tensor(result["samples"], what="PixelCNN.sample", case=case, shape=(run["n"], 1, 2, 2),
                                dtype_kind="int")
        if samples.dtype != torch.int64:
            fail("PixelCNN.sample", case, f"expected dtype torch.int64, got {samples.dtype}")
        if not bool(((samples == 0) | (samples == 1)).all()):
            fail("PixelCNN.sample", case, f"values must be in {{0, 1}}, got {sorted(set(samples.unique().tolist()))}")
        if result["forward_calls"] != 4:
            fail("PixelCNN.sample", case, f"expected exactly H*W = 4 forward passes for the whole batch, "
                                          f"counted {result['forward_calls']}")
    first, again = out["runs"][0]["samples"], out["runs"][1]["samples"]
    if not torch.equal(first, again):
        fail("PixelCNN.sample", "twice with torch.Generator().manual_seed(0)",
             f"the two calls gave different samples ({int((first != again).any(dim=(1, 2, 3)).sum())} of 4000 "
             f"images differ): draw every random number from `generator`")
    logits = expect_tensor(out["logits"], what="PixelCNN.forward", case="all 16 binary 2x2 images",
                           shape=(16, 2, 1, 2, 2), dtype_kind="float")
    expect_depends_on_earlier(logits, what="PixelCNN.sample", case="4000 samples of 2x2 binary images")
    log_p = log_probs_from_logits(logits, out["images"])
    log_p = log_p - log_p.exp().sum().log()
    p_value, stat, df = chi_square_p_value(image_codes(first, 2), log_p)
    if p_value < MIN_P_VALUE:
        fail("PixelCNN.sample", "4000 samples of 2x2 binary images from a random model",
             f"the samples do not follow the model's own conditionals (from its forward): chi-square "
             f"{stat:.1f} with {df} degrees of freedom, p-value {p_value:.2g} < 1e-6")


@graded("3c-0-basic", partial=True)
def test_pixelcnn_sample(student, reference, set_score=None):
    """Samples: shape, values, H*W forward passes, reproducible, the model's distribution; then on another device."""
    cases, values = SubCases(), "PixelCNN.sample: shape, values, forward passes, distribution"
    with cases.case(0.8, values):
        _pixelcnn_sample_values(student, reference)
    with cases.case(0.2, "PixelCNN.sample on another device", requires=values) as notes:
        out = student.run("device.pixelcnn_part", question="3c", label="PixelCNN.sample")
        expect_same_on_another_device(out, notes, question="3c", label="PixelCNN.sample")
    cases.finish(set_score)
