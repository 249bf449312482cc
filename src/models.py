"""Loading your implementation (or the reference) and building the models of the problem set.

Your code lives in ``submission/`` as three top-level modules, ``autoregressive``,
``made`` and ``pixelcnn`` (they may import each other, e.g. ``import
autoregressive`` inside ``made.py``).  A reference implementation, where a copy has
one, has the same module names.  :func:`load_impl` imports one of the two folders;
a process only ever holds **one** of them, so the two can never be mixed (asking
for the other one raises :class:`ImplConflictError`: start a new process).

Data formats (MNIST is 28 x 28, D = 784)
----------------------------------------
============== =============================== ==========================================
model name     batch from ``src.data``         model input (``adapt_batch``)
============== =============================== ==========================================
made           float32 (B, 1, 28, 28) in {0,1} float32 (B, 784) in {0., 1.}
pixelcnn       float32 (B, 1, 28, 28) in {0,1} int64 (B, 1, 28, 28) in {0, 1}
pixelcnn_color int64 (B, 3, 28, 28) in {0..K-1} int64 (B, 3, 28, 28) in {0..K-1}
============== =============================== ==========================================

Every model has ``log_prob(x) -> (B,)`` (nats, summed over the dimensions of one
example); :func:`sample_images` draws samples and returns them as images.

This module imports neither torchvision nor matplotlib.
"""
import contextlib
import importlib
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
#: the implementation folders this copy may load (``impl``): ``submission`` is yours
IMPLS = ("submission",)
# BEGIN STAFF ONLY (the students' copy has one implementation)
IMPLS += ("solution",)  # the reference
# END STAFF ONLY
MODULE_NAMES = ("autoregressive", "made", "pixelcnn")
MODEL_NAMES = ("made", "pixelcnn", "pixelcnn_color")
IMAGE_SHAPE = (28, 28)

_loaded = {}  # impl name -> namespace of its modules (at most one entry)


class ImplConflictError(RuntimeError):
    """Raised when a process asks for the modules of two implementation folders (see ``IMPLS``)."""


def load_impl(impl="submission"):
    """Import the modules ``autoregressive``, ``made``, ``pixelcnn`` of one implementation.

    Args:
        impl: one of ``IMPLS``: ``"submission"`` is your code, ``submission/``.

    Returns:
        ``types.SimpleNamespace`` with attributes ``autoregressive``, ``made``,
        ``pixelcnn`` (the modules), ``name`` (``impl``) and ``folder`` (a Path).
        Calling it again with the same ``impl`` returns the same modules.

    Raises:
        ValueError: unknown ``impl``.
        ImplConflictError: this process already imported the other folder's
            modules (under the same top-level names); use a new process.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl in _loaded:
        return _loaded[impl]
    folder = ROOT / impl
    if _loaded:
        other = next(iter(_loaded))
        raise ImplConflictError(f"this process already loaded {other}/; cannot also load {impl}/ (run a new process)")
    # The modules import each other by their top-level names: whatever is in
    # sys.modules under those names must come from `folder`, or nowhere yet.
    for name in MODULE_NAMES:
        module = sys.modules.get(name)
        if module is not None:
            where = Path(getattr(module, "__file__", "") or "").resolve().parent
            if where != folder:
                raise ImplConflictError(
                    f"a module named {name!r} from {where} is already imported; cannot load {impl}/ "
                    "(run a new process)"
                )
    folder_str = str(folder)
    if folder_str in sys.path:
        sys.path.remove(folder_str)
    sys.path.insert(0, folder_str)
    importlib.invalidate_caches()
    modules = {name: importlib.import_module(name) for name in MODULE_NAMES}
    namespace = types.SimpleNamespace(name=impl, folder=folder, **modules)
    _loaded[impl] = namespace
    return namespace


# ---------------------------------------------------------------------------
# Building models
# ---------------------------------------------------------------------------

#: Hyper-parameters each model accepts, with their defaults (the small CPU models).
DEFAULT_HPARAMS = {
    "made": {"hidden_sizes": (500,), "num_masks": 1, "natural_ordering": True, "seed": 0},
    "pixelcnn": {"channels": 64, "num_blocks": 7, "kernel_size": 7},
    "pixelcnn_color": {"channels": 60, "num_blocks": 7, "kernel_size": 7, "levels": 4},
}


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def build_model(name, impl="submission", **hparams):
    """Build one of the problem set's models from ``impl``'s code.

    Args:
        name: ``"made"`` (Bernoulli MADE on flattened binarised MNIST),
            ``"pixelcnn"`` (binarised MNIST, 1 channel, 2 levels) or
            ``"pixelcnn_color"`` (coloured MNIST, 3 channels, ``levels`` levels).
        impl: whose code, one of ``IMPLS`` (see :func:`load_impl`).
        **hparams: the model's hyper-parameters (missing ones take the values of
            ``DEFAULT_HPARAMS[name]``):

            * made: ``hidden_sizes`` (sequence of ints), ``num_masks`` (int),
              ``natural_ordering`` (bool), ``seed`` (int);
            * pixelcnn: ``channels`` (even int), ``num_blocks``, ``kernel_size`` (odd);
            * pixelcnn_color: the same plus ``levels`` (K, intensities per colour).

    Returns:
        the ``nn.Module`` (on the CPU, float32).

    Raises:
        ValueError: unknown model name or hyper-parameter, or a bad value.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
    unknown = sorted(set(hparams) - set(DEFAULT_HPARAMS[name]))
    if unknown:
        raise ValueError(f"unknown hyper-parameter(s) for {name}: {', '.join(unknown)}")
    hp = {**DEFAULT_HPARAMS[name], **hparams}
    if name == "made":
        hidden = list(hp["hidden_sizes"])
        for h in hidden:
            _check_int("every hidden size", h, 1)
        _check_int("num_masks", hp["num_masks"], 1)
        _check_int("seed", hp["seed"], 0)
        d = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
        made = load_impl(impl).made
        return made.MADE(d, hidden, d, num_masks=hp["num_masks"],
                         natural_ordering=bool(hp["natural_ordering"]), seed=hp["seed"])
    in_channels, levels = (1, 2) if name == "pixelcnn" else (3, hp["levels"])
    _check_int("levels", levels, 2)
    _check_int("num_blocks", hp["num_blocks"], 0)
    _check_int("kernel_size", hp["kernel_size"], 3)
    if hp["kernel_size"] % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {hp['kernel_size']}")
    _check_int("channels", hp["channels"], 2 * in_channels)
    if hp["channels"] % (2 * in_channels) != 0:
        raise ValueError(f"channels must be a multiple of {2 * in_channels} for {name}, got {hp['channels']}")
    pixelcnn = load_impl(impl).pixelcnn
    return pixelcnn.PixelCNN(in_channels=in_channels, num_levels=levels, channels=hp["channels"],
                             num_blocks=hp["num_blocks"], kernel_size=hp["kernel_size"])


