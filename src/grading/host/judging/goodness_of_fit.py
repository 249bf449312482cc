"""Pearson's chi-square test of a sampler against the probabilities its model assigns (host side).

Used by the sampling tests of every question: the student's samples of a small
model are coded as integers (one cell per possible outcome) and compared with
``exp(log_probs)``, the model's own probabilities of all outcomes.
"""
import math

import torch

MIN_EXPECTED = 5  # the usual rule for the chi-square approximation
MIN_P_VALUE = 1e-6  # every sampling test's threshold: a correct sampler fails with probability below 1e-6


def chi_square_p_value(codes, log_probs):
    """p-value of Pearson's test that the integer ``codes`` follow ``exp(log_probs)``.

    Args:
        codes: int tensor ``(n,)``, the outcome of each sample, in ``0..len(log_probs)-1``.
        log_probs: float tensor ``(K,)``, log-probability of each outcome (sums to 1 after exp).

    Cells expecting fewer than ``MIN_EXPECTED`` samples are pooled, smallest
    first.  A code out of range is an outcome of probability 0: p-value 0.

    Returns:
        ``(p_value, statistic, degrees_of_freedom)``, floats and an int.
    """
    codes = codes.long()
    expected = log_probs.double().exp() * codes.numel()
    if codes.numel() and (codes.min() < 0 or codes.max() >= expected.numel()):
        return 0.0, math.inf, 0
    observed = torch.bincount(codes, minlength=expected.numel()).double()
    cells_obs, cells_exp, acc_obs, acc_exp = [], [], 0.0, 0.0
    for index in torch.argsort(expected).tolist():
        acc_obs += observed[index].item()
        acc_exp += expected[index].item()
        if acc_exp >= MIN_EXPECTED:
            cells_obs.append(acc_obs)
            cells_exp.append(acc_exp)
            acc_obs, acc_exp = 0.0, 0.0
    if cells_exp:  # what is left joins the last cell
        cells_obs[-1] += acc_obs
        cells_exp[-1] += acc_exp
    obs = torch.tensor(cells_obs, dtype=torch.float64)
    exp = torch.tensor(cells_exp, dtype=torch.float64)
    stat = ((obs - exp) ** 2 / exp).sum()
    df = max(len(cells_exp) - 1, 1)
    p_value = torch.special.gammaincc(torch.tensor(df / 2, dtype=torch.float64), stat / 2).item()
    return p_value, stat.item(), df
