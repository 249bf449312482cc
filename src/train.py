"""Maximum-likelihood training and evaluation of the problem set's models.

* :func:`train_step` / :func:`train_steps`: one Adam step, and a plain
  fixed-budget loop of them (no I/O, :class:`FunctionalAdam`): the autograder
  uses ``train_steps``.
* :func:`train`: the full loop: epochs, validation, checkpoints (``best.pt`` and
  ``last.pt`` in ``out_dir``), resuming an interrupted run, early stopping and
  progress bars.
* :func:`evaluate`: test NLL through **your** ``autoregressive.evaluate_nll``.
* :func:`independent_pixel_baseline` and :func:`uniform_baseline`: the numbers
  every model should beat.

Loss.  Batches are already in the model's input format (see
``src.models.adapt_batch``); the loss of a batch ``x`` of shape ``(B, ...)`` is
``-model.log_prob(x).mean()``: the mean over the batch of the per-example
negative log-likelihood in nats.  One exception: a MADE with ``num_masks > 1``
is trained connectivity-agnostically (Germain et al., 2015, Sec. 4): before every
step ``model.update_masks()`` installs the next mask set and the loss is the NLL
under **that one** mask set (``log_prob`` called with ``num_masks`` set to 1
for the call), not the ensemble over all mask sets that ``log_prob`` returns
(which is what validation and test use).

This module imports neither torchvision nor matplotlib.
"""
import math
import os
import random
import time
from pathlib import Path

import torch
from torch.optim.adam import adam
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from . import standin_device

LAST, BEST = "last.pt", "best.pt"


# ---------------------------------------------------------------------------
# One step, and a fixed budget of steps
# ---------------------------------------------------------------------------

def _uses_mask_sets(model):
    return getattr(model, "num_masks", 1) > 1 and hasattr(model, "update_masks")


def model_device(model):
    """The device of the model's first parameter."""
    return next(model.parameters()).device


def training_log_prob(model, x):
    """Per-example log-likelihood used as the training objective: float ``(B,)``, nats.

    ``model.log_prob(x)``, except for a MADE with several mask sets, where it is
    the log-likelihood under the installed mask set only: ``log_prob`` is called
    with ``num_masks`` set to 1 for the call (the contract then has it use the
    installed masks and leave them alone), not the M-fold ensemble.
    """
    if _uses_mask_sets(model):
        num_masks, model.num_masks = model.num_masks, 1
        try:
            return model.log_prob(x)
        finally:
            model.num_masks = num_masks
    return model.log_prob(x)


def train_step(model, optimizer, x):
    """One optimisation step on the batch ``x`` (already on the model's device).

    Calls ``model.update_masks()`` first when the model has ``num_masks > 1``.

    Returns:
        float: the batch loss before the step (mean NLL per example, nats).
    """
    model.train()
    if _uses_mask_sets(model):
        model.update_masks()
    optimizer.zero_grad(set_to_none=True)
    loss = -training_log_prob(model, x).mean()
    loss.backward()
    optimizer.step()
    return loss.item()


class FunctionalAdam:
    """``torch.optim.Adam(params, lr=lr)`` with its defaults, run through torch's functional ``adam``.

    The same numbers as ``torch.optim.Adam``, bit for bit (a test of the course library checks it), without
    importing ``torch._dynamo``: ``torch.optim.Optimizer`` does that when it is built and at every step
    (about 70 MB and 800 modules, a fifth of what the grader's worker may hold on Gradescope).  Only
    ``zero_grad`` and ``step``; no ``state_dict`` (``train_steps`` saves nothing).
    """

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr
        self.state = {}  # param index -> (exp_avg, exp_avg_sq, step), made at its first gradient like Adam's

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self):
        with_grad = [i for i, p in enumerate(self.params) if p.grad is not None]
        for i in with_grad:
            if i not in self.state:
                p = self.params[i]
                step_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
                self.state[i] = (torch.zeros_like(p, memory_format=torch.preserve_format),
                                 torch.zeros_like(p, memory_format=torch.preserve_format),
                                 torch.tensor(0.0, dtype=step_dtype))
        params = [self.params[i] for i in with_grad]
        exp_avgs = [self.state[i][0] for i in with_grad]
        exp_avg_sqs = [self.state[i][1] for i in with_grad]
        steps = [self.state[i][2] for i in with_grad]
        adam(params, [p.grad for p in params], exp_avgs, exp_avg_sqs, [], steps,
             has_complex=any(torch.is_complex(p) for p in params), amsgrad=False, beta1=0.9, beta2=0.999,
             lr=self.lr, weight_decay=0.0, eps=1e-8, maximize=False)


