"""Public test of Question 3e (extra credit): PixelCNN with RGB channel ordering.

The colour model runs on weights that the reference's masks have already zeroed
(recorded values) with torch's own convolution (see src/grading/worker/probes/q3.py).
Its forward is judged by what is colour-specific: the layout of the logits
(output channel c*K + v of the head is the logit of value v for colour c) and
that no colour's logits depend on itself, a later colour or a later pixel; never
against the reference's values, so that a bug of 3b (a residual block,
preprocessing) does not cost extra-credit points too.  3a-3c never use colour.
"""
from src.grading.host.graded import graded
from src.grading.host.judging.checks import expect_close, expect_equal, expect_tensor, fail
from src.grading.host.judging.device import expect_same_on_another_device
from src.grading.host.judging.subcases import SubCases
from src.grading.host.judging.q3 import (dependence_problems, expect_sees_something, head_layout, recorded,
                                   run_model_probe)

COLOUR = dict(in_channels=3, num_levels=4, channels=12, num_blocks=1, kernel_size=3)


def _colour_values(student, reference):
    cases = [["A", 3, 6, 3], ["B", 6, 6, 3], ["A", 6, 12, 3]]
    masks = student.run("q3.color_center_masks", cases=cases)
    for case, mask in zip(cases, masks):
        t, cin, cout, C = case
        what, name = "color_center_mask", f"mask_type={t!r}, in={cin}, out={cout}, color_channels={C}"
        expect_tensor(mask, what=what, case=name, shape=(cout, cin), dtype_kind="float")
        expect_equal(mask, reference(f"mask/{name}", mask), what=what, case=name)

    weights = recorded(student, reference, "weights/forward", "q3.reference_weights", seed=30, config=COLOUR)
    out = run_model_probe(student, "q3.pixelcnn_forward", weights=weights, seed=30, config=COLOUR, batch=2, height=2,
                          width=3)
    case = "PixelCNN(in_channels=3, num_levels=4, channels=12, num_blocks=1, kernel_size=3), x of shape (2, 3, 2, 3)"
    expect_tensor(out["logits"], what="PixelCNN.forward", case=case, shape=(2, 4, 3, 2, 3), dtype_kind="float")
    if out["head_out"] is None:
        fail("PixelCNN.forward", case, "never called the last layer of self.head")
    expect_close(out["logits"], head_layout(out["head_out"], levels=4, colors=3), what="PixelCNN.forward",
                 case=case + ": logits[b, v, c, i, j] must be channel c*K + v of the head's output",
                 atol=1e-6, rtol=1e-6)

    weights = recorded(student, reference, "weights/order", "q3.reference_weights", seed=31, config=COLOUR)
    out = run_model_probe(student, "q3.pixelcnn_perturbations", weights=weights, seed=31, config=COLOUR, height=2,
                          width=2)
    expect_tensor(out["logits"], what="PixelCNN.forward", case="13 images of shape (3, 2, 2)",
                  shape=(13, 4, 3, 2, 2), dtype_kind="float")
    case = "a 2x2 colour image and its copies with one value changed"
    expect_sees_something(out, what="PixelCNN.forward", case=case)
    problems = dependence_problems(out, levels=4, colors=3, height=2, width=2, required=False)
    if problems:
        fail("PixelCNN.forward", case, "logits[b, :, c, i, j] must not depend on colour c or a later colour of "
                                       "pixel (i, j), nor on a later pixel: " + "; ".join(problems))


@graded("3e-0-basic", partial=True)
def test_color_center_mask_and_colour_forward(student, reference, set_score=None):
    """color_center_mask and the colour forward; then the colour model on another device, which needs them."""
    cases, values = SubCases(), "color_center_mask and the colour PixelCNN.forward"
    with cases.case(0.8, values):
        _colour_values(student, reference)
    with cases.case(0.2, "colour PixelCNN.log_prob, sample on another device", requires=values) as notes:
        out = student.run("device.pixelcnn_part", question="3e", label="colour PixelCNN.log_prob, sample")
        expect_same_on_another_device(out, notes, question="3e", label="colour PixelCNN.log_prob, sample")
    cases.finish(set_score)
