"""Hidden tests of Question 3 (pixelcnn.py): masked convolutions, PixelCNN, sampling.

Each test scores graded parts (partial credit).  3b and 3c run the student's
PixelCNN on weights that the reference's masks have already zeroed (recorded
values) with torch's own convolution, so a bug in 3a costs points in 3a only;
3c judges the samples against the model's own forward, so a bug in forward or
log_prob that keeps the model autoregressive costs points in 3b only (see
src/grading/worker/probes/q3.py).  Models are float64 (as forward's docstring allows);
values are compared within 1e-4, which a student computing some of it in float32
still meets.

Where the hidden values are absent (a student's copy), every part still runs the
student's code, on stand-in inputs, so that crashes show; its verdict is unknown.
"""
import torch

from src.grading.host.graded import graded
from src.grading.host.judging.checks import expect_close, expect_equal, expect_finite, expect_tensor, fail
from src.grading.host.judging.subcases import run_subcases
from src.grading.host.judging.goodness_of_fit import MIN_P_VALUE, chi_square_p_value
from src.grading.host.judging.q3 import (LARGE_DRAW_TIMEOUT_S, SMALL_DRAW_TIMEOUT_S, absent, dependence_problems,
                                   expect_depends_on_earlier, expect_normalised, image_codes, log_probs_from_logits,
                                   recorded, run_model_probe)


def _pixelcnn_name(config):
    return (f"PixelCNN(num_levels={config['num_levels']}, channels={config['channels']}, "
            f"num_blocks={config['num_blocks']}, kernel_size={config['kernel_size']}) with random weights")


def _config(K, channels, blocks, kernel):
    return dict(in_channels=1, num_levels=K, channels=channels, num_blocks=blocks, kernel_size=kernel)


def _weights(student, reference, key, seed, gain=1.5, **layers):
    return recorded(student, reference, f"weights/{key}", "q3.reference_weights", seed=seed, gain=gain, **layers)


# ------------------------------------------------------------------------------- 3a
MASK_CASES = [[1, 1, 1], [1, 4, 3], [3, 5, 5], [2, 2, 7], [4, 1, 7], [5, 3, 3]]
CONV_CASES = [["A", 1, 4, 7, 2, 3, 5], ["B", 4, 4, 3, 3, 6, 5], ["B", 3, 2, 1, 2, 4, 3], ["A", 2, 3, 5, 1, 7, 6],
              ["B", 2, 5, 7, 1, 4, 4], ["A", 3, 3, 1, 1, 2, 2]]


@graded("3a-1-hidden", partial=True)
def test_conv_mask_and_masked_conv_hidden(student, reference, set_score=None):
    def masks_of(mask_type):
        cases = [[mask_type, cin, cout, k] for cin, cout, k in MASK_CASES]
        masks = student.run("q3.conv_masks", cases=cases)
        for (t, cin, cout, k), mask in zip(cases, masks):
            name = f"mask_type={t!r}, in={cin}, out={cout}, kernel_size={k}"
            expect_tensor(mask, what="conv_mask", case=name, shape=(cout, cin, k, k), dtype_kind="float")
            expect_equal(mask, reference(f"mask/{name}", mask), what="conv_mask", case=name, hidden=True)

    def masked_conv():
        masks = recorded(student, reference, "masks_of_convs", "q3.conv_masks", cases=[c[:4] for c in CONV_CASES],
                         flat=True)
        outs = student.run("q3.masked_conv", seed=11, cases=CONV_CASES, masks=masks)
        if masks is None:
            raise absent("3a-1-hidden/masks_of_convs")
        for (t, cin, cout, k, B, H, W), out in zip(CONV_CASES, outs):
            name = f"MaskedConv2d({t!r}, {cin}, {cout}, {k}) on a float64 input of shape {(B, cin, H, W)}"
            expect_close(out["out"], reference(f"out/{name}", out["out"]), what="MaskedConv2d.forward", case=name,
                         atol=1e-8, rtol=1e-8, hidden=True)
            expect_close(out["out_other_masked_weights"], out["out"], what="MaskedConv2d.forward",
                         case=name + ", after changing the weights where the mask is 0 (the output must not change)",
                         atol=1e-8, rtol=1e-8, hidden=True)

    run_subcases([("conv_mask, type A", 0.5, lambda: masks_of("A")),
                  ("conv_mask, type B", 0.5, lambda: masks_of("B")),
                  ("MaskedConv2d.forward", 0.5, masked_conv)], set_score)