def model_kind(model):
    """``"made"`` for a MADE-like model (has ``nin``), ``"pixelcnn"`` otherwise."""
    return "made" if hasattr(model, "nin") else "pixelcnn"


# ---------------------------------------------------------------------------
# Adapters between the data module's batches and the models
# ---------------------------------------------------------------------------

def adapt_batch(name, x):
    """Map a batch of images from ``src.data`` to ``name``'s input format.

    Args:
        name: a model name (see the table in the module docstring).
        x: float32 ``(B, 1, 28, 28)`` in {0, 1} (binarised MNIST) or int64
            ``(B, 3, 28, 28)`` (coloured MNIST).

    Returns:
        ``made``: float32 ``(B, 784)``; ``pixelcnn`` / ``pixelcnn_color``:
        int64 ``(B, C, 28, 28)``.
    """
    if name == "made":
        return x.reshape(x.shape[0], -1).float()
    if name in ("pixelcnn", "pixelcnn_color"):
        return x.long()
    raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")


class AdaptedLoader:
    """Wrap an iterable of batches (tensors or ``(x, y, ...)`` tuples) so that it
    yields ``adapt_batch(name, x)`` tensors only; ``len()`` is passed through."""

    def __init__(self, loader, name):
        self.loader, self.name = loader, name

    def __iter__(self):
        for batch in self.loader:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            yield adapt_batch(self.name, x)

    def __len__(self):
        return len(self.loader)


def num_levels(model):
    """Number of intensity levels K of a model's pixels (2 for MADE)."""
    return getattr(model, "num_levels", 2)


@contextlib.contextmanager
def forward_progress(model, total, desc, enabled=True):
    """A tqdm bar (with the time left) that advances once per forward pass of ``model``.

    A forward hook on the model itself counts the calls, whatever the code that
    makes them, against ``total`` (e.g. D passes for sampling a MADE).
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="pass", leave=False, disable=not enabled, dynamic_ncols=True)

    def count(module, inputs, output):  # returns None: the output is left alone
        bar.update(1)

    handle = model.register_forward_hook(count)
    try:
        yield bar
    finally:
        handle.remove()
        bar.close()


def sampling_passes(model):
    """Forward passes that drawing one batch of samples takes: D for a MADE, H * W * C for a PixelCNN."""
    if model_kind(model) == "made":
        return model.nin
    return IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * getattr(model, "in_channels", 1)


@torch.no_grad()
def sample_images(model, n, generator=None, progress=False):
    """Draw ``n`` samples and return them as images for plotting.

    ``progress=True`` shows a progress bar of the forward passes (see :func:`forward_progress`).

    Returns:
        float32 tensor ``(n, C, 28, 28)`` with values in [0, 1] on the CPU
        (``C = 1`` for MADE and the binary PixelCNN, 3 for the colour one).
    """
    was_training = model.training
    model.eval()
    try:
        with forward_progress(model, sampling_passes(model), f"sampling {n}", enabled=progress):
            if model_kind(model) == "made":
                x = model.sample(n, generator=generator).float().view(n, 1, *IMAGE_SHAPE)
            else:
                x = model.sample(n, IMAGE_SHAPE, generator=generator).float() / (num_levels(model) - 1)
    finally:
        model.train(was_training)
    return x.cpu()
