"""Write tests/data/mnist_slice.pt, the small fixed slice of MNIST used by the grader.

The grading path cannot import torchvision, so the learning tests read this
file instead of data/.  It holds plain tensors (load it with
``torch.load(path, weights_only=True)``):

    binary_train  uint8 (2000, 1, 28, 28) in {0, 1}  first 2000 of binarized_mnist("train")
    binary_test   uint8 (500, 1, 28, 28) in {0, 1}   first 500 of binarized_mnist("test")
    color_train   uint8 (400, 3, 28, 28) in 0..3     first 400 of colored_mnist("train", levels=4, seed=0)
    color_test    uint8 (100, 3, 28, 28) in 0..3     first 100 of colored_mnist("test", levels=4, seed=0)
    train_labels  int64 (2000,), test_labels int64 (500,)  digit labels of the binary slices
    color_levels  int (4), color_seed int (0)

    python tools/make_grading_slice.py
"""
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.data import binarized_mnist, colored_mnist, mnist_labels  # noqa: E402

OUTPUT = ROOT / "tests" / "data" / "mnist_slice.pt"
NUM_BINARY = {"train": 2000, "test": 500}
NUM_COLOR = {"train": 400, "test": 100}
COLOR_LEVELS, COLOR_SEED = 4, 0


def make_slice():
    """Return the dict of tensors described in the module docstring."""
    tensors = {"color_levels": COLOR_LEVELS, "color_seed": COLOR_SEED}
    for split in ("train", "test"):
        n, m = NUM_BINARY[split], NUM_COLOR[split]
        tensors[f"binary_{split}"] = binarized_mnist(split, limit=n).to(torch.uint8)
        tensors[f"{split}_labels"] = mnist_labels(split)[:n].clone()  # clone: save n labels, not all
        colored = colored_mnist(split, levels=COLOR_LEVELS, seed=COLOR_SEED, limit=m)
        tensors[f"color_{split}"] = colored.to(torch.uint8)
    return tensors


def main():
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    torch.save(make_slice(), OUTPUT)
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