# ------------------------------------------------------------------------------- 3b
FORWARD_CASES = [(_config(4, 6, 2, 5), 2, 5, 3), (_config(3, 8, 0, 7), 3, 3, 4), (_config(2, 8, 2, 3), 2, 6, 6)]
NORMALISATION_CASES = [(_config(2, 8, 1, 3), 2, 3), (_config(4, 6, 1, 5), 1, 3), (_config(3, 8, 2, 3), 2, 2)]
DEPENDENCE_CASES = [(_config(2, 8, 2, 3), 5, 5), (_config(3, 6, 1, 5), 4, 6), (_config(2, 8, 0, 7), 3, 7)]
TIMING_CONFIG = _config(2, 16, 2, 5)


@graded("3b-1-hidden", partial=True)
def test_pixelcnn_values_hidden(student, reference, set_score=None):
    """Four parts of 0.25; values are judged by values, properties by properties:

    * ``ResidualBlock.forward``, ``PixelCNN.forward``, ``PixelCNN.log_prob``: values, against the reference's;
    * ``log_prob sums to 1 over all images``: a property, judged on the model's own outputs (``expect_normalised``:
      exp(log_prob) sums to 1, log_prob is the chain rule of its own forward, that forward depends on earlier
      pixels); it needs no reference value, so a wrong forward that stays autoregressive keeps it, and a log_prob
      that computes nothing (a constant) fails it by itself.
    """
    forward_outs = {}

    def residual():
        for channels, shape in ((8, (2, 8, 4, 3)), (6, (1, 6, 5, 5))):
            weights = _weights(student, reference, f"residual/{channels}", seed=20 + channels,
                               residual_channels=channels)
            out = run_model_probe(student, "q3.residual_block", weights=weights, seed=20 + channels,
                                  channels=channels, batch=shape[0], height=shape[2], width=shape[3])
            if weights is None:
                raise absent(f"3b-1-hidden/weights/residual/{channels}")
            case = f"ResidualBlock({channels}) on a float64 input of shape {shape}, random weights"
            expect_close(out, reference(f"residual/{channels}", out), what="ResidualBlock.forward", case=case,
                         atol=1e-4, rtol=1e-4, hidden=True)

    def run_forward(index):
        if index not in forward_outs:
            config, B, H, W = FORWARD_CASES[index]
            weights = _weights(student, reference, f"forward/{index}", seed=22 + index, config=config)
            forward_outs[index] = run_model_probe(student, "q3.pixelcnn_forward", weights=weights, seed=22 + index,
                                                  config=config, batch=B, height=H, width=W)
            if weights is None:
                raise absent(f"3b-1-hidden/weights/forward/{index}")
        return forward_outs[index]

    def forward():
        for index, (config, B, H, W) in enumerate(FORWARD_CASES):
            out = run_forward(index)
            case = f"{_pixelcnn_name(config)}, x of shape {(B, 1, H, W)}"
            expect_tensor(out["logits"], what="PixelCNN.forward", case=case,
                          shape=(B, config["num_levels"], 1, H, W), dtype_kind="float")
            expect_close(out["logits"], reference(f"logits/{index}", out["logits"]), what="PixelCNN.forward",
                         case=case, atol=1e-4, rtol=1e-4, hidden=True)

    def log_prob():
        for index, (config, B, H, W) in enumerate(FORWARD_CASES):
            out = run_forward(index)
            case = f"{_pixelcnn_name(config)}, x of shape {(B, 1, H, W)}"
            expect_tensor(out["log_prob"], what="PixelCNN.log_prob", case=case, shape=(B,), dtype_kind="float")
            expect_close(out["log_prob"], reference(f"log_prob/{index}", out["log_prob"]), what="PixelCNN.log_prob",
                         case=case, atol=1e-4, rtol=1e-4, hidden=True)

    def normalisation():
        for index, (config, H, W) in enumerate(NORMALISATION_CASES):
            weights = _weights(student, reference, f"all/{index}", seed=25 + index, config=config)
            out = run_model_probe(student, "q3.pixelcnn_all_log_probs", weights=weights, config=config, height=H,
                                  width=W)
            if weights is None:
                raise absent(f"3b-1-hidden/weights/all/{index}")
            count = config["num_levels"] ** (H * W)
            case = f"{_pixelcnn_name(config)} on all {count} images of size {H}x{W}"
            expect_normalised(out, levels=config["num_levels"], colors=1, height=H, width=W, case=case)

    run_subcases([("ResidualBlock.forward", 0.25, residual), ("PixelCNN.forward", 0.25, forward),
                  ("PixelCNN.log_prob", 0.25, log_prob),
                  ("log_prob sums to 1 over all images", 0.25, normalisation)],
                 set_score)