def train_steps(model, batches, *, steps, lr, seed=0):
    """Train ``model`` for exactly ``steps`` Adam steps; no printing, no files.

    Args:
        model: a model with ``log_prob(x) -> (B,)``.
        batches: one batch (a tensor in the model's input format) used at every
            step, or a non-empty sequence / iterable of such batches, cycled
            through in order.
        steps: number of optimisation steps.
        lr: Adam learning rate.
        seed: seeds PyTorch's CPU generator for the duration of the call (the
            caller's generator state is restored afterwards).

    Returns:
        list of ``steps`` floats: the loss of each step (mean NLL, nats).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    device = model_device(model)
    if torch.is_tensor(batches):
        batches = [batches]
    else:
        batches = list(batches)
        if not batches:
            raise ValueError("batches is empty")
    optimizer = FunctionalAdam(model.parameters(), lr=lr)
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(steps):
            x = batches[i % len(batches)]
            x = x[0] if isinstance(x, (tuple, list)) else x
            losses.append(train_step(model, optimizer, x.to(device)))
    return losses


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------

def save_atomic(obj, path):
    """``torch.save(obj, path)`` through a temporary file and ``os.replace``, so that
    a run killed while saving never leaves a truncated checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, map_location="cpu"):
    """Load a checkpoint written by :func:`train` (``weights_only=True``: tensors
    and plain Python data only)."""
    if standin_device.is_standin(map_location):
        map_location = "cpu"  # loading copies the CPU values into the model on the stand-in
    return torch.load(path, map_location=map_location, weights_only=True)


def model_state(model):
    """What a checkpoint stores about a model: its ``state_dict`` and, for a MADE,
    which mask set is in use (``mask_index`` is not part of the ``state_dict``)."""
    state = {"model": model.state_dict()}
    if hasattr(model, "mask_index"):
        state["mask_index"] = int(model.mask_index)
    return state


def load_model_state(model, checkpoint):
    """Inverse of :func:`model_state`: restore the weights (and MADE's mask set)."""
    model.load_state_dict(checkpoint["model"])
    if "mask_index" in checkpoint and hasattr(model, "mask_index"):
        model.mask_index = checkpoint["mask_index"]
    return model


def _sampler_generator(loader):
    """The ``torch.Generator`` a (possibly wrapped) DataLoader shuffles with, if any."""
    while loader is not None:
        generator = getattr(loader, "generator", None)
        if isinstance(generator, torch.Generator):
            return generator
        loader = getattr(loader, "loader", None)
    return None


def _rng_state(train_loader):
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    generator = _sampler_generator(train_loader)
    if generator is not None:
        state["loader"] = generator.get_state()
    return state


def _set_rng_state(state, train_loader):
    # RNG states must be CPU byte tensors, whatever map_location the checkpoint was loaded with
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    generator = _sampler_generator(train_loader)
    if "loader" in state and generator is not None:
        generator.set_state(state["loader"].cpu())


# ---------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------

@torch.no_grad()
def mean_nll(model, loader):
    """Mean per-example NLL (nats) of ``model`` over ``loader`` (used for validation)."""
    model.eval()
    device = model_device(model)
    total, count = 0.0, 0
    for x in loader:
        x = (x[0] if isinstance(x, (tuple, list)) else x).to(device)
        total += -model.log_prob(x).double().sum().item()
        count += x.shape[0]
    if count == 0:
        raise ValueError("the validation loader is empty")
    return total / count


