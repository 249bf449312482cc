"""``python -m src check made|pixelcnn``: does each conditional of your model see only what comes before?

A masking bug lets the conditional of a variable see itself or later variables; the loss then
looks *better* than it should and the samples are garbage.  This module builds your model at a
small size, measures which outputs depend on which inputs, draws it and gives a verdict:

* ``made``: MADE with D = 20 inputs and two hidden layers of 40 units, in five mask sets: the
  natural ordering, the three mask sets of a model with random orderings (``num_masks=3``,
  installed by ``update_masks``) and a random ordering with two outputs per input
  (``nout = 2 D``).  Picture: per mask set the D x D matrix "output d depends on input e", rows
  and columns in the model's own ordering ``self.order``; a correct MADE is strictly lower
  triangular (red: a forbidden dependency).
* ``pixelcnn``: a grey-scale PixelCNN on 9 x 9 images (the receptive field of a few pixels) and,
  once the colour masks (extra credit 3e) run, a PixelCNN with 3 colours and 4 levels (which
  colours of which pixels each colour of one pixel sees).

How dependencies are measured.  The model is converted to float64 and run on a few random inputs;
output o depends on input e if the gradient of a random mix of o's logits with respect to e is
non-zero for at least one of them.  A masked weight contributes exactly 0 to a gradient, so the
test is exact: no tolerance.  A zero gradient can still hide a real dependency (a ReLU that is off
for every input), so besides the model's own initialisation every trainable parameter is redrawn
once, with small random weights and biases in [1, 2]: every ReLU is then on, the network is
linear around the inputs, and its gradient is a sum, over the paths that the masks leave open, of
products of random weights, which is non-zero whenever such a path exists (an exact cancellation
has probability 0).  Redrawing the parameters also catches masks that hold only at
initialisation (weights zeroed once by ``set_mask`` instead of masked in every forward pass:
training brings them back).  The dependencies are those of ``forward``; ``log_prob`` and
``sample`` are not run.

Nothing here comes from the grader's tests: sizes, seeds and inputs are this module's own.
"""
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from . import plots

SEED = 1234
MADE_INPUTS = 20
MADE_HIDDEN = [40, 40]
#: (label, keyword arguments of MADE besides nin and hidden_sizes, mask sets to check)
MADE_CASES = [
    ("natural ordering", dict(nout_per_input=1, num_masks=1, natural_ordering=True, seed=21), 1),
    ("random orderings", dict(nout_per_input=1, num_masks=3, natural_ordering=False, seed=22), 3),
    ("2 outputs per input", dict(nout_per_input=2, num_masks=1, natural_ordering=False, seed=23), 1),
]
#: (PixelCNN's keyword arguments, image size, pixels whose receptive field is drawn)
PIXELCNN_GREY = (dict(in_channels=1, num_levels=2, channels=16, num_blocks=2, kernel_size=5), (9, 9),
                 [(4, 4), (1, 7), (8, 8)])
PIXELCNN_COLOUR = (dict(in_channels=3, num_levels=4, channels=18, num_blocks=2, kernel_size=5), (7, 7), [(3, 3)])
COLOUR_NAMES = "RGB"
BATCH = {"made": 8, "pixelcnn": 2}  # random inputs per parameter draw
REDRAWS = 1  # parameter draws besides the model's own initialisation


class CannotCheck(Exception):
    """The model runs but does not follow the contract far enough to be checked (no verdict)."""


class NothingSeen(CannotCheck):
    """No output depends on any input (no verdict, but a picture): ``found`` is the all-False matrix."""

    def __init__(self, message, found):
        super().__init__(message)
        self.found = found


@dataclass
class Dependencies:
    """Which outputs of one model depend on which inputs, both in the model's generation order.

    ``depends`` is a bool tensor ``(n, n)``: ``depends[o, e]`` is True when the conditional of the
    variable generated ``o``-th depends on the value of the variable generated ``e``-th.  It is
    allowed only for ``e < o``: a correct model is strictly lower triangular.  ``names[p]`` says
    what position ``p`` is as an input ("input 7", "pixel (2, 3)", "colour G of pixel (2, 3)"),
    ``outputs[p]`` as an output ("output 7"; default: the same names).
    """
    title: str
    model: str
    depends: torch.Tensor
    names: list
    outputs: list = None
    #: why there is no verdict although a picture was drawn (no output depends on any input), or None
    problem: str = None

    def __post_init__(self):
        self.outputs = self.outputs or self.names

    def forbidden(self):
        """bool ``(n, n)``: the dependencies found that the ordering forbids."""
        return torch.triu(self.depends)

    def first_violation(self):
        """A sentence about the first forbidden dependency in the generation order, or None."""
        bad = self.forbidden().nonzero().tolist()
        if not bad:
            return None
        o, e = bad[0]
        later = "its own value" if e == o else "which comes later in the ordering"
        return f"{self.outputs[o]} depends on {self.names[e]}, {later} ({self.title}: {self.model})"