@graded("3b-2-hidden", partial=True)
def test_pixelcnn_structure_hidden(student, reference, set_score=None):
    """Two parts of 0.5, both properties, judged without the reference's values:

    * ``only earlier pixels are seen``: which inputs each logit depends on (``dependence_problems``: never on the
      pixel itself or later ones, and on the pixel to the left and the one above somewhere in the image).  A
      forward that computes nothing depends on nothing and fails it; a forward with wrong values that stays
      autoregressive (an input scaled to [-1, 1], a residual skip taken twice) passes it.
    * ``vectorised forward and log_prob``: speed, which code that computes nothing would pass, so it earns its
      points only with a correct result: log_prob must be the chain rule of the model's own forward, and
      (``requires``) that forward must pass ``only earlier pixels are seen``.
    """
    perturbations, errors = {}, {}

    def perturbed(index):
        """The probe's result of case ``index``, run once for both parts (its error, if it raised, again)."""
        if index in errors:
            raise errors[index]
        if index not in perturbations:
            config, H, W = DEPENDENCE_CASES[index]
            weights = _weights(student, reference, f"order/{index}", seed=40 + index, config=config)
            try:
                perturbations[index] = run_model_probe(student, "q3.pixelcnn_perturbations", weights=weights,
                                                       seed=40 + index, config=config, height=H, width=W)
                if weights is None:
                    raise absent(f"3b-2-hidden/weights/order/{index}")
            except Exception as error:  # the student's error, or absent values: the same for the second part
                errors[index] = error
                raise
        return perturbations[index]

    def dependences():
        for index, (config, H, W) in enumerate(DEPENDENCE_CASES):
            out = perturbed(index)
            case = f"{_pixelcnn_name(config)}, a {H}x{W} image and its copies with one pixel changed"
            expect_tensor(out["logits"], what="PixelCNN.forward", case=case,
                          shape=(1 + H * W, config["num_levels"], 1, H, W), dtype_kind="float")
            expect_finite(out["logits"], what="PixelCNN.forward", case=case)
            problems = dependence_problems(out, levels=config["num_levels"], colors=1, height=H, width=W)
            if problems:
                fail("PixelCNN.forward", case, "logits[b, :, 0, i, j] must depend on exactly the pixels before "
                                               "(i, j) in raster order: " + "; ".join(problems))

    def vectorised():
        for index, (config, H, W) in enumerate(DEPENDENCE_CASES):  # the timed log_prob computes a correct result
            out = perturbed(index)
            case = f"{_pixelcnn_name(config)}, a {H}x{W} image and its copies with one pixel changed"
            if out["log_prob"] is None:
                fail("PixelCNN.log_prob", case, "raised an error on this batch (forward did not)")
            expect_tensor(out["log_prob"], what="PixelCNN.log_prob", case=case, shape=(1 + H * W,),
                          dtype_kind="float")
            expect_close(out["log_prob"], log_probs_from_logits(out["logits"], out["x"]), what="PixelCNN.log_prob",
                         case=case + ": the sum over pixels of log softmax(forward(x)) at x", atol=1e-4, rtol=1e-4,
                         hidden=True)
        # best of 7 (src/grading/worker/timing.py): a Python loop over pixels is ~100 times the twin, the
        # reference 1.1 (up to 2.1 with more processes than cores)
        out = student.run("q3.pixelcnn_timing", seed=45, config=TIMING_CONFIG, batch=8, height=10, width=10,
                          repeats=7)
        for name in ("forward", "log_prob"):
            ratio = out[f"{name}_s"] / out["twin_s"]
            if ratio > 8.0:
                fail(f"PixelCNN.{name}", f"{_pixelcnn_name(TIMING_CONFIG)}, x of shape (8, 1, 10, 10)",
                     f"took {ratio:.1f} times as long as a plain nn.Conv2d stack of the same shapes (allowed: 8): "
                     f"compute all pixels at once, without Python loops over pixels or values")

    run_subcases([("only earlier pixels are seen", 0.5, dependences),
                  ("vectorised forward and log_prob", 0.5, vectorised, "only earlier pixels are seen")], set_score)


# ------------------------------------------------------------------------------- 3c
SAMPLE_CONFIG = _config(2, 8, 1, 3)


def _check_samples(result, *, n, shape, levels, case):
    samples = expect_tensor(result["samples"], what="PixelCNN.sample", case=case, shape=(n, 1, *shape),
                            dtype_kind="int")
    if samples.dtype != torch.int64:
        fail("PixelCNN.sample", case, f"expected dtype torch.int64, got {samples.dtype}")
    if not bool(((samples >= 0) & (samples < levels)).all()):
        fail("PixelCNN.sample", case, f"values must be in {{0..{levels - 1}}}, got "
                                      f"{sorted(set(samples.unique().tolist()))}")
    return samples


def _generator(seed):
    return "None" if seed is None else f"torch.Generator().manual_seed({seed})"