def resolve_device(device):
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; anything else as given.

    Tests without a GPU: with ``PSET_STANDIN_DEVICE=1`` in the environment, ``"cuda"`` means
    the stand-in device of :mod:`src.standin_device` (CUDA's rules of device mixing, CPU values).
    """
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available() \
            and os.environ.get(standin_device.ENV_VAR) == "1":
        return standin_device.activate_for_process()
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available (use --device cpu)")
    return device


def make_generator(device, seed):
    """A ``torch.Generator`` for sampling on ``device``, seeded (the stand-in device draws with a CPU one)."""
    return torch.Generator(device="cpu" if standin_device.is_standin(device) else device).manual_seed(seed)


def train(model, train_loader, valid_loader, *, epochs, lr, out_dir, patience=5, max_steps=None, lr_decay=1.0,
          weight_decay=0.0, ema_decay=None, device="cpu", resume=False, config=None, progress=True, log=print,
          wall_clock=None):
    """Train ``model`` by maximum likelihood with Adam (AdamW when ``weight_decay > 0``).

    Args:
        model: a model with ``log_prob(x) -> (B,)`` (nats).
        train_loader, valid_loader: iterables of batches in the model's input
            format (``src.models.AdaptedLoader`` wraps a DataLoader of images).
        epochs: the maximum number of epochs (counting those of a resumed run).
        lr: Adam learning rate of the first epoch; epoch ``e`` (1-based) uses
            ``lr * lr_decay ** (e - 1)`` (so a resumed run continues the schedule).
        out_dir: run folder; receives ``last.pt`` (after every epoch: model,
            optimizer, epoch, step, history, early-stopping state, RNG states)
            and ``best.pt`` (the weights with the lowest validation NLL).
        patience: stop after this many epochs in a row without a new best
            validation NLL.
        max_steps: optional cap on the total number of optimisation steps (the
            epoch in which it is reached is cut short, then validated).
        lr_decay: multiplicative decay of the learning rate per epoch (1 = constant).
        weight_decay: decoupled weight decay of AdamW (0 = plain Adam).
        ema_decay: if given (e.g. 0.999), keep an exponential moving average of the
            weights (Polyak averaging, ``torch.optim.swa_utils.AveragedModel``),
            updated after every step; validation, ``best.pt`` and the returned
            model then use the averaged weights, the optimiser the raw ones.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        resume: continue from ``out_dir/last.pt`` if it exists (after the last
            *completed* epoch, with the same history and random state).
        config: plain data (dict of str/int/float/list) saved in the
            checkpoints, e.g. the model name and hyper-parameters.
        progress: show tqdm progress bars.
        log: function used for the one-line messages (``print`` by default).
        wall_clock: function returning the run's wall time so far in seconds, saved in
            ``last.pt`` as ``wall_seconds`` (the command line counts every session of a
            resumed run); default: the time since this call began, plus the
            ``wall_seconds`` of the checkpoint resumed from.

    Returns:
        the history: list of dicts ``{"epoch", "train_nll", "valid_nll",
        "seconds"}`` (1-based epoch, mean NLLs in nats, wall time of the epoch).
        On return the model holds the **best** weights and is in eval mode.
    """
    from tqdm.auto import tqdm

    if epochs < 0 or patience < 1 or not 0 < lr_decay <= 1 or weight_decay < 0 or not (
            ema_decay is None or 0 < ema_decay < 1):
        raise ValueError(f"need epochs >= 0, patience >= 1, 0 < lr_decay <= 1, weight_decay >= 0 and ema_decay "
                         f"None or in (0, 1), got epochs={epochs}, patience={patience}, lr_decay={lr_decay}, "
                         f"weight_decay={weight_decay}, ema_decay={ema_decay}")
    device = resolve_device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    averaged = None
    if ema_decay is not None:
        # buffers (masks) are not averaged: the copy keeps its own (a MADE ensembles over its own mask sets)
        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=False)
    evaluated = model if averaged is None else averaged.module  # the weights that are validated and kept
    history, epoch, step, best, bad_epochs = [], 0, 0, math.inf, 0
    saved_epoch, wall_before, called = None, 0.0, time.perf_counter()  # saved_epoch: what last.pt holds

    if resume and (out_dir / LAST).exists():
        ckpt = load_checkpoint(out_dir / LAST, map_location=device)
        load_model_state(model, ckpt)
        optimizer.load_state_dict(ckpt["optimizer"])
        if averaged is not None:
            if "ema" not in ckpt:
                raise ValueError(f"{out_dir / LAST} was trained without weight averaging (ema_decay)")
            averaged.load_state_dict(ckpt["ema"])
        history, epoch, step = list(ckpt["history"]), ckpt["epoch"], ckpt["step"]
        best, bad_epochs = ckpt["best_valid"], ckpt["bad_epochs"]
        _set_rng_state(ckpt["rng"], train_loader)
        saved_epoch, wall_before = epoch, float(ckpt.get("wall_seconds", 0.0))
        log(f"resumed from {out_dir / LAST} after epoch {epoch} (step {step}, best valid NLL {best:.2f})")
    elif resume:
        log(f"no {out_dir / LAST} to resume from: starting a new run")

    if wall_clock is None:
        def wall_clock():
            return wall_before + time.perf_counter() - called

    def stopped():
        return bad_epochs >= patience or (max_steps is not None and step >= max_steps)

    try:
        while epoch < epochs and not stopped():
            epoch += 1
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_decay ** (epoch - 1)
            start, total, count = time.perf_counter(), 0.0, 0
            bar = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not progress,
                       dynamic_ncols=True)
            for x in bar:
                x = (x[0] if isinstance(x, (tuple, list)) else x).to(device)
                loss = train_step(model, optimizer, x)
                if averaged is not None:
                    averaged.update_parameters(model)
                total, count, step = total + loss * x.shape[0], count + x.shape[0], step + 1
                bar.set_postfix(nll=f"{total / count:.2f}")
                if max_steps is not None and step >= max_steps:
                    break
            bar.close()
            valid_nll = mean_nll(evaluated, valid_loader)
            record = {"epoch": epoch, "train_nll": total / max(count, 1), "valid_nll": valid_nll,
                      "seconds": time.perf_counter() - start}
            history.append(record)
            improved = valid_nll < best
            if improved:
                best, bad_epochs = valid_nll, 0
                save_atomic({**model_state(evaluated), "epoch": epoch, "valid_nll": valid_nll, "config": config},
                            out_dir / BEST)
            else:
                bad_epochs += 1
            save_atomic({**model_state(model), "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step,
                         "history": history, "best_valid": best, "bad_epochs": bad_epochs,
                         "rng": _rng_state(train_loader), "config": config, "wall_seconds": wall_clock(),
                         **({} if averaged is None else {"ema": averaged.state_dict()})}, out_dir / LAST)
            saved_epoch = epoch
            log(f"epoch {epoch:3d}  train NLL {record['train_nll']:8.2f}  valid NLL {valid_nll:8.2f} nats"
                f"{'  (best)' if improved else ''}  [{record['seconds']:.1f} s]")
            if bad_epochs >= patience:
                log(f"early stopping: no improvement of the validation NLL for {patience} epochs")
    except KeyboardInterrupt:
        if saved_epoch is None:  # say only what is on disk: before the first epoch ends, nothing is
            log(f"\ninterrupted during epoch {epoch}, before the first checkpoint: nothing of this run was "
                f"saved in {out_dir}; run the same command again to start it anew")
        else:
            log(f"\ninterrupted during epoch {epoch}; {out_dir / LAST} holds the state after epoch {saved_epoch}: "
                "rerun with --resume to continue")
        raise

    if (out_dir / BEST).exists():
        load_model_state(model, load_checkpoint(out_dir / BEST, map_location=device))
    model.eval()
    return history


# ---------------------------------------------------------------------------
# Evaluation and baselines
# ---------------------------------------------------------------------------

def evaluate(model, loader, impl="submission", progress=False):
    """Test NLL of ``model`` over ``loader`` with ``impl``'s ``autoregressive.evaluate_nll``.

    Args:
        model: a trained model (already on its device).
        loader: batches in the model's input format.
        impl: whose ``evaluate_nll`` to call, one of ``src.models.IMPLS`` (``"submission"``: yours).
        progress: show a progress bar of the batches (and the time left).

    Returns:
        ``{"nll": float nats per example, "bits_per_dim": float}``.
    """
    from tqdm.auto import tqdm

    from .models import load_impl

    model.eval()
    if progress:  # counts the batches evaluate_nll takes from the loader
        loader = tqdm(loader, desc="evaluating", unit="batch", leave=False, dynamic_ncols=True)
    result = load_impl(impl).autoregressive.evaluate_nll(model, loader)
    return {"nll": float(result["nll"]), "bits_per_dim": float(result["bits_per_dim"])}


def bits_per_dim(nll, num_dims):
    """nats per example -> bits per dimension."""
    return nll / (num_dims * math.log(2.0))


def independent_pixel_baseline(train_x, test_x, num_levels=2, alpha=1.0):
    """NLL of the model in which every pixel is independent, fit on ``train_x``.

    Args:
        train_x, test_x: integer-valued tensors ``(N, C, H, W)`` (any dtype) with
            values in ``{0..K-1}``, K = ``num_levels``.
        alpha: add-``alpha`` (Laplace) smoothing of the per-pixel counts, so that
            a value never seen in training does not get probability 0.

    Returns:
        ``{"nll", "bits_per_dim"}`` of ``test_x``, nats per example.
    """
    # In pieces of 1000 images: an int64 one-hot copy of a whole split would be 8 K times its uint8 size
    # (630 MB for 50 000 binarised images), more than the rest of a laptop run.
    levels = torch.arange(num_levels)
    counts = torch.zeros(*train_x.shape[1:], num_levels, dtype=torch.float64)  # (C, H, W, K)
    for part in train_x.split(1000):
        counts += (part.long().unsqueeze(-1) == levels).sum(dim=0)
    counts += alpha
    log_p = (counts / counts.sum(dim=-1, keepdim=True)).log().reshape(-1, num_levels).t()  # (K, C*H*W)
    ll = torch.cat([log_p.gather(0, part.long().reshape(len(part), -1)).sum(dim=1)  # (n,) log p(x) per image
                    for part in test_x.split(1000)])
    nll = -ll.mean().item()
    return {"nll": nll, "bits_per_dim": bits_per_dim(nll, test_x[0].numel())}


def uniform_baseline(num_dims, num_levels=2):
    """NLL of the uniform distribution: ``num_dims * ln K`` nats, ``log2 K`` bits/dim."""
    nll = num_dims * math.log(num_levels)
    return {"nll": nll, "bits_per_dim": bits_per_dim(nll, num_dims)}
