"""Question 1: the chain rule, likelihoods and bits/dim, from scratch.

Conventions used throughout the problem set
-------------------------------------------
* A batch of examples has the batch dimension first: ``x`` has shape ``(B, ...)``.
* Log-likelihoods are natural logarithms (nats), **summed** over every dimension
  of one example, so a batch gives one number per example: shape ``(B,)``.
* An *ordering* is a permutation ``order`` of ``range(D)``: ``order[i]`` is the
  index of the variable that is generated ``i``-th.  The chain rule then reads
  ``p(x) = prod_i p(x[order[i]] | x[order[0]], ..., x[order[i-1]])``.
* Every ``sample(n, generator=None)`` draws all its randomness from ``generator``
  (a ``torch.Generator``; ``None`` means PyTorch's global generator), so the same
  seed gives the same samples.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def bernoulli_log_likelihood(x, logits):
    """Log-likelihood of binary data under independent Bernoulli distributions.

    Args:
        x: tensor of shape ``(B, ...)`` with values in {0, 1} (any dtype).
        logits: float tensor of the same shape as ``x``; ``sigmoid(logits)`` is
            the probability that the matching entry of ``x`` is 1.

    Returns:
        float tensor of shape ``(B,)``: ``sum_d log p(x_d)`` for each example,
        in nats.  Must be finite for logits as large as ``+-1e4`` (do not take
        ``log(sigmoid(.))`` directly).
    """
    ### START CODE HERE ###
    x = x.to(logits.dtype)
    log_p = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return log_p.reshape(log_p.shape[0], -1).sum(dim=1)
    ### END CODE HERE ###


def categorical_log_likelihood(x, logits):
    """Log-likelihood of integer data under independent categorical distributions.

    Args:
        x: int64 tensor of shape ``(B, ...)`` with values in ``{0, ..., K-1}``.
        logits: float tensor of shape ``(B, K, ...)``: unnormalised log-probabilities
            of the K values, for every entry of ``x`` (the class dimension is
            dimension 1, as in ``F.cross_entropy``).

    Returns:
        float tensor of shape ``(B,)``: ``sum_d log p(x_d)`` for each example, in
        nats.  Must be finite for logits as large as ``+-1e4``.
    """
    ### START CODE HERE ###
    log_p = -F.cross_entropy(logits, x.long(), reduction="none")
    return log_p.reshape(log_p.shape[0], -1).sum(dim=1)
    ### END CODE HERE ###


def nll_to_bits_per_dim(nll, num_dims):
    """Convert a negative log-likelihood in nats into bits per dimension.

    Args:
        nll: float tensor (any shape) or Python float: the negative log-likelihood
            of **one whole example**, in nats.
        num_dims: int, the number of dimensions of one example (784 for MNIST).

    Returns:
        the same type and shape as ``nll``: ``nll / (num_dims * ln 2)``.
    """
    ### START CODE HERE ###
    return nll / (num_dims * math.log(2.0))
    ### END CODE HERE ###


class DiscreteAR2D(nn.Module):
    """Autoregressive model of two discrete variables ``x = (x0, x1)``, each in {0..K-1}.

    With ``order=(0, 1)`` it models ``p(x0) p(x1 | x0)``; with ``order=(1, 0)`` it
    models ``p(x1) p(x0 | x1)``.  The parameters are two logit tables:

    * ``first_logits``, shape ``(K,)``: logits of the variable generated first;
    * ``second_logits``, shape ``(K, K)``: row ``v`` holds the logits of the
      variable generated second, given that the first one equals ``v``.
    """

    def __init__(self, num_values, order=(0, 1)):
        super().__init__()
        if sorted(order) != [0, 1]:
            raise ValueError(f"order must be (0, 1) or (1, 0), got {order}")
        self.num_values = num_values
        self.order = tuple(order)
        self.first_logits = nn.Parameter(torch.zeros(num_values))
        self.second_logits = nn.Parameter(torch.zeros(num_values, num_values))

    def log_prob(self, x):
        """Log-likelihood of a batch.

        Args:
            x: int64 tensor of shape ``(B, 2)`` with values in ``{0, ..., K-1}``.

        Returns:
            float tensor of shape ``(B,)``: ``log p(x)`` in nats.
        """
        ### START CODE HERE ###
        first, second = x[:, self.order[0]], x[:, self.order[1]]
        log_p_first = F.log_softmax(self.first_logits, dim=0)[first]
        log_p_second = F.log_softmax(self.second_logits[first], dim=1)
        log_p_second = log_p_second.gather(1, second[:, None]).squeeze(1)
        return log_p_first + log_p_second
        ### END CODE HERE ###

    @torch.no_grad()
    def sample(self, n, generator=None):
        """Draw ``n`` samples by ancestral sampling in the model's order.

        Returns:
            int64 tensor of shape ``(n, 2)`` with values in ``{0, ..., K-1}``.
        """
        ### START CODE HERE ###
        x = torch.empty(n, 2, dtype=torch.long, device=self.first_logits.device)
        probs_first = F.softmax(self.first_logits, dim=0).expand(n, -1)
        first = torch.multinomial(probs_first, 1, generator=generator).squeeze(1)
        probs_second = F.softmax(self.second_logits[first], dim=1)
        second = torch.multinomial(probs_second, 1, generator=generator).squeeze(1)
        x[:, self.order[0]] = first
        x[:, self.order[1]] = second
        return x
        ### END CODE HERE ###


class FVSBN(nn.Module):
    """Fully-visible sigmoid belief network over D binary variables.

    For the ordering ``order`` (a permutation of ``range(D)``), the ``i``-th
    generated variable ``x[order[i]]`` is 1 with probability

        sigmoid(bias[i] + sum_{j < i} weight[i, j] * x[order[j]]).

    Only the strictly lower triangle of ``weight`` (``j < i``) is used: entries on
    and above the diagonal must have no effect on anything.

    Attributes:
        weight: parameter of shape ``(D, D)``, indexed by positions in the ordering.
        bias: parameter of shape ``(D,)``, indexed by positions in the ordering.
        order: int64 buffer of shape ``(D,)``.
    """

    def __init__(self, dim, order=None):
        super().__init__()
        order = torch.arange(dim) if order is None else torch.as_tensor(order, dtype=torch.long)
        if sorted(order.tolist()) != list(range(dim)):
            raise ValueError(f"order must be a permutation of range({dim})")
        self.dim = dim
        self.weight = nn.Parameter(torch.zeros(dim, dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("order", order.clone())

    def conditional_logits(self, x):
        """Logits of every conditional, in the variables' own indexing.

        Args:
            x: float tensor of shape ``(B, D)`` with values in {0, 1}.

        Returns:
            float tensor of shape ``(B, D)``: entry ``[b, d]`` is the logit of
            ``p(x[b, d] = 1 | the variables before d in the ordering)``.
        """
        ### START CODE HERE ###
        x_ordered = x[:, self.order].to(self.weight.dtype)
        logits_ordered = x_ordered @ torch.tril(self.weight, diagonal=-1).T + self.bias
        logits = torch.empty_like(logits_ordered)
        logits[:, self.order] = logits_ordered
        return logits
        ### END CODE HERE ###

    def log_prob(self, x):
        """Log-likelihood of a batch: float tensor ``(B, D)`` in {0, 1} -> ``(B,)`` nats."""
        ### START CODE HERE ###
        return bernoulli_log_likelihood(x, self.conditional_logits(x))
        ### END CODE HERE ###

    @torch.no_grad()
    def sample(self, n, generator=None):
        """Draw ``n`` samples, one variable at a time in the model's order.

        Returns:
            float tensor of shape ``(n, D)`` with values in {0., 1.}.
        """
        ### START CODE HERE ###
        x = torch.zeros(n, self.dim, dtype=self.weight.dtype, device=self.weight.device)
        for i in range(self.dim):
            d = self.order[i]
            p = torch.sigmoid(self.conditional_logits(x)[:, d])
            x[:, d] = torch.bernoulli(p, generator=generator)
        return x
        ### END CODE HERE ###


@torch.no_grad()
def evaluate_nll(model, data_loader):
    """Average negative log-likelihood of a model over a whole data set.

    Args:
        model: any model of this problem set: ``model.log_prob(x)`` maps a batch
            ``x`` of shape ``(B, ...)`` to log-likelihoods of shape ``(B,)``.
        data_loader: iterable of batches; a batch is either a tensor ``x`` or a
            tuple/list whose first element is ``x`` (labels are ignored).  The
            last batch may be smaller than the others.  Batches are moved to
            the device of the model's parameters.

    Returns:
        dict with two Python floats:
            ``"nll"``: the mean over **all examples** of ``-log p(x)``, in nats;
            ``"bits_per_dim"``: the same in bits per dimension, where the number
            of dimensions is that of one example (``x[0].numel()``).
    """
    ### START CODE HERE ###
    device = next(model.parameters()).device
    total_nll, count, num_dims = 0.0, 0, None
    for batch in data_loader:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = x.to(device)
        total_nll += -model.log_prob(x).double().sum().item()
        count += x.shape[0]
        num_dims = x[0].numel()
    nll = total_nll / count
    return {"nll": nll, "bits_per_dim": nll_to_bits_per_dim(nll, num_dims)}
    ### END CODE HERE ###
