"""Hidden test of Question 3e (extra credit): PixelCNN with RGB channel ordering.

The colour model runs on weights that the reference's masks have already zeroed
(recorded values) with torch's own convolution (see src/grading/worker/probes/q3.py).
conv_mask with colours is judged at the centre only (against the reference) and
off the centre against the student's own grey-scale conv_mask, so a 3a bug does
not cost 3e points twice.  The colour forward is judged by its layout (against
the head's own output) and its dependences, and log_prob against the model's own
forward, never against the reference's values, so that a 3b bug that keeps the
model autoregressive costs no 3e points.  3a-3c never use colour.  Models are
float64: values are compared within 1e-4.

Where the hidden values are absent (a student's copy), every part still runs the
student's code, on stand-in inputs, so that crashes show; its verdict is unknown.
"""
import torch

from src.grading.host.graded import graded
from src.grading.host.judging.checks import expect_close, expect_equal, expect_tensor, fail
from src.grading.host.judging.subcases import run_subcases
from src.grading.host.judging.goodness_of_fit import MIN_P_VALUE, chi_square_p_value
from src.grading.host.judging.q3 import (LARGE_DRAW_TIMEOUT_S, absent, dependence_problems, expect_depends_on_earlier,
                                   expect_sees_something, head_layout, image_codes, log_probs_from_logits, recorded,
                                   run_model_probe)

CENTRE_CASES = [["A", 3, 3, 3], ["B", 3, 3, 3], ["A", 3, 12, 3], ["B", 12, 6, 3], ["A", 5, 7, 3], ["B", 7, 5, 3],
                ["A", 4, 4, 2], ["B", 2, 6, 2], ["A", 12, 12, 3], ["B", 1, 4, 2]]
CONV_CASES = [["A", 3, 12, 3, 3], ["B", 12, 6, 1, 3], ["B", 6, 6, 5, 3], ["A", 4, 6, 3, 2]]


def _colour_config(K, channels, blocks=1, kernel=3):
    return dict(in_channels=3, num_levels=K, channels=channels, num_blocks=blocks, kernel_size=kernel)


def _name(config):
    return (f"PixelCNN(in_channels=3, num_levels={config['num_levels']}, channels={config['channels']}, "
            f"num_blocks={config['num_blocks']}, kernel_size={config['kernel_size']}) with random weights")


