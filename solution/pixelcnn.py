"""Question 3: PixelCNN (van den Oord et al., 2016) with masked convolutions.

Images are int64 tensors of shape ``(B, C, H, W)`` with values in
``{0, ..., K-1}`` (K = ``num_levels``; K = 2 for binarised MNIST).  Pixels are
generated in raster order (row by row, left to right); inside one pixel of a
colour image the channels come in order (R, then G, then B).

Colour groups (extra credit).  With ``color_channels = C > 1`` every layer's
channels are split into C groups: channel ``i`` of a layer with ``n`` channels
belongs to group ``(i * C) // n``.  Group ``c`` of any layer carries information
for colour ``c``; at the centre pixel a type-A mask lets output group ``g`` see
input groups ``h < g``, a type-B mask input groups ``h <= g``.

Using another file of yours: ``import autoregressive`` (or ``from autoregressive
import bernoulli_log_likelihood``).  Your three files are imported as top-level
modules from the folder that is graded (locally and on Gradescope), so that is
how one finds another; ``from submission.autoregressive import ...`` is taken to
mean the same file of the graded folder.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def preprocess(x, num_levels, dtype=torch.float32):
    """Map integer pixels ``{0..K-1}`` (any shape) to floats of ``dtype`` in [0, 1], the input of ``input_conv``."""
    return x.to(dtype) / (num_levels - 1)


def color_center_mask(mask_type, in_channels, out_channels, color_channels):
    """Centre-pixel mask between colour groups (extra credit).

    Args:
        mask_type: ``'A'`` or ``'B'``.
        in_channels, out_channels: channel counts of the convolution.
        color_channels: C, the number of colours (3 for RGB).

    Returns:
        float tensor ``(out_channels, in_channels)`` of 0/1: entry ``[o, i]`` is 1
        iff group(i) < group(o) (type A) or group(i) <= group(o) (type B), with
        ``group(j) = (j * C) // n`` for a layer of ``n`` channels.
    """
    ### START CODE HERE ###
    group_in = torch.arange(in_channels) * color_channels // in_channels
    group_out = torch.arange(out_channels) * color_channels // out_channels
    if mask_type == "A":
        return (group_in[None, :] < group_out[:, None]).float()
    return (group_in[None, :] <= group_out[:, None]).float()
    ### END CODE HERE ###


def conv_mask(mask_type, in_channels, out_channels, kernel_size, color_channels=1):
    """Mask of a PixelCNN convolution.

    Args:
        mask_type: ``'A'`` (the first layer: the centre pixel is hidden) or
            ``'B'`` (later layers: the centre pixel is visible).
        in_channels, out_channels: channel counts.
        kernel_size: odd int k; the kernel is k x k with its centre at ``k // 2``.
        color_channels: 1 for grey-scale; C > 1 uses ``color_center_mask`` at the
            centre pixel (extra credit).

    Returns:
        float tensor ``(out_channels, in_channels, k, k)`` of 0/1: 1 for every
        kernel position strictly before the centre in raster order, 0 for every
        position after it, and at the centre 0 (type A) or 1 (type B) when
        ``color_channels == 1``.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    ### START CODE HERE ###
    centre = kernel_size // 2
    mask = torch.ones(out_channels, in_channels, kernel_size, kernel_size)
    mask[:, :, centre, centre:] = 0
    mask[:, :, centre + 1:, :] = 0
    if color_channels == 1:
        mask[:, :, centre, centre] = 1.0 if mask_type == "B" else 0.0
    else:
        mask[:, :, centre, centre] = color_center_mask(mask_type, in_channels, out_channels, color_channels)
    return mask
    ### END CODE HERE ###


class MaskedConv2d(nn.Conv2d):
    """A same-padded ``nn.Conv2d`` whose kernel is multiplied by ``conv_mask(...)``.

    Input ``(B, in_channels, H, W)`` -> output ``(B, out_channels, H, W)``.  The
    mask is the float buffer ``mask`` of the weight's shape.
    """

    def __init__(self, mask_type, in_channels, out_channels, kernel_size, color_channels=1):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.mask_type = mask_type
        self.register_buffer("mask", conv_mask(mask_type, in_channels, out_channels, kernel_size, color_channels))

    def forward(self, x):
        ### START CODE HERE ###
        return F.conv2d(x, self.mask * self.weight, self.bias, padding=self.padding)
        ### END CODE HERE ###


