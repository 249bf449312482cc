"""Probes for Question 3, pixelcnn.py (worker side): masked convolutions, PixelCNN, sampling, colour.

Isolation between the parts of Question 3.  The constructors of ``MaskedConv2d``,
``ResidualBlock`` and ``PixelCNN`` are given code, and the masks are fixed by the
contract (the docstrings of ``conv_mask`` and ``color_center_mask``), so:

* 3a probes call the student's ``conv_mask`` and ``MaskedConv2d.forward``;
  ``MaskedConv2d.forward`` is run with the reference's mask loaded into its buffer;
* 3b, 3c and the colour-model probes of 3e build the student's layers with a
  stand-in ``conv_mask`` (all ones: it only keeps the constructors from calling
  the student's), load random weights that the reference's masks have already
  zeroed (recorded from the reference by ``reference_weights``), and run every masked
  convolution with torch's own ``nn.Conv2d.forward``.  A bug in 3a (or an
  unfinished 3a) therefore costs no points in 3b, 3c or 3e; what those probes run
  of the student's code is ``ResidualBlock.forward``, ``PixelCNN.forward``,
  ``log_prob`` and ``sample``.

The masks themselves are never computed here: they come from the reference
through the recorded values, so this file (which ships to students) holds no
answer.  Weights travel as one flat tensor, so that a failure message that shows
the call never shows their values.

The models are float64 (the contract makes forward follow the weights' dtype);
the tests still compare with tolerances (1e-4) that a student computing some of
it in float32 meets.  Only the timing probe uses float32, as in training.
"""
import contextlib
import types

import torch
import torch.nn as nn

from ...inputs import seeded_generator
from ..timing import best_times
from .registry import probe


# -- building the student's layers ------------------------------------------------------
def _ones_mask(mask_type, in_channels, out_channels, kernel_size, color_channels=1):
    """Stand-in for ``conv_mask`` while probes build layers whose weights come already masked."""
    return torch.ones(out_channels, in_channels, kernel_size, kernel_size)


@contextlib.contextmanager
def stand_in_masks(module):
    saved = module.__dict__.get("conv_mask")
    module.conv_mask = _ones_mask
    try:
        yield
    finally:
        if saved is None:
            module.__dict__.pop("conv_mask", None)
        else:
            module.conv_mask = saved


def _new_layers(px, config, residual_channels):
    return px.PixelCNN(**config) if config is not None else px.ResidualBlock(residual_channels)


def _param_names(model):
    return sorted(name for name in model.state_dict() if not name.endswith("mask"))


def _random_params(model, seed, gain, bias_std):
    """N(0, gain^2 / fan_in) weights and N(0, bias_std^2) biases, drawn in sorted name order."""
    g = seeded_generator(seed)
    state, params = model.state_dict(), {}
    for name in _param_names(model):
        shape = state[name].shape
        if name.endswith("weight"):
            params[name] = torch.randn(shape, generator=g) * (gain / (shape[1] * shape[2] * shape[3]) ** 0.5)
        else:
            params[name] = torch.randn(shape, generator=g) * bias_std
    return params


