"""Hostile functions: a memory bomb, an endless loop and a segfault."""
import ctypes

import torch


def bernoulli_log_likelihood(x, logits):
    """Memory bomb: touches 64 MB more at each step until something stops it."""
    chunks = []
    while True:
        chunks.append(torch.ones(2 ** 23, dtype=torch.float64))


def categorical_log_likelihood(x, logits):
    """Never returns."""
    while True:
        pass


def nll_to_bits_per_dim(nll, num_dims):
    """Segmentation fault."""
    return ctypes.string_at(0)