class ResidualBlock(nn.Module):
    """PixelCNN residual block: ``x + net(x)``, shape ``(B, c, H, W)`` kept.

    ``net`` is ReLU, 1x1 conv (c -> c/2), ReLU, 3x3 conv, ReLU, 1x1 conv (c/2 -> c),
    all masked convolutions of type B.
    """

    def __init__(self, channels, color_channels=1):
        super().__init__()
        half = channels // 2
        self.net = nn.Sequential(
            nn.ReLU(), MaskedConv2d("B", channels, half, 1, color_channels),
            nn.ReLU(), MaskedConv2d("B", half, half, 3, color_channels),
            nn.ReLU(), MaskedConv2d("B", half, channels, 1, color_channels),
        )

    def forward(self, x):
        ### START CODE HERE ###
        return x + self.net(x)
        ### END CODE HERE ###


class PixelCNN(nn.Module):
    """PixelCNN over images with ``in_channels`` colours and ``num_levels`` intensities.

    Layers (names fixed by the grader): ``input_conv`` (type A, ``kernel_size``),
    ``blocks`` (``num_blocks`` residual blocks), ``head`` (ReLU, 1x1 type B,
    ReLU, 1x1 type B with ``in_channels * num_levels`` outputs; output channel
    ``c * num_levels + v`` is the logit of value ``v`` for colour ``c``).
    """

    def __init__(self, in_channels=1, num_levels=2, channels=64, num_blocks=7, kernel_size=7):
        super().__init__()
        self.in_channels, self.num_levels = in_channels, num_levels
        self.input_conv = MaskedConv2d("A", in_channels, channels, kernel_size, in_channels)
        self.blocks = nn.Sequential(*[ResidualBlock(channels, in_channels) for _ in range(num_blocks)])
        self.head = nn.Sequential(
            nn.ReLU(), MaskedConv2d("B", channels, channels, 1, in_channels),
            nn.ReLU(), MaskedConv2d("B", channels, in_channels * num_levels, 1, in_channels),
        )

    def forward(self, x):
        """Logits of every pixel's conditional.

        Args:
            x: int64 tensor ``(B, C, H, W)`` with values in ``{0..K-1}``; feed
                ``preprocess(x, num_levels, dtype)`` to ``input_conv``, with the
                dtype of ``input_conv.weight``.

        Returns:
            float tensor ``(B, K, C, H, W)``: ``[b, :, c, i, j]`` are the logits of
            ``p(x[b, c, i, j] | pixels before (i, j), and colours before c)``.
        """
        ### START CODE HERE ###
        h = preprocess(x, self.num_levels, self.input_conv.weight.dtype)
        h = self.blocks(self.input_conv(h))
        out = self.head(h)
        B, _, H, W = out.shape
        return out.view(B, self.in_channels, self.num_levels, H, W).transpose(1, 2)
        ### END CODE HERE ###

    def log_prob(self, x):
        """int64 ``(B, C, H, W)`` -> float ``(B,)``: ``log p(x)`` in nats, summed over pixels and colours."""
        ### START CODE HERE ###
        logits = self(x)
        return -F.cross_entropy(logits, x, reduction="none").sum(dim=(1, 2, 3))
        ### END CODE HERE ###

    @torch.no_grad()
    def sample(self, n, image_shape=(28, 28), generator=None):
        """Draw ``n`` images in raster order, the whole batch at once.

        Uses exactly ``H * W * C`` forward passes (``H * W`` for grey-scale).

        Returns:
            int64 tensor ``(n, C, H, W)`` with values in ``{0..K-1}``, on the
            model's device.
        """
        ### START CODE HERE ###
        H, W = image_shape
        device = self.input_conv.weight.device
        x = torch.zeros(n, self.in_channels, H, W, dtype=torch.long, device=device)
        for i in range(H):
            for j in range(W):
                for c in range(self.in_channels):
                    probs = F.softmax(self(x)[:, :, c, i, j], dim=1)
                    x[:, c, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return x
        ### END CODE HERE ###
