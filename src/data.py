"""Data sets of the problem set: MNIST, binarised MNIST and coloured MNIST.

All data ship with the repository in ``data/`` (see ``data/README.md``); nothing
is downloaded.  Every data set has the same three splits:

    ``"train"``  the first 50000 of MNIST's 60000 training images
    ``"valid"``  the last 10000 of MNIST's 60000 training images
    ``"test"``   MNIST's 10000 test images

torchvision is imported only inside the functions that read the IDX files, so
importing this module (and using ``binarized_mnist``) does not need it.
"""
import functools
import gzip
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

DATA_ROOT = Path(__file__).resolve().parent.parent / "data"
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
BINARIZED_FILE = "binarized_mnist.npz"
SPLITS = ("train", "valid", "test")
NUM_TRAIN = 50000  # the 60000 training images are split 50000 train / 10000 valid
COLOR_SEED = 0


class DatasetMissingError(FileNotFoundError):
    """A data file that should ship with the repository is missing."""


def _missing(path):
    return DatasetMissingError(
        f"MNIST data file {path} is missing: restore the data/ folder (from the zip you downloaded, or "
        "git checkout -- data in a git clone)"
    )


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of 'train', 'valid', 'test'")


def ensure_raw_files(root=DATA_ROOT):
    """Decompress the shipped ``root/MNIST/raw/*.gz`` into the raw IDX files torchvision reads.

    Does nothing for files already present.  Each file is written to a
    temporary file and renamed, so an interrupted run never leaves a truncated
    IDX file behind.

    Raises:
        DatasetMissingError: if neither a raw file nor its ``.gz`` exists.
    """
    raw_dir = Path(root) / "MNIST" / "raw"
    for name in RAW_FILES:
        target = raw_dir / name
        if target.exists():
            continue
        source = raw_dir / f"{name}.gz"
        if not source.exists():
            raise _missing(source)
        fd, tmp = tempfile.mkstemp(dir=raw_dir, prefix=f".{name}.", suffix=".tmp")
        try:
            with gzip.open(source, "rb") as fin, os.fdopen(fd, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            os.chmod(tmp, 0o644)  # mkstemp creates it private
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise


@functools.lru_cache(maxsize=4)
def _mnist_arrays(root, train):
    """``(images uint8 (N, 28, 28), labels int64 (N,))`` of MNIST's training or test set."""
    from torchvision.datasets import MNIST

    ensure_raw_files(root)
    dataset = MNIST(root, train=train, download=False)
    return dataset.data, dataset.targets


def _take(split, full):
    """A copy of ``split`` out of ``full``: the 60000-example training set, or the test set for ``"test"``."""
    _check_split(split)
    if split == "train":
        return full[:NUM_TRAIN].clone()
    if split == "valid":
        return full[NUM_TRAIN:].clone()
    return full.clone()


def mnist_images(split, root=DATA_ROOT):
    """Grey-level MNIST images of one split.

    Returns:
        uint8 tensor of shape (N, 28, 28), values in 0..255, with N = 50000
        (train), 10000 (valid) or 10000 (test).
    """
    _check_split(split)
    return _take(split, _mnist_arrays(str(root), split != "test")[0])


def mnist_labels(split, root=DATA_ROOT):
    """Digit labels of one split: int64 tensor of shape (N,), values in 0..9."""
    _check_split(split)
    return _take(split, _mnist_arrays(str(root), split != "test")[1])


def binarized_mnist(split, root=DATA_ROOT, limit=None):
    """The fixed stochastic binarisation of MNIST shipped in ``data/binarized_mnist.npz``.

    ``limit``, if given, keeps only the first ``limit`` images of the split.

    Returns:
        float32 tensor of shape (N, 1, 28, 28) with values in {0, 1}.
    """
    _check_split(split)
    path = Path(root) / BINARIZED_FILE
    if not path.exists():
        raise _missing(path)
    with np.load(path) as archive:
        packed = archive["test" if split == "test" else "train"]
    packed = _take(split, torch.from_numpy(packed))[:limit].numpy()
    bits = np.unpackbits(packed, axis=1, count=28 * 28)
    return torch.from_numpy(bits.reshape(-1, 1, 28, 28)).float()


def colored_mnist(split, levels=4, seed=COLOR_SEED, root=DATA_ROOT, limit=None):
    """MNIST digits in a random colour on black, quantised to ``levels`` levels per channel.

    Each image gets one foreground colour ``c`` in [0, 1]^3 (uniform, then
    scaled so that its brightest channel is 1); channel ``k`` of a pixel with
    grey level ``g`` is ``round(g * (c[k] * (levels - 1) / 255))`` (in float32).  The colours
    are drawn for all 70000 images (training set, then test set) from
    ``torch.Generator().manual_seed(seed)``, so the result depends only on
    ``seed`` and ``levels``.  ``limit``, if given, keeps only the first
    ``limit`` images of the split.

    Returns:
        int64 tensor of shape (N, 3, 28, 28) with values in 0..levels-1
        (about 0.94 GB for the training split).
    """
    _check_split(split)
    if levels < 2:
        raise ValueError(f"levels must be at least 2, got {levels}")
    generator = torch.Generator().manual_seed(seed)
    colors = torch.rand(70000, 3, generator=generator, dtype=torch.float64)
    colors = colors / colors.max(dim=1, keepdim=True).values
    colors = _take(split, colors[60000:] if split == "test" else colors[:60000])[:limit]
    scale = (colors * (levels - 1) / 255).float()[:, :, None, None]
    grey = mnist_images(split, root)[:limit, None]
    out = torch.empty(len(grey), 3, 28, 28, dtype=torch.int64)
    for start in range(0, len(grey), 5000):  # in chunks, to bound the float temporaries
        chunk = slice(start, start + 5000)
        out[chunk] = (grey[chunk] * scale[chunk]).round_()
    return out


DATASETS = {"binarized": binarized_mnist, "colored": colored_mnist}


def make_loaders(dataset, batch_size, limit=None, shuffle=True, seed=0, root=DATA_ROOT):
    """DataLoaders over the train, valid and test splits of a data set.

    Args:
        dataset: ``"binarized"``, ``"colored"`` or a function
            ``f(split, root=..., limit=...) -> tensor`` like ``binarized_mnist``
            returning the first ``limit`` examples of one split.
        batch_size: examples per batch; the last batch may be smaller.
        limit: if given, keep only the first ``limit`` examples of every split
            (a fixed slice, for quick CPU runs).
        shuffle: reshuffle the training split every epoch (from ``seed``);
            valid and test are never shuffled.
        seed: seed of the training split's shuffling.

    Returns:
        dict ``{"train", "valid", "test"} -> DataLoader`` whose batches are
        plain tensors of shape (B, ...) (no labels).
    """
    if isinstance(dataset, str) and dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: expected 'binarized', 'colored' or a function")
    load = DATASETS[dataset] if isinstance(dataset, str) else dataset
    loaders = {}
    for split in SPLITS:
        examples = load(split, root=root, limit=limit)
        train = split == "train" and shuffle
        generator = torch.Generator().manual_seed(seed) if train else None
        loaders[split] = DataLoader(examples, batch_size=batch_size, shuffle=train, generator=generator)
    return loaders
