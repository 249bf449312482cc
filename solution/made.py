"""Question 2: MADE, the Masked Autoencoder for Distribution Estimation (Germain et al., 2015).

A MADE is a feed-forward network whose weight matrices are multiplied by binary
masks so that output ``d`` depends only on the inputs that come before ``d`` in
an ordering.  One forward pass then gives every conditional of the chain rule.

Degrees (0-based, as in the rest of the problem set)
-----------------------------------------------------
* An ordering ``order`` is a permutation of ``range(D)``; ``order[i]`` is the
  variable generated ``i``-th.  The degree of input ``d`` is its position in the
  ordering: ``m0[d] = i`` where ``order[i] = d``; degrees run from 0 to D-1.
* A hidden unit of degree ``m`` may depend on the inputs of degree ``0..m``.
  Hidden degrees lie between the smallest degree of the layer below and ``D-2``
  (a unit of degree D-1 could only feed outputs that do not exist).
* Output unit ``o`` models input ``d = o % D`` (parameter ``o // D`` of it, when
  ``nout = k * D``); it may depend on inputs of degree strictly below ``m0[d]``.

Using another file of yours: ``import autoregressive`` (or ``from autoregressive
import bernoulli_log_likelihood``).  Your three files are imported as top-level
modules from the folder that is graded (locally and on Gradescope), so that is
how one finds another; ``from submission.autoregressive import ...`` is taken to
mean the same file of the graded folder.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class MaskedLinear(nn.Linear):
    """An ``nn.Linear`` whose weight is multiplied by a fixed binary mask.

    The mask is a buffer named ``mask`` of shape ``(out_features, in_features)``,
    float, initially all ones, so that it is saved in and loaded from the
    module's ``state_dict`` and moves with ``.to(device)``.
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features, out_features, bias)
        ## TODO: register the all-ones mask as a buffer named "mask".
        ### START CODE HERE ###
        self.register_buffer("mask", torch.ones(out_features, in_features))
        ### END CODE HERE ###

    def set_mask(self, mask):
        """Copy ``mask`` (any array-like of shape ``(out_features, in_features)``
        with entries 0/1) into the ``mask`` buffer, in place."""
        ### START CODE HERE ###
        self.mask.copy_(torch.as_tensor(mask, dtype=self.mask.dtype))
        ### END CODE HERE ###

    def forward(self, x):
        """``(B, in_features) -> (B, out_features)``: ``x @ (mask * weight).T + bias``."""
        ### START CODE HERE ###
        return F.linear(x, self.mask * self.weight, self.bias)
        ### END CODE HERE ###


def made_degrees(order, hidden_sizes, generator=None):
    """Degrees of the input and hidden units of a MADE.

    Args:
        order: int64 tensor of shape ``(D,)``, a permutation of ``range(D)``; D >= 2.
        hidden_sizes: list of ints, the width of each hidden layer.
        generator: ``torch.Generator`` for the random hidden degrees, or None.

    Returns:
        list of ``len(hidden_sizes) + 1`` int64 tensors: the input degrees ``m0``
        of shape ``(D,)`` (``m0[order[i]] = i``), then for each hidden layer ``l``
        its degrees of shape ``(hidden_sizes[l],)``, drawn uniformly at random
        from ``{min(previous layer's degrees), ..., D-2}``.
    """
    ### START CODE HERE ###
    order = torch.as_tensor(order, dtype=torch.long)
    D = order.numel()
    degrees = [torch.empty(D, dtype=torch.long)]
    degrees[0][order] = torch.arange(D)
    for size in hidden_sizes:
        low = int(degrees[-1].min())
        degrees.append(torch.randint(low, D - 1, (size,), generator=generator))
    return degrees
    ### END CODE HERE ###


def made_masks(degrees, k=1):
    """Masks of every layer of a MADE, from the degrees of ``made_degrees``.

    Args:
        degrees: list ``[m0, m1, ..., mL]`` of int64 tensors (input degrees first).
        k: number of output parameters per input dimension (``nout = k * D``).

    Returns:
        list of ``L + 1`` float tensors of 0/1 entries, one per ``MaskedLinear``:
        hidden layer ``l`` gets shape ``(len(m_l), len(m_{l-1}))`` with entry 1 iff
        ``m_l[out] >= m_{l-1}[in]``; the output layer gets shape ``(k * D, len(mL))``
        with entry ``[o, j]`` equal to 1 iff ``m0[o % D] > mL[j]``.
    """
    ### START CODE HERE ###
    masks = [(m_out[:, None] >= m_in[None, :]).float() for m_in, m_out in zip(degrees[:-1], degrees[1:])]
    m0 = degrees[0]
    output_degrees = m0.repeat(k)  # output o models input o % D
    masks.append((output_degrees[:, None] > degrees[-1][None, :]).float())
    return masks
    ### END CODE HERE ###