def _distribution(student, reference, *, key, seed, gain, config, n, H, W):
    K = config["num_levels"]
    # gain 2.5-3: strong dependences between pixels, so that sampling in the wrong order is caught (checked with
    # planted bugs); a vectorised sampler takes well under a second here (the time limit: LARGE_DRAW_TIMEOUT_S)
    weights = _weights(student, reference, key, seed=seed, gain=gain, config=config)
    out = run_model_probe(student, "q3.pixelcnn_sample", timeout_s=LARGE_DRAW_TIMEOUT_S, weights=weights, seed=seed,
                          config=config, runs=[{"n": n, "generator_seed": 1}], height=H, width=W,
                          with_model_logits=True)
    if weights is None:
        raise absent(f"3c-1-hidden/weights/{key}")
    case = f"{n} samples of {H}x{W} images from a {_pixelcnn_name(config)}"
    samples = _check_samples(out["runs"][0], n=n, shape=(H, W), levels=K, case=case)
    count = K ** (H * W)
    logits = expect_tensor(out["logits"], what="PixelCNN.forward", case=f"all {count} images of size {H}x{W}",
                           shape=(count, K, 1, H, W), dtype_kind="float")
    expect_depends_on_earlier(logits, what="PixelCNN.sample", case=case)
    log_p = log_probs_from_logits(logits, out["images"])
    log_p = log_p - log_p.exp().sum().log()
    p_value, stat, df = chi_square_p_value(image_codes(samples, K), log_p)
    if p_value < MIN_P_VALUE:
        fail("PixelCNN.sample", case, f"the samples do not follow the model's own conditionals (from its "
                                      f"forward): chi-square {stat:.1f} with {df} degrees of freedom, "
                                      f"p-value {p_value:.2g} < 1e-6")


@graded("3c-1-hidden", partial=True)
def test_pixelcnn_sample_hidden(student, reference, set_score=None):
    # shapes, counts and reproducibility hold for any weights: random unmasked ones (weights=None)
    def shapes():
        config = _config(4, 6, 1, 3)
        runs = [{"n": 4, "generator_seed": 3}, {"n": 2, "generator_seed": None}]
        out = run_model_probe(student, "q3.pixelcnn_sample", timeout_s=SMALL_DRAW_TIMEOUT_S, weights=None, seed=50,
                              config=config, runs=runs, height=3, width=5)
        for run, result in zip(runs, out["runs"]):
            _check_samples(result, n=run["n"], shape=(3, 5), levels=4,
                           case=f"n={run['n']}, image_shape=(3, 5), num_levels=4, "
                                f"generator={_generator(run['generator_seed'])}")

    def forward_passes():
        runs = [{"n": 1, "generator_seed": 4}, {"n": 7, "generator_seed": 4}]
        out = run_model_probe(student, "q3.pixelcnn_sample", timeout_s=SMALL_DRAW_TIMEOUT_S, weights=None, seed=51,
                              config=SAMPLE_CONFIG, runs=runs, height=3, width=4)
        for run, result in zip(runs, out["runs"]):
            if result["forward_calls"] != 12:
                fail("PixelCNN.sample", f"n={run['n']}, image_shape=(3, 4)",
                     f"expected exactly H*W = 12 forward passes for the whole batch, counted "
                     f"{result['forward_calls']}")

    def reproducible():
        runs = [{"n": 50, "generator_seed": 5}, {"n": 50, "generator_seed": 5}]
        out = run_model_probe(student, "q3.pixelcnn_sample", timeout_s=SMALL_DRAW_TIMEOUT_S, weights=None, seed=52,
                              config=SAMPLE_CONFIG, runs=runs, height=3, width=3)
        first = _check_samples(out["runs"][0], n=50, shape=(3, 3), levels=2, case="n=50, image_shape=(3, 3)")
        if not torch.equal(first, out["runs"][1]["samples"]):
            fail("PixelCNN.sample", "twice with n=50, image_shape=(3, 3), generator=torch.Generator().manual_seed(5)",
                 "the two calls gave different samples: draw every random number from `generator`")

    correct = ("distribution, binary 2x3", "distribution, 4 levels, 3x1")
    run_subcases([("shape, dtype and values", 0.3, shapes, correct),
                  ("H*W forward passes for any n", 0.3, forward_passes, correct),
                  ("reproducible with the same generator", 0.3, reproducible, correct),
                  ("distribution, binary 2x3", 0.3,
                   lambda: _distribution(student, reference, key="binary", seed=50, gain=2.5, config=SAMPLE_CONFIG,
                                         n=6000, H=2, W=3)),
                  ("distribution, 4 levels, 3x1", 0.3,
                   lambda: _distribution(student, reference, key="levels", seed=59, gain=3.0,
                                         config=_config(4, 8, 1, 3), n=6000, H=3, W=1))],
                 set_score)
