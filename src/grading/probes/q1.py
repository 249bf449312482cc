"""Probes for Question 1 (autoregressive.py) and 4a (evaluate_nll)."""
import torch

from . import probe


@probe("autoregressive")
def bernoulli_ll(submission, *, seed, shape, scale):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, shape, generator=g).double()
    logits = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    return {"x": x, "logits": logits, "ll": submission.autoregressive.bernoulli_log_likelihood(x, logits)}
