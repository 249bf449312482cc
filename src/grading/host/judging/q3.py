"""Judging of Question 3 (host side): what the PixelCNN tests make of the probes' results."""
import torch

from ...errors import ExpectedValuesAbsent, StudentCodeError
from .checks import expect_close, expect_sums_to_one, expect_tensor, fail

# The time limits of PixelCNN.sample's probes.  A small draw (n <= 50) may take 10 s, so a hung sampler costs
# little.  A draw for a distribution check (4000-6000 images) gets the grade's call limit (None: ``--timeout``,
# 60 s by default): a sampler that draws one image at a time (n*H*W forward passes; about 9 s for 6000 images
# of 2x3 on one CPU core) must finish on a slower machine too (Gradescope's 0.5 vCPU), so that it loses its
# forward-pass part on every machine, and the parts it does right on none.
SMALL_DRAW_TIMEOUT_S = 10.0
LARGE_DRAW_TIMEOUT_S = None


def recorded(student, reference, key, probe_name, **kwargs):
    """An input recorded from the reference solution (masks, pre-masked weights), or None.

    Only when the reference values are being recorded is ``probe_name`` run (then
    on the reference); otherwise the recorded value is read back and the student's
    code is not called.  None where the hidden values are absent (a student's copy):
    the test then runs the student's code on stand-in inputs, so that crashes
    show, and calls ``absent(key)`` before judging anything.
    """
    recording = bool(getattr(getattr(reference, "store", None), "record", False))
    actual = student.run(probe_name, **kwargs) if recording else None
    try:
        return reference(key, actual)
    except ExpectedValuesAbsent:
        return None


def run_model_probe(student, probe_name, **kwargs):
    """``student.run`` for the probes that build a float64 PixelCNN, with a hint on dtype errors."""
    try:
        return student.run(probe_name, **kwargs)
    except StudentCodeError as error:
        text = str(error)
        if "double" not in text.lower():
            raise
        raise StudentCodeError(text + "\nHint: the grader's model is float64; PixelCNN.forward must feed "
                               "preprocess(x, num_levels, dtype) with the dtype of input_conv.weight (its docstring)",
                               kind=error.kind) from None


def absent(key):
    """The exception that makes a hidden test's verdict unknown (its recorded input is not in this copy)."""
    return ExpectedValuesAbsent(key)


def image_codes(images, levels):
    """Integer code of each image (N, ...) in base ``levels``, first value most significant."""
    flat = images.reshape(images.shape[0], -1).long()
    weights = levels ** torch.arange(flat.shape[1] - 1, -1, -1)
    return (flat * weights).sum(dim=1)


def log_probs_from_logits(logits, images):
    """log p(image) under the per-value logits (N, K, C, H, W) of an autoregressive model."""
    log_softmax = torch.log_softmax(logits.double(), dim=1)
    return log_softmax.gather(1, images.long().unsqueeze(1)).squeeze(1).flatten(1).sum(dim=1)