# ---------------------------------------------------------------------------
# Measuring dependencies
# ---------------------------------------------------------------------------

def _redraw_parameters(model, generator):
    """New random values for every trainable parameter: weights N(0, 0.2**2 / fan_in), everything
    one-dimensional (biases) uniform in [1, 2], so that every ReLU of the network is on."""
    with torch.no_grad():
        for p in model.parameters():
            if not p.requires_grad:
                continue
            if p.dim() >= 2:
                scale = 0.2 / p[0].numel() ** 0.5
                p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) * scale)
            else:
                p.copy_(1 + torch.rand(p.shape, generator=generator, dtype=torch.float64))


def _support(out, leaf, groups, generator, what):
    """bool ``(len(groups), *leaf.shape[1:])``: which entries of ``leaf`` each group of outputs depends on.

    ``groups[g]`` is a bool mask of ``out``'s shape selecting group g's logits.  The gradient of a
    random mix of them is taken (so that no parametrisation of the logits, (-l, l) say, can
    cancel); an entry depends if its gradient is non-zero for some batch element.  All groups go
    through one batched backward pass (``is_grads_batched``), or one pass each if the student's
    operations do not support that.
    """
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise CannotCheck(f"{what} returns no tensor that autograd can differentiate with respect to its input "
                          "(.detach(), .data, numpy or torch.no_grad inside?): its dependencies cannot be measured")
    mix = torch.randn(out.shape, generator=generator, dtype=out.dtype) * groups
    try:
        with warnings.catch_warnings():  # vmap's "performance drop" warning for operations without a batching rule
            warnings.simplefilter("ignore")
            grads, = torch.autograd.grad(out, leaf, grad_outputs=mix, retain_graph=True, is_grads_batched=True,
                                         allow_unused=True)
    except RuntimeError:
        grads = [torch.autograd.grad(out, leaf, grad_outputs=m, retain_graph=True, allow_unused=True)[0] for m in mix]
        grads = None if grads[0] is None else torch.stack(grads)
    if grads is None:  # the input is not in the graph of the output at all
        return torch.zeros(len(groups), *leaf.shape[1:], dtype=torch.bool)
    return (grads != 0).any(dim=1)


def _over_draws(model, measure, seed, what, forward):
    """OR of ``measure(model, generator)`` over the model's own parameters and ``REDRAWS`` redraws.

    Raises :class:`NothingSeen` when no output depends on any input; its message names the layer that
    cuts every path (``forward(generator) -> (leaf, output)`` runs the model for :func:`_cutting_layer`).
    """
    generator = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only wait for each other (3x the CPU time on 2 cores)
    try:
        found = measure(model, generator)
        for _ in range(REDRAWS):
            _redraw_parameters(model, generator)
            found |= measure(model, generator)
        if not found.any():  # every path masked, or the input cut off from autograd (x.detach() inside, say)
            raise NothingSeen(f"no output of {what} depends on any input: {_cutting_layer(model, forward, generator)}",
                              found)
    finally:
        torch.set_num_threads(threads)
    return found


def _depends_on(tensor, leaf, generator):
    """Whether ``tensor`` (an intermediate result of a forward pass from ``leaf``) depends on ``leaf``."""
    if tensor is leaf:
        return True
    if not isinstance(tensor, torch.Tensor) or not tensor.requires_grad or not tensor.is_floating_point():
        return False
    mix = torch.randn(tensor.shape, generator=generator, dtype=torch.float64).to(tensor.dtype)
    grad, = torch.autograd.grad(tensor, leaf, grad_outputs=mix, retain_graph=True, allow_unused=True)
    return grad is not None and bool((grad != 0).any())