@graded("3e-1-hidden", partial=True)
def test_colour_pixelcnn_hidden(student, reference, set_score=None):
    def centre_masks():
        masks = student.run("q3.color_center_masks", cases=CENTRE_CASES)
        for (t, cin, cout, C), mask in zip(CENTRE_CASES, masks):
            name = f"mask_type={t!r}, in={cin}, out={cout}, color_channels={C}"
            expect_tensor(mask, what="color_center_mask", case=name, shape=(cout, cin), dtype_kind="float")
            expect_equal(mask, reference(f"centre/{name}", mask), what="color_center_mask", case=name, hidden=True)

    def colour_conv_masks():
        grey = [case[:4] for case in CONV_CASES]
        masks = student.run("q3.conv_masks", cases=CONV_CASES + grey)
        for index, (t, cin, cout, k, C) in enumerate(CONV_CASES):
            mask, grey_mask = masks[index], masks[len(CONV_CASES) + index]
            name = f"mask_type={t!r}, in={cin}, out={cout}, kernel_size={k}, color_channels={C}"
            expect_tensor(mask, what="conv_mask", case=name, shape=(cout, cin, k, k))  # dtype: judged in 3a
            expect_equal(mask[:, :, k // 2, k // 2], reference(f"conv/{name}", mask)[:, :, k // 2, k // 2],
                         what="conv_mask", case=name + ", at the centre pixel", hidden=True)
            off = torch.ones(k, k, dtype=torch.bool)
            off[k // 2, k // 2] = False
            expect_tensor(grey_mask, what="conv_mask", case=name.replace(f"color_channels={C}", "color_channels=1"),
                          shape=(cout, cin, k, k))
            if not torch.equal(mask[:, :, off], grey_mask[:, :, off].to(mask.dtype)):
                fail("conv_mask", name, "away from the centre pixel the mask must be the same as with "
                                        "color_channels=1 (colours only change the centre)")

    def weights_for(key, seed, config, gain=1.5):
        return recorded(student, reference, f"weights/{key}", "q3.reference_weights", seed=seed, config=config,
                        gain=gain)

    def colour_forward():
        for index, (config, H, W) in enumerate([(_colour_config(4, 12), 3, 2), (_colour_config(3, 24, 2, 5), 2, 3)]):
            weights = weights_for(f"forward/{index}", 60 + index, config)
            out = run_model_probe(student, "q3.pixelcnn_forward", weights=weights, seed=60 + index, config=config,
                                  batch=2, height=H, width=W)
            if weights is None:
                raise absent(f"3e-1-hidden/weights/forward/{index}")
            K = config["num_levels"]
            case = f"{_name(config)}, x of shape (2, 3, {H}, {W})"
            expect_tensor(out["logits"], what="PixelCNN.forward", case=case, shape=(2, K, 3, H, W),
                          dtype_kind="float")
            if out["head_out"] is None:
                fail("PixelCNN.forward", case, "never called the last layer of self.head")
            expect_close(out["logits"], head_layout(out["head_out"], levels=K, colors=3), what="PixelCNN.forward",
                         case=case + ": logits[b, v, c, i, j] must be channel c*K + v of the head's output",
                         atol=1e-6, rtol=1e-6, hidden=True)
        for index, (config, H, W) in enumerate([(_colour_config(2, 12), 3, 3), (_colour_config(3, 24, 2, 5), 2, 4)]):
            weights = weights_for(f"order/{index}", 62 + index, config)
            out = run_model_probe(student, "q3.pixelcnn_perturbations", weights=weights, seed=62 + index,
                                  config=config, height=H, width=W)
            if weights is None:
                raise absent(f"3e-1-hidden/weights/order/{index}")
            case = f"{_name(config)}, a {H}x{W} image and its copies with one value changed"
            expect_tensor(out["logits"], what="PixelCNN.forward", case=case,
                          shape=(1 + 3 * H * W, config["num_levels"], 3, H, W), dtype_kind="float")
            expect_sees_something(out, what="PixelCNN.forward", case=case)
            problems = dependence_problems(out, levels=config["num_levels"], colors=3, height=H, width=W,
                                           required=False)
            if problems:
                fail("PixelCNN.forward", case, "logits[b, :, c, i, j] must not depend on colour c or a later "
                                               "colour of pixel (i, j), nor on a later pixel: " + "; ".join(problems))

    def colour_log_prob():
        config = _colour_config(4, 12)
        weights = weights_for("log_prob", 64, config)
        out = run_model_probe(student, "q3.pixelcnn_forward", weights=weights, seed=64, config=config, batch=3,
                              height=2, width=2)
        case = f"{_name(config)}, x of shape (3, 3, 2, 2)"
        expect_tensor(out["log_prob"], what="PixelCNN.log_prob", case=case, shape=(3,), dtype_kind="float")
        expect_tensor(out["logits"], what="PixelCNN.forward", case=case, shape=(3, 4, 3, 2, 2), dtype_kind="float")
        expect_close(out["log_prob"], log_probs_from_logits(out["logits"], out["x"]), what="PixelCNN.log_prob",
                     case=case + ": the sum over colours and pixels of log softmax(forward(x)) at x",
                     atol=1e-4, rtol=1e-4, hidden=True)
        for index, (config, H, W) in enumerate([(_colour_config(2, 12), 1, 2), (_colour_config(4, 12), 1, 1)]):
            weights = weights_for(f"all/{index}", 65 + index, config)
            out = run_model_probe(student, "q3.pixelcnn_all_log_probs", weights=weights, config=config, height=H,
                                  width=W)
            if weights is None:
                raise absent(f"3e-1-hidden/weights/all/{index}")
            count = config["num_levels"] ** (3 * H * W)
            case = f"{_name(config)} on all {count} colour images of size {H}x{W}"
            expect_tensor(out["log_prob"], what="PixelCNN.log_prob", case=case, shape=(count,), dtype_kind="float")
            total = out["log_prob"].double().exp().sum().item()
            if not abs(total - 1.0) <= 1e-4:
                fail("PixelCNN.log_prob", case, f"exp(log_prob) should sum to 1 over all images, got {total:.6g}")

    def colour_sample():
        config, n = _colour_config(2, 12), 6000
        runs = [{"n": n, "generator_seed": 7}, {"n": 2, "generator_seed": None}]
        # gain 3: strong dependences between the colours of a pixel (drawing them in another order is caught:
        # checked with planted bugs); a vectorised sampler takes well under a second here (the time limit:
        # LARGE_DRAW_TIMEOUT_S)
        weights = weights_for("sample", 69, config, gain=3.0)
        out = run_model_probe(student, "q3.pixelcnn_sample", timeout_s=LARGE_DRAW_TIMEOUT_S, weights=weights, seed=69,
                              config=config, runs=runs, height=1, width=2, with_model_logits=True)
        if weights is None:
            raise absent("3e-1-hidden/weights/sample")
        for run, result in zip(runs, out["runs"]):
            case = f"n={run['n']}, image_shape=(1, 2), {_name(config)}"
            samples = expect_tensor(result["samples"], what="PixelCNN.sample", case=case, shape=(run["n"], 3, 1, 2),
                                    dtype_kind="int")
            if samples.dtype != torch.int64 or not bool(((samples == 0) | (samples == 1)).all()):
                fail("PixelCNN.sample", case, f"expected int64 values in {{0, 1}}, got dtype {samples.dtype} and "
                                              f"values {sorted(set(samples.unique().tolist()))[:10]}")
            if result["forward_calls"] != 6:
                fail("PixelCNN.sample", case, f"expected exactly C*H*W = 6 forward passes for the whole batch, "
                                              f"counted {result['forward_calls']}")
        logits = expect_tensor(out["logits"], what="PixelCNN.forward", case="all 64 binary colour images of size 1x2",
                               shape=(64, 2, 3, 1, 2), dtype_kind="float")
        expect_depends_on_earlier(logits, what="PixelCNN.sample", case=f"{n} samples of 1x2 colour images")
        log_p = log_probs_from_logits(logits, out["images"])
        log_p = log_p - log_p.exp().sum().log()
        p_value, stat, df = chi_square_p_value(image_codes(out["runs"][0]["samples"], 2), log_p)
        if p_value < MIN_P_VALUE:
            fail("PixelCNN.sample", f"{n} samples of 1x2 colour images",
                 f"the samples do not follow the model's own conditionals (from its forward), colour by colour: "
                 f"chi-square {stat:.1f} with {df} degrees of freedom, p-value {p_value:.2g} < 1e-6")

    # The masks are what 3e adds; forward, log_prob and sample written for any C (as their docstrings ask) earn
    # the rest.
    forward = "colour forward: layout and dependences"
    run_subcases([("color_center_mask", 0.45, centre_masks), ("conv_mask with colours", 0.45, colour_conv_masks),
                  (forward, 0.2, colour_forward),
                  ("colour log_prob", 0.2, colour_log_prob, forward), ("colour sampling", 0.2, colour_sample, forward)],
                 set_score)