def dependence_problems(out, *, levels, colors, height, width, required=True):
    """What is wrong with the dependencies seen in ``pixelcnn_perturbations``' result.

    Value (c, i, j) comes at position ``(i * W + j) * C + c`` of the generation
    order.  Its logits must not move when a value at its own position or later
    changes.  And (``required``) they must be able to see what comes before: for
    every colour c, changing the pixel to the left, the pixel above, or (c > 0)
    colour c - 1 of the same pixel must move the logits of colour c somewhere in
    the image (somewhere, not everywhere: with random weights a ReLU may hide one
    dependence at one pixel).  Returns a list of sentences (empty: all good).
    """
    C, H, W = colors, height, width
    logits = out["logits"].double()
    moved = (logits[1:] - logits[:1]).abs().amax(dim=1)  # (C*H*W changed values, C, H, W)
    scale = max(1.0, logits[:1].abs().max().item())
    problems, seen = [], {}
    for r, (c1, i1, j1) in enumerate(out["changed"].tolist()):
        key_in = (i1 * W + j1) * C + c1
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    delta = moved[r, c, i, j].item()
                    if key_in >= (i * W + j) * C + c and delta > 1e-4 * scale:
                        what = f"the logits of {'colour %d at ' % c if C > 1 else ''}pixel ({i}, {j})"
                        cause = f"{'colour %d of ' % c1 if C > 1 else ''}pixel ({i1}, {j1})"
                        problems.append(f"{what} changed by {delta:.3g} when {cause} changed, "
                                        f"which comes at or after it in the generation order")
                    for kind, applies in (("the pixel to its left", i1 == i and j1 == j - 1),
                                          ("the pixel above it", i1 == i - 1 and j1 == j),
                                          ("the colour before it in the same pixel",
                                           i1 == i and j1 == j and c1 == c - 1)):
                        if applies:
                            seen[(kind, c)] = max(seen.get((kind, c), 0.0), delta)
    if len(problems) > 5:
        problems = problems[:5] + [f"... and {len(problems) - 5} more such dependences"]
    for (kind, c), delta in sorted(seen.items()):
        if required and delta <= 1e-4 * scale:
            problems.append(f"the logits of {'colour %d' % c if C > 1 else 'a pixel'} never changed when "
                            f"{kind} changed, anywhere in the image (that value comes before it)")
    return problems


def expect_depends_on_earlier(logits, *, what, case, why="so no sample can be judged"):
    """Causality first: the model's own logits (N, K, C, H, W) on all N images, against which samples
    are judged, must depend on what comes before the last value (else noise of the right marginals passes)."""
    last = logits[:, :, -1, -1, -1].double()
    spread = (last - last[:1]).abs().max().item()
    if not spread > 1e-4 * max(1.0, last.abs().max().item()):
        fail(what, case, f"the model's own logits of the last value are the same for all {logits.shape[0]} images: "
                         f"forward does not depend on the earlier pixels, {why}")


def expect_normalised(out, *, levels, colors, height, width, case):
    """A property of log_prob, judged without the reference's values (``pixelcnn_all_log_probs``' result):
    exp(log_prob) sums to 1 over all images, log_prob is the chain rule of the model's own forward (the sum of
    log softmax(forward(x)) at x), and that forward depends on earlier pixels.  The last two keep a log_prob that
    computes nothing (a constant -H*W*log K sums to 1 too) from earning the points; a forward that computes
    wrong values but stays autoregressive keeps them."""
    count = levels ** (colors * height * width)
    log_prob = expect_tensor(out["log_prob"], what="PixelCNN.log_prob", case=case, shape=(count,),
                             dtype_kind="float")
    expect_sums_to_one(log_prob, what="PixelCNN.log_prob", case=case, outcomes="images")
    logits = expect_tensor(out["logits"], what="PixelCNN.forward", case=case,
                           shape=(count, levels, colors, height, width), dtype_kind="float")
    expect_close(log_prob, log_probs_from_logits(logits, out["images"]), what="PixelCNN.log_prob",
                 case=case + ": the sum over pixels of log softmax(forward(x)) at x", atol=1e-4, rtol=1e-4)
    expect_depends_on_earlier(logits, what="PixelCNN.forward", case=case,
                              why="so a normalised log_prob of it says nothing about the model")


def expect_sees_something(out, *, what, case):
    """Causality first, where ``dependence_problems(required=False)`` judges only what is hidden: in
    ``pixelcnn_perturbations``' result some logits must move when some earlier value changes."""
    logits = out["logits"].double()
    if not (logits[1:] - logits[:1]).abs().max().item() > 1e-4 * max(1.0, logits[:1].abs().max().item()):
        fail(what, case, "the logits never changed, whichever value of the image changed: they must depend on the "
                         "values that come before them")


def head_layout(head_out, *, levels, colors):
    """The logits (B, K, C, H, W) that the contract makes of the head's output (B, C*K, H, W)."""
    B, _, H, W = head_out.shape
    logits = torch.empty(B, levels, colors, H, W, dtype=head_out.dtype)
    for c in range(colors):
        for v in range(levels):
            logits[:, v, c] = head_out[:, c * levels + v]  # channel c*K + v: value v of colour c
    return logits