def _cutting_layer(model, forward, generator):
    """A sentence naming the layer after which no result of the forward pass depends on the input.

    Every layer without sub-layers is watched (forward hooks, in the order they run).  The layer that
    cuts every path is the first one, after the last layer whose output still depends on the input,
    that receives an input-dependent tensor: its output depends on nothing.
    """
    calls = []
    hooks = [module.register_forward_hook(lambda m, args, out, name=name: calls.append((name, m, args, out)))
             for name, module in model.named_modules() if name and not list(module.children())]
    try:
        leaf, _ = forward(generator)
    finally:
        for hook in hooks:
            hook.remove()
    inputs = [bool(args) and _depends_on(args[0], leaf, generator) for _, _, args, _ in calls]
    outputs = [_depends_on(out, leaf, generator) for _, _, _, out in calls]
    if not any(inputs):
        return ("autograd cannot see any path from the input into the layers (.detach(), .data, numpy or "
                "torch.no_grad inside?)")
    last_seen = max([i for i, seen in enumerate(outputs) if seen], default=-1)
    cut = next((i for i in range(last_seen + 1, len(calls)) if inputs[i]), None)
    if cut is None:
        return "every layer's output depends on the input, but the output does not (.detach() or .data at the end?)"
    name, module, _, _ = calls[cut]
    weight = getattr(module, "weight", None)
    kernel = tuple(weight.shape[2:]) if isinstance(weight, torch.Tensor) and weight.dim() == 4 else None
    others = [n for i, (n, *_) in enumerate(calls) if inputs[i] and not outputs[i] and i != cut]
    text = (f"every path is cut at layer {name} ({type(module).__name__}"
            + (f", {kernel[0]}x{kernel[1]} kernel" if kernel else "") + "): its input depends on the input, "
            "its output on nothing")
    if others:
        text += f" (so do {', '.join(others[:3])}{', ...' if len(others) > 3 else ''})"
    if kernel == (1, 1):
        text += ("; a 1x1 kernel has only its centre, which a type A mask hides: are the mask types A and B "
                 "swapped (A hides the centre, B shows it)?")
    else:
        text += "; its mask (or its weights) is zero everywhere"
    return text


def _expect_shape(out, shape, what, given):
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise CannotCheck(f"{what} returned {got} for {given}; expected shape {shape}")


def _made_forward(model, generator):
    """A forward pass on a random binary batch: ``(x, model(x))``, x a leaf that requires grad."""
    d, batch = model.nin, BATCH["made"]
    x = torch.bernoulli(torch.full((batch, d), 0.5, dtype=torch.float64), generator=generator).requires_grad_(True)
    return x, model(x)


def _made_measure(model, generator):
    """bool ``(D, D)`` over variables: ``[d, e]`` = an output of variable d depends on input e."""
    d, batch = model.nin, BATCH["made"]
    x, out = _made_forward(model, generator)
    _expect_shape(out, (batch, model.nout), "MADE.forward", f"an input of shape {(batch, d)}")
    groups = torch.zeros(d, *out.shape, dtype=torch.bool)
    for v in range(d):
        groups[v, :, v::d] = True  # outputs v, v + D, v + 2D, ... model variable v
    return _support(out, x, groups, generator, "MADE.forward")


def _made_order(model):
    order = getattr(model, "order", None)
    d = model.nin
    if not isinstance(order, torch.Tensor) or order.shape != (d,) or \
            not torch.equal(torch.sort(order.long().cpu()).values, torch.arange(d)):
        raise CannotCheck(f"MADE.order must be a permutation of 0..{d - 1} (int64 tensor of shape ({d},)), "
                          f"got {order!r}")
    return order.long().cpu()