def use_torch_conv(model):
    """Run every (masked) convolution of ``model`` with ``nn.Conv2d.forward`` on its (pre-masked) weight."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.forward = types.MethodType(nn.Conv2d.forward, m)


@probe("pixelcnn")
def reference_weights(submission, *, seed, config=None, residual_channels=None, gain=1.5, bias_std=0.3):
    """Random weights times the layers' own masks, flattened in sorted name order.

    Run on the reference only, when its values are recorded: the tests give
    the result (read back from the recorded values) to the other probes as
    ``weights``.  ``config``: PixelCNN keyword arguments, or ``residual_channels``
    for one ResidualBlock; larger ``gain``: stronger dependences between pixels.
    """
    model = _new_layers(submission.pixelcnn, config, residual_channels)
    params, state = _random_params(model, seed, gain, bias_std), model.state_dict()
    for name in params:
        if name.endswith("weight"):
            params[name] = params[name] * state[name[:-len("weight")] + "mask"]
    return torch.cat([params[name].flatten() for name in sorted(params)])


def _layers(px, weights, *, config=None, residual_channels=None, fallback_seed=0, dtype=torch.float64):
    """The student's PixelCNN(**config) (or ResidualBlock) with the given flat pre-masked weights.

    ``weights=None`` (the recorded values are absent, or a check that does not
    depend on the masks): random unmasked weights from ``fallback_seed``.  The
    layers are float64 (forward's docstring: preprocess to the dtype of
    ``input_conv.weight``), so recorded values do not depend on the machine.
    """
    with stand_in_masks(px):
        model = _new_layers(px, config, residual_channels)
    names, state = _param_names(model), model.state_dict()
    if weights is None:
        params = _random_params(model, fallback_seed, 1.5, 0.3)
    else:
        sizes = [state[name].numel() for name in names]
        if weights.numel() != sum(sizes):
            raise ValueError(f"grader error: {weights.numel()} recorded weights for {sum(sizes)} parameters")
        params = {name: part.view(state[name].shape).to(state[name].dtype)
                  for name, part in zip(names, weights.split(sizes))}
    state.update(params)
    model.load_state_dict(state)
    use_torch_conv(model)
    return model.to(dtype).eval()


def _images(seed, shape, levels):
    return torch.randint(0, levels, shape, generator=seeded_generator(seed))


def _all_images(levels, C, H, W):
    """Every image of shape (C, H, W) with values in {0..levels-1}: (levels**(C*H*W), C, H, W)."""
    D = C * H * W
    codes = torch.arange(levels ** D)
    digits = torch.stack([(codes // levels ** (D - 1 - d)) % levels for d in range(D)], dim=1)
    return digits.view(-1, C, H, W)


# -- 3a -------------------------------------------------------------------------------
@probe("pixelcnn")
def conv_masks(submission, *, cases, flat=False):
    """``cases``: [mask_type, in, out, k] or [mask_type, in, out, k, color_channels] -> the student's masks.

    ``flat``: one tensor, the masks flattened and concatenated (as ``masked_conv`` takes them).
    """
    masks = [submission.pixelcnn.conv_mask(*case) for case in cases]
    return torch.cat([mask.flatten().float() for mask in masks]) if flat else masks


@probe("pixelcnn")
def masked_conv(submission, *, seed, cases, masks):
    """The student's MaskedConv2d.forward on random float64 inputs, with random weights everywhere.

    ``cases``: [mask_type, in, out, k, B, H, W]; ``masks``: the reference's masks of
    the cases, flattened and concatenated, loaded into the buffer ``mask`` (None:
    all ones, only to run the code).  Returns per case the output, and the output
    after the weights where the mask is 0 were changed (which must not matter).
    """
    px = submission.pixelcnn
    sizes = [cout * cin * k * k for _, cin, cout, k, *_ in cases]
    parts = masks.split(sizes) if masks is not None else [None] * len(cases)
    results = []
    for index, ((mask_type, cin, cout, k, B, H, W), part) in enumerate(zip(cases, parts)):
        with stand_in_masks(px):
            conv = px.MaskedConv2d(mask_type, cin, cout, k)
        mask = torch.ones(cout, cin, k, k, dtype=torch.float64) if part is None else part.view(cout, cin, k, k).double()
        g = seeded_generator(seed * 1000 + index)
        weight = torch.randn(cout, cin, k, k, generator=g, dtype=torch.float64) / (cin * k * k) ** 0.5
        bias = torch.randn(cout, generator=g, dtype=torch.float64) * 0.3
        x = torch.randn(B, cin, H, W, generator=g, dtype=torch.float64)
        other = weight + 5.0 * (1 - mask) * torch.randn(weight.shape, generator=g, dtype=torch.float64)
        conv.double()
        conv.load_state_dict({"weight": weight, "bias": bias, "mask": mask})
        with torch.no_grad():
            out = conv(x)
            conv.load_state_dict({"weight": other, "bias": bias, "mask": mask})
            out_other = conv(x)
        results.append({"out": out, "out_other_masked_weights": out_other})
    return results


# -- 3b -------------------------------------------------------------------------------
@probe("pixelcnn")
def residual_block(submission, *, weights, seed, channels, batch, height, width):
    block = _layers(submission.pixelcnn, weights, residual_channels=channels, fallback_seed=seed)
    x = torch.randn(batch, channels, height, width, generator=seeded_generator(seed), dtype=torch.float64)
    with torch.no_grad():
        return block(x)


@probe("pixelcnn")
def pixelcnn_forward(submission, *, weights, seed, config, batch, height, width):
    """Logits and log_prob of random images (from ``seed``).

    Also returns ``head_out``: what the last layer of ``head`` (the 1x1 convolution
    with C*K outputs) gave during the forward pass, to judge the logits' layout
    (None if forward never called it).
    """
    model = _layers(submission.pixelcnn, weights, config=config, fallback_seed=seed)
    x = _images(seed, (batch, config.get("in_channels", 1), height, width), config["num_levels"])
    last, seen = model.head[-1], []
    inner = last.forward

    def capture(h):
        out = inner(h)
        seen.append(out.detach().clone())
        return out

    last.forward = capture
    with torch.no_grad():
        logits = model(x)
        head_out = seen[-1] if seen else None
        last.forward = inner
        log_prob = model.log_prob(x)
    return {"x": x, "logits": logits, "log_prob": log_prob, "head_out": head_out}


@probe("pixelcnn")
def pixelcnn_all_log_probs(submission, *, weights, config, height, width):
    """log_prob of every image of the given size and the logits of forward on them (for the normalisation
    check, judged against the model's own conditionals)."""
    model = _layers(submission.pixelcnn, weights, config=config)
    images = _all_images(config["num_levels"], config.get("in_channels", 1), height, width)
    with torch.no_grad():
        return {"images": images, "log_prob": model.log_prob(images), "logits": model(images)}


@probe("pixelcnn")
def pixelcnn_perturbations(submission, *, weights, seed, config, height, width):
    """Logits of a random image (from ``seed``) and of every copy of it with exactly one value changed.

    Returns ``base`` (1, C, H, W), ``changed`` (C*H*W, 3): (colour, row, column)
    changed in copy r, and ``logits`` (1 + C*H*W, K, C, H, W) (whatever the
    student's forward returns).  The test reads off which logits moved.  Also
    ``x``, the whole batch, and ``log_prob``, the student's log_prob of it (None
    if that raises: log_prob is graded where the test asks for it).
    """
    C, K = config.get("in_channels", 1), config["num_levels"]
    model = _layers(submission.pixelcnn, weights, config=config, fallback_seed=seed)
    base = _images(seed, (1, C, height, width), K)
    changed, batch = [], [base[0]]
    for c in range(C):
        for i in range(height):
            for j in range(width):
                x = base[0].clone()
                x[c, i, j] = (x[c, i, j] + 1) % K
                batch.append(x)
                changed.append([c, i, j])
    x = torch.stack(batch)
    with torch.no_grad():
        logits = model(x)
        try:
            log_prob = model.log_prob(x)
        except Exception:  # noqa: BLE001  (graded where the test asks for it)
            log_prob = None
    return {"base": base, "changed": torch.tensor(changed), "logits": logits, "x": x, "log_prob": log_prob}


@probe("pixelcnn")
def pixelcnn_timing(submission, *, seed, config, batch, height, width, repeats):
    """Seconds per call of the student's forward and log_prob, and of an unmasked nn.Conv2d twin.

    The model is float32 with random unmasked weights (the cost does not depend on them).  The
    twin is a plain stack of nn.Conv2d and ReLU layers of the same shapes; the three are timed in
    turn, the best of ``repeats`` rounds (``timing.best_times``).
    """
    model = _layers(submission.pixelcnn, None, config=config, fallback_seed=seed, dtype=torch.float32)
    C, K, ch, k = config.get("in_channels", 1), config["num_levels"], config["channels"], config["kernel_size"]
    layers = [nn.Conv2d(C, ch, k, padding=k // 2)]
    for _ in range(config["num_blocks"]):
        layers += [nn.ReLU(), nn.Conv2d(ch, ch // 2, 1), nn.ReLU(), nn.Conv2d(ch // 2, ch // 2, 3, padding=1),
                   nn.ReLU(), nn.Conv2d(ch // 2, ch, 1)]
    layers += [nn.ReLU(), nn.Conv2d(ch, ch, 1), nn.ReLU(), nn.Conv2d(ch, C * K, 1)]
    twin = nn.Sequential(*layers).eval()
    x = _images(seed, (batch, C, height, width), K)
    xf = x.float()
    calls = {"forward_s": lambda: model(x), "log_prob_s": lambda: model.log_prob(x), "twin_s": lambda: twin(xf)}
    with torch.no_grad():
        for call in calls.values():  # warm-up
            call()
        return best_times(calls, repeats)


# -- 3c -------------------------------------------------------------------------------
@probe("pixelcnn")
def pixelcnn_sample(submission, *, weights, seed, config, runs, height, width, with_model_logits=False):
    """Calls of ``sample`` on one model, counting forward passes.

    ``weights``: recorded pre-masked weights, or None for random unmasked ones from
    ``seed`` (enough for shapes, counts and reproducibility).  ``runs``: list of
    {"n": int, "generator_seed": int or None}.  Returns per run the samples (or
    the type of what came back) and the number of forward passes; with
    ``with_model_logits`` also every image of the given size and the model's own
    logits on them (the distribution the samples must follow).
    """
    model = _layers(submission.pixelcnn, weights, config=config, fallback_seed=seed)
    inner = model.forward
    calls = [0]

    def counting_forward(*args, **kwargs):
        calls[0] += 1
        return inner(*args, **kwargs)

    results = []
    for run in runs:
        model.forward = counting_forward
        calls[0] = 0
        seed_ = run.get("generator_seed")
        if seed_ is None:
            samples = model.sample(run["n"], (height, width))
        else:
            samples = model.sample(run["n"], (height, width), generator=seeded_generator(seed_))
        results.append({"samples": samples if isinstance(samples, torch.Tensor) else repr(type(samples)),
                        "forward_calls": calls[0]})
    out = {"runs": results}
    if with_model_logits:
        model.forward = inner
        images = _all_images(config["num_levels"], config.get("in_channels", 1), height, width)
        with torch.no_grad():
            out["images"], out["logits"] = images, model(images)
    return out


# -- 3e -------------------------------------------------------------------------------
@probe("pixelcnn")
def color_center_masks(submission, *, cases):
    """``cases``: [mask_type, in, out, color_channels] -> the student's colour centre masks."""
    return [submission.pixelcnn.color_center_mask(*case) for case in cases]
