"""Hostile: prints 100 MB, then returns a wrong mask."""
import sys

import torch


def conv_mask(mask_type, in_channels, out_channels, kernel_size, color_channels=1):
    line = "spam " * 200_000 + "\n"  # 1 MB
    for _ in range(100):
        sys.stdout.write(line)
        sys.stderr.write(line[:1000] + "\n")
    sys.stdout.flush()
    return torch.zeros(out_channels, in_channels, kernel_size, kernel_size)