def made_dependencies(made):
    """Dependencies of every mask set that ``check made`` examines.

    Args:
        made: the module ``made`` (your ``submission/made.py``).

    Returns:
        list of :class:`Dependencies`, one per mask set of ``MADE_CASES``, in the model's ordering.
    """
    results = []
    for label, case, n_sets in MADE_CASES:
        kwargs = {k: v for k, v in case.items() if k != "nout_per_input"}
        described = (f"MADE({MADE_INPUTS}, {MADE_HIDDEN}, {MADE_INPUTS * case['nout_per_input']}, "
                     + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")")
        for k in range(n_sets):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(SEED + k)
                model = made.MADE(MADE_INPUTS, list(MADE_HIDDEN), MADE_INPUTS * case["nout_per_input"], **kwargs)
                for _ in range(k):  # a fresh model per mask set: each is checked at its own initialisation too
                    model.update_masks()
                model = model.double()
                order = _made_order(model)
                try:
                    depends, problem = _over_draws(model, _made_measure, SEED + 100 * k, "MADE.forward",
                                                   lambda g, m=model: _made_forward(m, g)), None
                except NothingSeen as error:
                    depends, problem = error.found, str(error)
            results.append(Dependencies(
                title=label + (f", mask set {k}" if n_sets > 1 else ""),
                model=described + (f" after {k} call(s) of update_masks" if k else ""),
                depends=depends[order][:, order], names=[f"input {v}" for v in order.tolist()],
                outputs=[f"output {v}" for v in order.tolist()], problem=problem))
    return results


def _pixelcnn_forward(model, generator, image_shape):
    """A forward pass on random images: ``(leaf, logits)``, leaf the float input of ``input_conv``."""
    c, k = model.in_channels, model.num_levels
    (h, w), batch = image_shape, BATCH["pixelcnn"]
    x = torch.randint(0, k, (batch, c, h, w), generator=generator)
    captured, handle = plots.hooked_input(model)
    try:
        out = model(x)
    finally:
        handle.remove()
    if "leaf" not in captured:
        raise CannotCheck("PixelCNN.forward never called self.input_conv (the contract: feed preprocess(x) to it)")
    return captured["leaf"], out


def _pixelcnn_measure(model, generator, image_shape):
    """bool ``(H*W*C, H*W*C)`` in generation order (raster order, then colours)."""
    c, k = model.in_channels, model.num_levels
    (h, w), batch = image_shape, BATCH["pixelcnn"]
    leaf, out = _pixelcnn_forward(model, generator, image_shape)
    _expect_shape(out, (batch, k, c, h, w), "PixelCNN.forward", f"images of shape {(batch, c, h, w)}")
    groups = torch.zeros(h, w, c, *out.shape, dtype=torch.bool)
    for i in range(h):
        for j in range(w):
            for cc in range(c):
                groups[i, j, cc, :, :, cc, i, j] = True  # the K logits of colour cc of pixel (i, j)
    support = _support(out, leaf, groups.flatten(0, 2), generator, "PixelCNN.forward")  # (n, C, H, W)
    return support.permute(0, 2, 3, 1).reshape(h * w * c, -1)


def pixelcnn_dependencies(pixelcnn, colour=False):
    """Dependencies of the grey-scale (or ``colour``) PixelCNN that ``check pixelcnn`` examines.

    Args:
        pixelcnn: the module ``pixelcnn`` (your ``submission/pixelcnn.py``).

    Returns:
        a :class:`Dependencies` over the ``H * W * C`` values of an image.
    """
    config, (h, w), _ = PIXELCNN_COLOUR if colour else PIXELCNN_GREY
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = pixelcnn.PixelCNN(**config).double()
        try:
            depends, problem = _over_draws(model, lambda m, g: _pixelcnn_measure(m, g, (h, w)), SEED + 1,
                                           "PixelCNN.forward", lambda g: _pixelcnn_forward(model, g, (h, w))), None
        except NothingSeen as error:
            depends, problem = error.found, str(error)
    c = config["in_channels"]
    names = [f"colour {COLOUR_NAMES[cc]} of pixel ({i}, {j})" if c > 1 else f"pixel ({i}, {j})"
             for i in range(h) for j in range(w) for cc in range(c)]
    model = "PixelCNN(" + ", ".join(f"{k}={v}" for k, v in config.items()) + f") on {h}x{w} images"
    return Dependencies(title="colour model" if colour else "grey-scale model", model=model, depends=depends,
                        names=names, problem=problem)


# ---------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------

#: classes of a dependency, with their colour and legend (as in ``python -m src receptive-field``)
CLASSES = [("#f2f2f2", "itself or later, not seen"), ("#3b75af", "comes before, seen"),
           ("#f39c34", "comes before, NOT seen"), ("#d62728", "itself or later, SEEN (bug)")]
#: why a cell may be orange (allowed, but information the model cannot use), per picture
NOT_SEEN = {"made": "orange is allowed: no path through the hidden units joins that input to that output "
                    "(their random degrees), so the model cannot use it",
            "pixelcnn": "orange is allowed: the blind spot of stacked masked convolutions (up and to the right), "
                        "or pixels beyond the reach of the stack"}