class MADE(nn.Module):
    """MADE for D binary variables (or k parameters per variable, ``nout = k * D``).

    Args:
        nin: D, the number of input dimensions (D >= 2).
        hidden_sizes: list of hidden layer widths.
        nout: number of outputs, a multiple of ``nin``; ``nout == nin`` for the
            Bernoulli model that ``log_prob`` and ``sample`` use.
        num_masks: number of different mask sets (orderings and hidden degrees)
            cycled through for connectivity-agnostic training and ensembling.
        natural_ordering: if True every mask set uses ``order = arange(D)``;
            otherwise mask set ``k`` uses a random permutation.
        seed: mask set ``k`` is a deterministic function of ``(seed, k)``.

    Attributes fixed by the grader: ``net`` (the ``nn.Sequential`` of
    ``MaskedLinear`` and ``ReLU`` layers below), ``order`` (int64 buffer ``(D,)``,
    the ordering of the mask set in use) and ``mask_index`` (int, which of the
    ``num_masks`` mask sets is in use).
    """

    def __init__(self, nin, hidden_sizes, nout, num_masks=1, natural_ordering=True, seed=0):
        super().__init__()
        if nin < 2 or nout % nin != 0:
            raise ValueError(f"need nin >= 2 and nout a multiple of nin, got nin={nin}, nout={nout}")
        self.nin, self.nout = nin, nout
        self.hidden_sizes = list(hidden_sizes)
        self.num_masks = num_masks
        self.natural_ordering = natural_ordering
        self.seed = seed
        sizes = [nin] + self.hidden_sizes + [nout]
        layers = []
        for size_in, size_out in zip(sizes[:-1], sizes[1:]):
            layers += [MaskedLinear(size_in, size_out), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])
        self.register_buffer("order", torch.arange(nin))
        self.mask_index = -1
        self.update_masks()  # installs mask set 0

    def update_masks(self):
        """Install the next mask set: ``mask_index <- (mask_index + 1) % num_masks``.

        Mask set ``k`` is built from a ``torch.Generator`` seeded with a function of
        ``(self.seed, k)`` only, so installing set ``k`` twice gives the same masks
        and ``num_masks`` calls bring the model back to the masks it started with.
        Sets ``self.order`` to the set's ordering and calls ``set_mask`` on every
        ``MaskedLinear`` of ``self.net``.
        """
        ### START CODE HERE ###
        self.mask_index = (self.mask_index + 1) % self.num_masks
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.mask_index)
        if self.natural_ordering:
            order = torch.arange(self.nin)
        else:
            order = torch.randperm(self.nin, generator=generator)
        degrees = made_degrees(order, self.hidden_sizes, generator)
        masks = made_masks(degrees, self.nout // self.nin)
        layers = [layer for layer in self.net if isinstance(layer, MaskedLinear)]
        for layer, mask in zip(layers, masks):
            layer.set_mask(mask)
        self.order.copy_(order)
        ### END CODE HERE ###

    def forward(self, x):
        """``(B, D)`` float inputs -> ``(B, nout)`` logits, with the mask set in use."""
        ### START CODE HERE ###
        return self.net(x)
        ### END CODE HERE ###

    def log_prob(self, x):
        """Log-likelihood of binary data, ensembled over all mask sets.

        Args:
            x: float tensor ``(B, D)`` with values in {0, 1}; requires ``nout == nin``.

        Returns:
            float tensor ``(B,)``, in nats.  With one mask set this is
            ``log p(x)``.  With ``num_masks = M`` it is the log of the mean of the
            M likelihoods, ``log (1/M) sum_k p_k(x)``, where ``p_k`` uses mask set
            ``k``; the model is left with the mask set it had before the call.
            With one mask set it must not change the masks, and it is
            differentiable: training minimises ``-log_prob(x).mean()`` under one
            mask set per step (switching sets between steps with
            ``update_masks``).  With several mask sets it is an evaluation
            quantity, as in the MADE paper (train one mask set per step,
            ensemble at test time): it need not be differentiable.
        """
        ### START CODE HERE ###
        x = x.to(self.net[0].weight.dtype)
        # with several mask sets, set_mask writes in place into masks that a graph would have saved: no graph then
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.num_masks == 1):
            per_mask = []
            for _ in range(self.num_masks):
                log_p = -F.binary_cross_entropy_with_logits(self(x), x, reduction="none").sum(dim=1)
                per_mask.append(log_p)
                if self.num_masks > 1:
                    self.update_masks()
            per_mask = torch.stack(per_mask, dim=0)
            return torch.logsumexp(per_mask, dim=0) - math.log(self.num_masks)
        ### END CODE HERE ###

    @torch.no_grad()
    def sample(self, n, generator=None):
        """Draw ``n`` samples with the mask set in use, in exactly D forward passes.

        Variables are drawn in the order ``self.order`` (the ordering of the
        installed mask set); the masks are not changed.

        Returns:
            float tensor ``(n, D)`` with values in {0., 1.}, on the model's device.
        """
        ### START CODE HERE ###
        weight = self.net[0].weight
        x = torch.zeros(n, self.nin, dtype=weight.dtype, device=weight.device)
        for d in self.order.tolist():
            probs = torch.sigmoid(self(x)[:, d])
            x[:, d] = torch.bernoulli(probs, generator=generator)
        return x
        ### END CODE HERE ###
