"""Figures: sample grids, learning curves, PixelCNN receptive fields, MADE connectivity.

Every function writes one PNG (creating the parent folder) and returns its path.
matplotlib (with the non-interactive Agg backend) and torchvision are imported
inside the functions that use them.
"""
import math
from pathlib import Path

import torch

from .models import model_kind, num_levels


def _prepare(path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_sample_grid(samples, path, nrow=8, scale=3):
    """Save images as one grid PNG (``torchvision.utils.make_grid``).

    Args:
        samples: float tensor ``(n, C, H, W)`` with values in [0, 1] (C = 1 or 3),
            or ``(n, D)`` with D a square (flattened grey-scale images).
        path: the PNG to write.
        nrow: images per row of the grid.
        scale: every pixel becomes a ``scale x scale`` block (28-pixel digits are tiny).

    Returns:
        the Path written.
    """
    from PIL import Image
    from torchvision.utils import make_grid

    samples = samples.detach().float().cpu()
    if samples.dim() == 2:
        side = math.isqrt(samples.shape[1])
        if side * side != samples.shape[1]:
            raise ValueError(f"cannot reshape samples of shape {tuple(samples.shape)} into square images")
        samples = samples.view(-1, 1, side, side)
    if samples.dim() != 4:
        raise ValueError(f"samples must be (n, C, H, W) or (n, D), got shape {tuple(samples.shape)}")
    grid = make_grid(samples.clamp(0, 1), nrow=nrow, padding=2, pad_value=0.5)  # (3, H', W')
    array = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    path = _prepare(path)
    image.save(path)
    return path


def plot_learning_curves(history, path, num_dims=784, title=None):
    """Plot the train and validation NLL against the epoch.

    Args:
        history: list of dicts with keys ``epoch``, ``train_nll``, ``valid_nll``
            (nats per example), as returned by ``src.train.train``.
        path: the PNG to write.
        num_dims: dimensions of one example, for the bits/dim axis on the right.

    Returns:
        the Path written.
    """
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(epochs, [h["train_nll"] for h in history], "o-", label="train (running mean over the epoch)")
    ax.plot(epochs, [h["valid_nll"] for h in history], "s-", label="validation")
    if history:
        best = min(history, key=lambda h: h["valid_nll"])
        # inside the axes: the label leans away from the nearer side, and below the point when the
        # validation curve is the top of the plot (the running mean of training starts higher)
        first, last = epochs[0], epochs[-1]
        ha = "center" if first < best["epoch"] < last else ("left" if best["epoch"] == first else "right")
        top = max(max(h["train_nll"], h["valid_nll"]) for h in history)
        below = best["valid_nll"] >= top
        ax.annotate(f"best {best['valid_nll']:.2f}", (best["epoch"], best["valid_nll"]),
                    textcoords="offset points", xytext=(0, -12 if below else 8), ha=ha,
                    va="top" if below else "bottom", fontsize=8)
        ax.margins(x=0.06, y=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL (nats per image)")
    scale = num_dims * math.log(2.0)
    right = ax.secondary_yaxis("right", functions=(lambda y: y / scale, lambda b: b * scale))
    right.set_ylabel("bits / dim")
    ax.grid(alpha=0.3)
    ax.legend()
    if len(epochs) <= 20:
        ax.set_xticks(epochs)
    ax.set_title(title or "learning curves")
    fig.tight_layout()
    path = _prepare(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _random_inputs(model, image_shape, batch, generator):
    """A batch of random inputs in the model's input format."""
    h, w = image_shape
    if model_kind(model) == "made":
        return torch.bernoulli(torch.full((batch, h * w), 0.5), generator=generator)
    c = getattr(model, "in_channels", 1)
    return torch.randint(0, num_levels(model), (batch, c, h, w), generator=generator)


def hooked_input(model):
    """Make the float input of ``model.input_conv`` a leaf tensor that gradients can be taken for.

    Returns ``(captured, handle)``: after a forward pass ``captured["leaf"]`` is that input (the
    same leaf for every call with the same values, so a forward pass that calls ``input_conv``
    more than once still has one input).
    """
    captured = {}

    def hook(module, args):
        leaf = captured.get("leaf")
        if leaf is None or leaf.shape != args[0].shape or not torch.equal(leaf.detach(), args[0].detach()):
            leaf = captured["leaf"] = args[0].detach().requires_grad_(True)
        return (leaf,) + tuple(args[1:])

    return captured, model.input_conv.register_forward_pre_hook(hook)


def input_gradient(model, image_shape, pixel, channel=0, batch=16, seed=0):
    """Sum over a batch of random inputs of ``|d logits[pixel] / d input|``.

    For a PixelCNN the gradient is taken with respect to the float input of
    ``model.input_conv`` (``preprocess(x)``); for a MADE with respect to its
    float input ``(B, D)``.

    Args:
        pixel: ``(row, col)`` of the pixel whose conditional is examined.
        channel: the colour whose logits are differentiated (PixelCNN).

    Returns:
        float tensor ``(H, W)`` (summed over the input colours), on the CPU.
    """
    h, w = image_shape
    row, col = pixel
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"pixel {pixel} is outside the image of shape {image_shape}")
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    x = _random_inputs(model, image_shape, batch, generator).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            if model_kind(model) == "made":
                inp = x.float().requires_grad_(True)
                logits = model(inp)[:, row * w + col]
                logits.sum().backward()
                grad = inp.grad.abs().sum(dim=0).view(h, w)
            else:
                captured, handle = hooked_input(model)
                try:
                    logits = model(x)  # (B, K, C, H, W)
                finally:
                    handle.remove()
                logits[:, :, channel, row, col].sum().backward()
                grad = captured["leaf"].grad.abs().sum(dim=(0, 1))
    finally:
        model.train(was_training)
    return grad.detach().cpu()


def plot_receptive_field(model, image_shape, pixel, path, channel=0, batch=16, seed=0, title=None):
    """Show which input pixels the conditional of ``pixel`` depends on.

    Left: heat map of ``log10 |gradient|`` of the pixel's logits with respect to
    the input image (random inputs, see :func:`input_gradient`).  Right: every
    pixel classified as *seen* (earlier in the ordering, non-zero gradient),
    *not seen* (earlier but zero gradient: information the model cannot use,
    the PixelCNN blind spot up and to the right, or pixels beyond the reach of
    its stack of convolutions), *future* (later, zero
    gradient, as it must be) or *violation* (later pixel with a non-zero
    gradient: a masking bug).  The chosen pixel is marked with a red square.

    Args:
        model: a PixelCNN (int64 ``(B, C, H, W)`` inputs) or a MADE (``(B, H*W)``).
        image_shape: ``(H, W)``.
        pixel: ``(row, col)``.
        path: the PNG to write.
        title: what the model is (e.g. "untrained pixelcnn (channels=32, ...)"), shown above both panels.

    Returns:
        the Path written.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch, Rectangle

    plt = _pyplot()
    h, w = image_shape
    row, col = pixel
    grad = input_gradient(model, image_shape, pixel, channel, batch, seed)
    seen = grad > 0
    if model_kind(model) == "made":
        degree = torch.empty(h * w, dtype=torch.long)
        degree[model.order.cpu()] = torch.arange(h * w)
        earlier = (degree < degree[row * w + col]).view(h, w)
    else:
        index = torch.arange(h * w).view(h, w)
        earlier = index < row * w + col
        earlier[row, col] = channel > 0  # colours before `channel` of the same pixel are visible
    classes = torch.zeros(h, w, dtype=torch.long)  # 0 future (ok)
    classes[earlier & seen] = 1
    classes[earlier & ~seen] = 2
    classes[~earlier & seen] = 3
    fig, axes = plt.subplots(1, 2, figsize=(9, 5.2 if title else 4.9), dpi=120)
    heat = torch.where(seen, grad.clamp_min(1e-12).log10(), torch.full_like(grad, float("nan")))
    im = axes[0].imshow(heat.numpy(), cmap="viridis")
    fig.colorbar(im, ax=axes[0], fraction=0.046, pad=0.04, label="log10 |gradient|")
    axes[0].set_title(f"|d logits{tuple(pixel)} / d input|")
    colours = ListedColormap(["#f2f2f2", "#3b75af", "#f39c34", "#d62728"])
    axes[1].imshow(classes.numpy(), cmap=colours, vmin=-0.5, vmax=3.5)
    counts = [int((classes == k).sum()) for k in range(4)]
    axes[1].legend(handles=[Patch(color=colours(k), label=f"{name} ({counts[k]})") for k, name in
                            enumerate(["future, unseen", "earlier, seen", "earlier, NOT seen", "future, SEEN (bug)"])],
                   loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    axes[1].set_title("what the conditional can see")
    for ax in axes:
        ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        ax.set_xticks(sorted({0, w // 4, w // 2, 3 * w // 4, w - 1, col}))  # pixel coordinates, 0-based
        ax.set_yticks(sorted({0, h // 4, h // 2, 3 * h // 4, h - 1, row}))
        ax.tick_params(labelsize=7)
        ax.set_xlabel("column", fontsize=8)
        ax.set_ylabel("row", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = _prepare(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_made_connectivity(model, path):
    """Show which inputs each output of a MADE depends on (the product of its masks).

    The ``(D, D)`` matrix ``[d, e]`` is 1 when there is a path from input ``e``
    to output ``d``; rows and columns are sorted by the ordering, so a correct
    MADE gives a strictly lower-triangular picture.

    Returns:
        the Path written.
    """
    plt = _pyplot()
    masks = [m.mask.detach().cpu().float() for m in model.net if hasattr(m, "mask")]
    reach = masks[0]
    for mask in masks[1:]:
        reach = (mask @ reach).clamp_(max=1)
    d = model.nin
    reach = reach[:d]
    order = model.order.cpu()
    reach = reach[order][:, order]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    ax.imshow(reach.numpy(), cmap="Greys", interpolation="nearest")
    ax.set_xlabel("input, in generation order")
    ax.set_ylabel("output, in generation order")
    upper = int(torch.triu(reach).sum())
    ax.set_title(f"MADE connectivity ({upper} forbidden connections)")
    fig.tight_layout()
    path = _prepare(path)
    fig.savefig(path)
    plt.close(fig)
    return path
