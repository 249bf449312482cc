"""Inputs that the probes build and the judges rebuild (both sides): seeded generators, all binary vectors,
4a's known model."""
import torch


def seeded_generator(seed):
    """The generator every seeded input is drawn from: ``torch.Generator().manual_seed(seed)``."""
    return torch.Generator().manual_seed(int(seed))


def all_binary(dim):
    """All ``2**dim`` binary vectors, float32 ``(2**dim, dim)``: row ``k`` holds the bits of ``k``, most
    significant first (column 0 is the highest bit), so that ``binary_codes`` of row ``k`` is ``k``."""
    codes = torch.arange(2 ** dim)
    return ((codes[:, None] >> torch.arange(dim - 1, -1, -1)) & 1).float()


def binary_codes(samples):
    """The row of ``all_binary`` that each binary sample ``(n, D)`` is: int64 ``(n,)``."""
    D = samples.shape[1]
    return (samples.round().long() * (2 ** torch.arange(D - 1, -1, -1))).sum(dim=1)


def known_log_prob(x):
    """The log-likelihood of ``KnownModel``: float64 ``(B,)``, exact multiples of 1/8.

    ``log p(x) = -(sum_d w_d x_d) / 8 - 3`` with ``w_d = d % 5 + 1``: every
    example gets its own value and every partial sum is exact in float32 too.
    """
    flat = x.reshape(x.shape[0], -1).double()
    weights = (torch.arange(flat.shape[1]) % 5 + 1).double()
    return -(flat * weights).sum(dim=1) / 8 - 3.0


def evaluation_data(seed, kind, n):
    """``n`` examples and labels: ``"binary_images"`` uint8 (n, 1, 28, 28) in {0, 1},
    ``"colour_images"`` int64 (n, 3, 4, 4) in 0..3, ``"vectors"`` float32 (n, 10) in {0, 1}.
    The last example is all ones (highest NLL), so that its batch differs from the others."""
    g = seeded_generator(seed)
    if kind == "binary_images":
        x = (torch.rand(n, 1, 28, 28, generator=g) < 0.15).to(torch.uint8)
    elif kind == "colour_images":
        x = torch.randint(0, 4, (n, 3, 4, 4), generator=g)
    elif kind == "vectors":
        x = torch.randint(0, 2, (n, 10), generator=g).float()
    else:
        raise ValueError(kind)
    x[-1] = 3 if kind == "colour_images" else 1
    labels = torch.randint(0, 10, (n,), generator=g)
    return x, labels