def _classes(depends, allowed):
    """long tensor: 0 later and unseen, 1 earlier and seen, 2 earlier and unseen, 3 later and seen."""
    return torch.where(allowed, torch.where(depends, 1, 2), torch.where(depends, 3, 0))


def _figure(n_rows, n_cols, panel_size):
    plt = plots._pyplot()
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(panel_size * n_cols, panel_size * n_rows + 1.1),
                             dpi=110, squeeze=False)
    return plt, fig, axes


def _show(ax, classes, title):
    from matplotlib.colors import ListedColormap

    ax.imshow(classes.numpy(), cmap=ListedColormap([c for c, _ in CLASSES]), vmin=-0.5, vmax=len(CLASSES) - 0.5,
              interpolation="nearest")
    ax.set_title(title, fontsize=9)


def _save(plt, fig, path, suptitle, note):
    import textwrap

    from matplotlib.patches import Patch

    width, height = fig.get_size_inches()
    fig.suptitle(textwrap.fill(suptitle, int(width * 11)), fontsize=10)
    fig.legend(handles=[Patch(facecolor=c, edgecolor="grey", label=label) for c, label in CLASSES],
               loc="lower center", bbox_to_anchor=(0.5, 0.25 / height), ncol=2 if width < 7 else len(CLASSES),
               fontsize=8, frameon=False)
    fig.text(0.5, 0.08 / height, textwrap.fill(note, int(width * 14)), ha="center", va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.85 / height, 1, 1 - 0.5 / height))
    path = plots._prepare(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_made(results, path):
    """One panel per mask set: the D x D matrix "output (row) depends on input (column)", both in the
    model's ordering, ticks labelled with the variable numbers.  Returns the Path written."""
    plt, fig, axes = _figure(1, len(results), 3.4)
    for ax, dep in zip(axes[0], results):
        n = dep.depends.shape[0]
        _show(ax, _classes(dep.depends, torch.ones(n, n, dtype=torch.bool).tril(-1)),
              f"{dep.title}\n{int(dep.forbidden().sum())} forbidden dependencies")
        labels = [name.split()[-1] for name in dep.names]
        ax.set_xticks(range(n), labels, fontsize=5, rotation=90)
        ax.set_yticks(range(n), labels, fontsize=5)
        ax.set_xlabel("input, in the model's ordering", fontsize=8)
        ax.set_ylabel("output, in the model's ordering", fontsize=8)
    return _save(plt, fig, path, f"MADE({MADE_INPUTS}, {MADE_HIDDEN}): which output depends on which input "
                                 "(rows and columns in self.order; the diagonal is each output's own input; "
                                 "correct = below the diagonal only)", NOT_SEEN["made"])


def _pixel_classes(dep, image_shape, colours, pixel, colour=0):
    """``(colours, H, W)`` classes of every input value for the conditional of ``colour`` at ``pixel``."""
    h, w = image_shape
    o = (pixel[0] * w + pixel[1]) * colours + colour
    allowed = torch.arange(h * w * colours) < o
    return _classes(dep.depends[o], allowed).view(h, w, colours).permute(2, 0, 1)


def _mark(ax, pixel, image_shape):
    from matplotlib.patches import Rectangle

    h, w = image_shape
    ax.add_patch(Rectangle((pixel[1] - 0.5, pixel[0] - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
    ax.set_xticks(range(w))
    ax.set_yticks(range(h))
    ax.tick_params(labelsize=6)


def _first_bad_pixel(dep, image_shape, colours):
    bad = dep.forbidden().any(dim=1).nonzero()
    if not len(bad):
        return None, 0
    o = int(bad[0])
    return divmod(o // colours, image_shape[1]), o % colours


def plot_pixelcnn(dep, path, colour=False):
    """Receptive fields.  Grey-scale: one panel per pixel of ``PIXELCNN_GREY`` (and the first pixel
    with a forbidden dependency).  Colour: for one pixel (the first with a forbidden dependency, if
    any), a 3 x 3 grid: row = the colour whose conditional is shown, column = the input colour.
    The pixel itself is framed in black.  Returns the Path written."""
    config, shape, pixels = PIXELCNN_COLOUR if colour else PIXELCNN_GREY
    colours = config["in_channels"]
    bad, bad_colour = _first_bad_pixel(dep, shape, colours)
    if not colour:
        pixels = pixels + ([bad] if bad is not None and bad not in pixels else [])
        plt, fig, axes = _figure(1, len(pixels), 2.8)
        for ax, pixel in zip(axes[0], pixels):
            _show(ax, _pixel_classes(dep, shape, 1, pixel)[0], f"what pixel {pixel} sees")
            _mark(ax, pixel, shape)
    else:
        pixel = bad or pixels[0]
        plt, fig, axes = _figure(colours, colours, 2.3)
        for c_out in range(colours):
            classes = _pixel_classes(dep, shape, colours, pixel, c_out)
            for c_in in range(colours):
                _show(axes[c_out, c_in], classes[c_in], f"input colour {COLOUR_NAMES[c_in]}" if c_out == 0 else "")
                _mark(axes[c_out, c_in], pixel, shape)
            axes[c_out, 0].set_ylabel(f"what {COLOUR_NAMES[c_out]} of pixel {pixel} sees", fontsize=9)
    return _save(plt, fig, path, f"{dep.model}: {int(dep.forbidden().sum())} forbidden dependencies "
                                 "(raster order" + (", then R, G, B)" if colour else ")"), NOT_SEEN["pixelcnn"])


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------

def _not_implemented(error):
    """``pixelcnn.py: color_center_mask is not implemented yet (line 38)``, from a stub's NotImplementedError."""
    frames = list(traceback.walk_tb(error.__traceback__))
    if not frames:
        return "not implemented yet"
    frame, lineno = frames[-1]
    return f"{Path(frame.f_code.co_filename).name}: {frame.f_code.co_qualname} is not implemented yet (line {lineno})"


def run(model_name, impl="submission", out_dir=Path("runs/check"), log=print):
    """``python -m src check MODEL``: measure the dependencies, draw them, print the verdict.

    Args:
        model_name: ``"made"`` or ``"pixelcnn"`` (the colour model too, when its masks run).
        impl: whose code (see ``src.models.load_impl``).
        out_dir: folder of the pictures (``made.png``, ``pixelcnn.png``, ``pixelcnn_color.png``).

    Before the verdict, one line says whether the model's functions give the CPU's values on another
    device (``src.device_check`` on the stand-in GPU), or one line per function that does not.

    Returns:
        the exit status: 0 autoregressive, 1 a forbidden dependency (the last line names the
        first one) or device-unsafe code (the lines before it name the functions), 2 no verdict
        (the model does not run as the contract says).  A stub that is
        not implemented yet raises ``NotImplementedError`` (the CLI makes it one line).
    """
    from .models import load_impl

    modules = load_impl(impl)
    out_dir = Path(out_dir)
    try:
        if model_name == "made":
            results = made_dependencies(modules.made)
            log(f"wrote {plot_made(results, out_dir / 'made.png')}: which output depends on which input, "
                f"{len(results)} mask sets")
        else:
            results = [pixelcnn_dependencies(modules.pixelcnn)]
            log(f"wrote {plot_pixelcnn(results[0], out_dir / 'pixelcnn.png')}: what a few pixels see")
    except CannotCheck as error:
        log(f"autoregressive: cannot tell: {error}")
        return 2
    if model_name == "pixelcnn":
        try:
            results.append(pixelcnn_dependencies(modules.pixelcnn, colour=True))
        except NotImplementedError as error:
            log(f"colour model (extra credit 3e) not checked: {_not_implemented(error)}")
        except CannotCheck as error:
            log(f"colour model (extra credit 3e) not checked: {error}")
        else:
            path = plot_pixelcnn(results[-1], out_dir / "pixelcnn_color.png", colour=True)
            log(f"wrote {path}: what each colour of one pixel sees")
    # the same functions on another device (the stand-in for a GPU): one line, or one per unsafe function
    from . import device_check

    device_safe = device_check.report(modules, model_name, log)
    violations = [v for v in (r.first_violation() for r in results) if v]
    problems = [f"{r.problem} ({r.title}: {r.model})" for r in results if r.problem]
    if violations:
        log(f"autoregressive: NO: {violations[0]}")
        return 1
    if problems:  # nothing seen: trivially autoregressive, but not a model of the data
        log(f"autoregressive: cannot tell: {problems[0]}")
        return 2
    log("autoregressive: yes")
    return 0 if device_safe else 1
