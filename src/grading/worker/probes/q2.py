"""Probes for Question 2, made.py (worker side): MaskedLinear, degrees and masks (2a), MADE (2b), sampling (2c).

Every probe builds its inputs from fixed seeds, calls the student's code through
the documented API and returns what came back (plus bookkeeping such as object
identities, states and call counts) for the tests to judge; nothing here
decides a grade.

Isolation between the parts of Question 2 (as in q3.py).  ``MaskedLinear``,
``made_degrees`` and ``made_masks`` are 2a.  The probes of 2b and 2c run the
student's ``MADE`` with stand-ins for them (``standins_for_2a``): while such a
probe runs, ``made.MaskedLinear`` is a subclass of the student's class whose
``__init__``, ``set_mask`` and ``forward`` do what its docstring specifies, and
``made.made_degrees`` / ``made.made_masks`` build a valid MADE (each output
depends only on earlier variables of the ordering that the student's
``update_masks`` passes) with a simpler connectivity than the one 2a asks for.
A bug in 2a therefore cannot cost points in 2b or 2c, the probes do not hold an
answer to 2a, and what they run of the student's code is ``update_masks``,
``forward``, ``log_prob`` and ``sample``.

Conventions:

* a model's "state" is ``{"mask_index", "order", "masks"}`` of the mask set in
  use (``_snapshot``);
* inputs are float32 (the default dtype of a fresh ``MADE``, as in training), so
  the tests compare within float32 tolerances;
* MADE weights are installed from a seeded generator (``_install_weights``,
  through ``load_state_dict``), so that logits do not depend on the global RNG;
  the masks are those installed by the student's ``update_masks`` (2b), except
  in ``made_forward_loaded`` (seeded random 0/1 masks, so that the forward pass
  can be compared with the reference's) and in ``made_sample`` (2c), which loads
  a seeded mask set together with its ``order`` through ``load_state_dict``, as
  restoring a checkpoint does: the sampler is judged on a model whose masks and
  ordering agree, whatever ``update_masks`` does.
"""
import contextlib
import functools

import torch
import torch.nn as nn

from ...inputs import all_binary, seeded_generator
from ..timing import best_times
from .registry import probe


# -- stand-ins for 2a, used by the probes of 2b and 2c ------------------------------------
# They give a valid MADE (every output depends only on inputs earlier in the ordering) with
# deliberately simple connectivity that is NOT the one made_degrees/made_masks must build
# (copying them would fail 2a): hidden unit j of every layer has degree j mod (D-1) and sees
# only the units of its own degree in the layer below, and the outputs of the variable of
# degree d see only the hidden units of degree d-1.  The MADE is then a first-order Markov
# chain along its ordering, which is all that the tests of 2b and 2c rely on.

def _standin_made_degrees(order, hidden_sizes, generator=None):
    order = torch.as_tensor(order).long()
    nin = order.numel()
    position = torch.zeros(nin, dtype=torch.long)
    position[order] = torch.arange(nin)  # the contract's input degrees (its docstring: m0[order[i]] = i)
    return [position] + [torch.arange(width) % (nin - 1) for width in hidden_sizes]


def _standin_made_masks(degrees, k=1):
    masks = [(upper[:, None] == lower[None, :]).float() for lower, upper in zip(degrees, degrees[1:])]
    modelled = torch.cat([degrees[0]] * k)  # output o models input o % D
    masks.append((modelled[:, None] - 1 == degrees[-1][None, :]).float())
    return masks


def _standin_linear_class(base):
    """A subclass of the student's MaskedLinear with the behaviour its docstring specifies."""

    class MaskedLinear(base):
        def __init__(self, in_features, out_features, bias=True):
            nn.Linear.__init__(self, in_features, out_features, bias)
            self.register_buffer("mask", torch.ones_like(self.weight, requires_grad=False))

        def set_mask(self, mask):
            mask = torch.as_tensor(mask).to(self.mask.dtype)
            if mask.shape != self.mask.shape:
                raise ValueError(f"set_mask: got a mask of shape {tuple(mask.shape)} for a MaskedLinear whose "
                                 f"mask has shape {tuple(self.mask.shape)}")
            self.mask[...] = mask

        def forward(self, x):
            return x @ (self.weight * self.mask).t() + (0.0 if self.bias is None else self.bias)

    return MaskedLinear


@contextlib.contextmanager
def standins_for_2a(made):
    """While active, ``made``'s MaskedLinear, made_degrees and made_masks are the stand-ins."""
    names = ("MaskedLinear", "made_degrees", "made_masks")
    saved = {name: made.__dict__.get(name) for name in names}
    base = saved["MaskedLinear"]
    if not (isinstance(base, type) and issubclass(base, nn.Linear)):
        base = nn.Linear
    made.MaskedLinear = _standin_linear_class(base)
    made.made_degrees, made.made_masks = _standin_made_degrees, _standin_made_masks
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                made.__dict__.pop(name, None)
            else:
                setattr(made, name, value)


def _with_standins_for_2a(func):
    """Run a probe of 2b/2c with the stand-ins for 2a (and the global RNG seeded, for reproducibility)."""
    @functools.wraps(func)
    def wrapper(submission, **kwargs):
        made = submission.made
        torch.manual_seed(0)
        with standins_for_2a(made):
            return func(submission, **kwargs)

    return wrapper


def _describe(value):
    """A tensor as it came back, anything else as a short description (plain data)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return f"<{type(value).__module__}.{type(value).__qualname__}: {value!r}"[:200] + ">"


def _int_or_describe(value):
    try:
        return int(value)
    except Exception:  # noqa: BLE001 - whatever the student stored
        return _describe(value)


def _masked_layers(model, made):
    return [(name, layer) for name, layer in model.net.named_children() if isinstance(layer, made.MaskedLinear)]


def _snapshot(model, made):
    return {
        "mask_index": _int_or_describe(getattr(model, "mask_index", None)),
        "order": _describe(getattr(model, "order", None)),
        "masks": [_describe(getattr(layer, "mask", None)) for _, layer in _masked_layers(model, made)],
    }


def _install_weights(model, made, seed, scale):
    """Seeded weights ``N(0, scale^2 / fan_in)`` and biases ``N(0, (0.1 scale)^2)``, via load_state_dict."""
    g = seeded_generator(seed)
    state = model.state_dict()
    for name, layer in _masked_layers(model, made):
        out_f, in_f = layer.weight.shape
        state[f"net.{name}.weight"] = torch.randn(out_f, in_f, generator=g) * (scale / in_f ** 0.5)
        state[f"net.{name}.bias"] = torch.randn(out_f, generator=g) * (0.1 * scale)
    model.load_state_dict(state)


class _Counter:
    """Replaces ``obj.forward`` by a counting wrapper (an instance attribute, so ``obj(x)`` counts too)."""

    def __init__(self, obj):
        self.obj, self.calls = obj, 0
        original = obj.forward

        def counting(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        obj.forward = counting

    def remove(self):
        del self.obj.forward


# ---------------------------------------------------------------------------
# 2a: MaskedLinear, made_degrees, made_masks
# ---------------------------------------------------------------------------

def _as_mask_kind(mask, kind):
    if kind == "float":
        return mask.float()
    if kind == "double":
        return mask.double()
    if kind == "bool":
        return mask.bool()
    if kind == "list":
        return mask.long().tolist()
    if kind == "numpy":
        return mask.float().numpy()
    raise ValueError(kind)


@probe("made")
def masked_linear(submission, *, seed, in_features, out_features, batch, bias=True, double=False,
                  mask_kind="float", masks=1):
    """A ``MaskedLinear`` with seeded weights and ``masks`` successive random masks set by ``set_mask``.

    Returns the mask's registration (buffer, parameter, state_dict), the initial
    mask, and after the last ``set_mask``: the mask (and whether it is the same
    tensor object), the forward pass on a seeded batch and the gradients of
    ``sum(out * cotangent)`` (and whether that forward changed the weight
    itself); and the mask of a fresh layer that loaded the state_dict.
    """
    made = submission.made
    g = seeded_generator(seed)
    layer = made.MaskedLinear(in_features, out_features, bias=bias)
    mask0 = getattr(layer, "mask", None)
    result = {
        "is_buffer": "mask" in dict(layer.named_buffers()),
        "is_parameter": "mask" in dict(layer.named_parameters()),
        "in_state_dict": "mask" in layer.state_dict(),
        "initial_mask": _describe(mask0),
    }
    weight = torch.randn(out_features, in_features, generator=g) / in_features ** 0.5
    bias_value = torch.randn(out_features, generator=g) * 0.1
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias:
            layer.bias.copy_(bias_value)
    if double:
        layer.double()
        mask0 = getattr(layer, "mask", None)
        result["mask_after_double"] = _describe(mask0)
    dtype = torch.float64 if double else torch.float32
    for _ in range(masks):
        mask = (torch.rand(out_features, in_features, generator=g) < 0.5).float()
        mask[0, 0], mask[-1, -1] = 0.0, 1.0  # never all ones, never all zeros
        layer.set_mask(_as_mask_kind(mask, mask_kind))
    result["mask_set"] = mask
    result["same_object"] = getattr(layer, "mask", None) is mask0
    result["mask_after_set"] = _describe(getattr(layer, "mask", None))
    x = torch.randn(batch, in_features, generator=g, dtype=torch.float64).to(dtype)
    cotangent = torch.randn(batch, out_features, generator=g, dtype=torch.float64).to(dtype)
    weight_before = layer.weight.detach().clone()
    out = layer(x)
    result["out"] = _describe(out)
    try:
        (out * cotangent).sum().backward()
    except RuntimeError as error:  # e.g. no graph back to the weight (self.weight.data): judged by the test
        result["backward_error"] = f"RuntimeError: {error}"[:300]
    # forward must leave the weight as it is (``self.weight.data *= self.mask`` loses the masked weights)
    result["forward_changed_weight"] = not torch.equal(layer.weight.detach(), weight_before)
    result["weight_grad"] = _describe(layer.weight.grad)
    if bias:
        result["bias_grad"] = _describe(layer.bias.grad)
    fresh = made.MaskedLinear(in_features, out_features, bias=bias).to(dtype)
    fresh.load_state_dict(layer.state_dict())
    result["reloaded_mask"] = _describe(getattr(fresh, "mask", None))
    return result


@probe("made")
def masked_linear_timing(submission, *, in_features, out_features, batch, repeats=7, inner=5):
    """Seconds per forward pass of a ``MaskedLinear`` and of a plain ``nn.Linear`` of the same shape
    (``timing.best_times``: the best of interleaved repeats)."""
    made = submission.made
    g = seeded_generator(0)
    layer = made.MaskedLinear(in_features, out_features)
    twin = nn.Linear(in_features, out_features)
    layer.set_mask((torch.rand(out_features, in_features, generator=g) < 0.5).float())
    x = torch.randn(batch, in_features, generator=g)
    with torch.no_grad():
        layer(x), twin(x)  # warm up
        return best_times({"student_s": lambda: layer(x), "plain_s": lambda: twin(x)}, repeats, inner)


@probe("made")
def made_degrees(submission, *, order, hidden_sizes, seed, other_seed=None, none_generator=False):
    """``made_degrees(order, hidden_sizes, Generator(seed))``, twice (reproducibility), and optionally
    with another seed and with ``generator=None``."""
    made = submission.made

    def call(generator):
        degrees = made.made_degrees(torch.tensor(order, dtype=torch.long), list(hidden_sizes), generator)
        if not isinstance(degrees, (list, tuple)):
            return _describe(degrees)
        return [_describe(d) for d in degrees]

    result = {"degrees": call(seeded_generator(seed)), "again": call(seeded_generator(seed))}
    if other_seed is not None:
        result["other"] = call(seeded_generator(other_seed))
    if none_generator:
        result["none"] = call(None)
    return result


@probe("made")
def made_masks(submission, *, degrees, k=1):
    """``made_masks`` on the degrees given by the test (lists of ints, input degrees first)."""
    made = submission.made
    masks = made.made_masks([torch.tensor(d, dtype=torch.long) for d in degrees], k)
    if not isinstance(masks, (list, tuple)):
        return _describe(masks)
    return [_describe(m) for m in masks]


# ---------------------------------------------------------------------------
# 2b: MADE forward, update_masks, log_prob
# ---------------------------------------------------------------------------

def _dependence(model, x):
    """``(nout, D)``: sum over the batch of |d logits[b, o] / d x[b, j]|, by autograd."""
    jacobian = torch.autograd.functional.jacobian(lambda inp: model(inp).sum(0), x)  # (nout, B, D)
    return jacobian.abs().sum(1)


@probe("made")
@_with_standins_for_2a
def made_structure(submission, *, nin, hidden_sizes, nout, num_masks, natural_ordering, seed, n_sets,
                   batch=8, x_seed=0, twin=False):
    """A fresh ``MADE``; for mask set 0 and after each of ``n_sets - 1`` calls of ``update_masks``:
    the state (mask_index, order, masks), the output's shape and dtype, and the dependence of every
    output on every input (summed |Jacobian| over a random batch).  With ``twin``: the masks of a
    second model built with the same arguments."""
    made = submission.made
    model = made.MADE(nin, hidden_sizes, nout, num_masks=num_masks, natural_ordering=natural_ordering, seed=seed)
    _install_weights(model, made, seed + 7, 1.0)
    x = torch.rand(batch, nin, generator=seeded_generator(x_seed))
    sets = []
    for i in range(n_sets):
        if i:
            model.update_masks()
        entry = _snapshot(model, made)
        out = model(x)
        entry["out_shape"] = list(out.shape) if isinstance(out, torch.Tensor) else _describe(out)
        entry["out_dtype"] = str(out.dtype) if isinstance(out, torch.Tensor) else ""
        entry["dependence"] = _dependence(model, x)
        sets.append(entry)
    result = {"sets": sets, "order_in_state_dict": "order" in model.state_dict()}
    if twin:
        other = made.MADE(nin, hidden_sizes, nout, num_masks=num_masks, natural_ordering=natural_ordering,
                          seed=seed)
        result["twin"] = _snapshot(other, made)
    return result


@probe("made")
@_with_standins_for_2a
def made_forward_loaded(submission, *, nin, hidden_sizes, nout, seed, batch):
    """Forward pass with seeded weights (load_state_dict) and seeded random 0/1 masks (``set_mask``),
    so that the logits are a deterministic function of the arguments, to compare with the reference."""
    made = submission.made
    model = made.MADE(nin, hidden_sizes, nout, num_masks=1, natural_ordering=True, seed=seed)
    _install_weights(model, made, seed, 1.0)
    g = seeded_generator(seed + 1)
    for _, layer in _masked_layers(model, made):
        layer.set_mask((torch.rand(layer.weight.shape, generator=g) < 0.6).float())
    x = torch.randint(0, 2, (batch, nin), generator=g).float()
    return {"logits": _describe(model(x))}


@probe("made")
@_with_standins_for_2a
def made_log_prob(submission, *, nin, hidden_sizes, num_masks, natural_ordering, seed, weight_scale=1.0,
                  batch=None, x_seed=0, backward=False, advance=0):
    """``log_prob`` of a fresh ``MADE`` (``nout = nin``, seeded weights) on all ``2**nin`` binary vectors
    (``batch=None``) or on a random binary batch.

    Before the call, the probe runs ``forward`` under each of the ``num_masks`` mask sets (``forward``,
    then ``update_masks``, ``num_masks`` times) and returns those logits, so that the test can compute
    the ensemble from the model's own forward pass; it returns the state before and after ``log_prob``.
    ``backward``: also the gradient norms of ``sum(log_prob)`` with respect to the weights.
    ``advance``: calls of ``update_masks`` right after construction (which mask set is in use).
    """
    made = submission.made
    model = made.MADE(nin, hidden_sizes, nin, num_masks=num_masks, natural_ordering=natural_ordering, seed=seed)
    _install_weights(model, made, seed, weight_scale)
    for _ in range(advance):
        model.update_masks()
    if batch is None:
        x = all_binary(nin)
    else:
        x = torch.randint(0, 2, (batch, nin), generator=seeded_generator(x_seed)).float()
    per_set = []
    with torch.no_grad():
        for _ in range(num_masks):
            per_set.append({"mask_index": _int_or_describe(model.mask_index), "logits": _describe(model(x))})
            model.update_masks()
    before = _snapshot(model, made)
    log_p = model.log_prob(x)
    result = {"x": x, "per_set": per_set, "before": before, "after": _snapshot(model, made),
              "log_prob": _describe(log_p)}
    if backward:
        model.zero_grad()
        if not (isinstance(log_p, torch.Tensor) and log_p.requires_grad):
            result["grad_norms"] = "log_prob returned a tensor that does not require grad"
        else:
            try:
                log_p.sum().backward()
            except RuntimeError as error:  # e.g. a mask changed in place after the forward pass
                result["grad_norms"] = f"sum(log_prob).backward() raised RuntimeError: {error}"[:400]
            else:
                result["grad_norms"] = [0.0 if layer.weight.grad is None else float(layer.weight.grad.norm())
                                        for _, layer in _masked_layers(model, made)]
    return result


@probe("made")
@_with_standins_for_2a
def made_forward_timing(submission, *, nin, hidden_sizes, batch, repeats=7, inner=3):
    """Seconds per ``MADE.forward`` and per pass through the same model's layers called one after the
    other by the probe (``timing.best_times``): the ratio measures the cost of the student's
    ``forward`` itself, whatever their ``MaskedLinear`` costs."""
    made = submission.made
    model = made.MADE(nin, hidden_sizes, nin, num_masks=1, natural_ordering=True, seed=0)
    layers = list(model.net)
    x = torch.rand(batch, nin, generator=seeded_generator(0))

    def chain():
        h = x
        for layer in layers:
            h = layer(h)
        return h

    with torch.no_grad():
        model(x), chain()  # warm up
        return best_times({"student_s": lambda: model(x), "layers_s": chain}, repeats, inner)


# ---------------------------------------------------------------------------
# 2c: sampling
# ---------------------------------------------------------------------------

def _install_mask_set(model, made, seed, natural_ordering, weight_scale):
    """Seeded weights and a mask set of the stand-ins for a seeded ordering, ``order`` included,
    through ``load_state_dict``: what restoring a checkpoint does."""
    _install_weights(model, made, seed, weight_scale)
    g = seeded_generator(seed + 1)
    order = torch.arange(model.nin) if natural_ordering else torch.randperm(model.nin, generator=g)
    layers = _masked_layers(model, made)
    degrees = _standin_made_degrees(order, [layer.weight.shape[0] for _, layer in layers[:-1]], g)
    state = model.state_dict()
    for (name, _), mask in zip(layers, _standin_made_masks(degrees, model.nout // model.nin)):
        state[f"net.{name}.mask"] = mask
    state["order"] = order
    model.load_state_dict(state)


def _next_mask_index(self):
    """Stand-in for ``update_masks`` in 2c when the student's raises: ``_install_mask_set`` does the rest."""
    self.mask_index = (self.mask_index + 1) % self.num_masks


def _model_for_sampling(made, nin, hidden_sizes, num_masks, natural_ordering, seed, advance):
    """A ``MADE`` built (and advanced) with the student's ``update_masks``, or, if that raises (it is
    graded in 2b), with ``_next_mask_index`` in its place, so that 2c can still grade ``sample``."""
    kwargs = dict(num_masks=num_masks, natural_ordering=natural_ordering, seed=seed)
    try:
        model = made.MADE(nin, hidden_sizes, nin, **kwargs)
        for _ in range(advance):
            model.update_masks()
        return model, True
    except Exception:  # noqa: BLE001 - the student's update_masks, graded in 2b
        original = made.MADE.__dict__.get("update_masks")
        made.MADE.update_masks = _next_mask_index
        try:
            model = made.MADE(nin, hidden_sizes, nin, **kwargs)
            for _ in range(advance):
                model.update_masks()
        finally:
            if original is None:
                del made.MADE.update_masks
            else:
                made.MADE.update_masks = original
        return model, False


@probe("made")
@_with_standins_for_2a
def made_sample(submission, *, nin, hidden_sizes, natural_ordering, seed, weight_scale, n, gen_seed,
                num_masks=1, advance=0, n_repeat=64, n_none=0):
    """``sample`` of a ``MADE`` (``nout = nin``) built with ``num_masks`` mask sets and advanced by
    ``advance`` calls of ``update_masks``, into which the probe then loads seeded weights and a valid
    mask set with its ``order`` (``_install_mask_set``), so that the sampler is judged on a model
    whose masks and ordering agree whatever the student's ``update_masks`` does (or even if it raises:
    ``_model_for_sampling``).

    Returns the ``n`` samples drawn with ``Generator(gen_seed)`` and the number of forward passes they
    took (calls of ``model.forward``, or of the first ``MaskedLinear`` if ``sample`` runs ``self.net``
    itself), ``n_repeat`` samples drawn twice with one seed, ``n_none`` samples with ``generator=None``,
    the state before and after sampling, and the model's own logits on all ``2**nin`` binary vectors
    (computed before sampling, with the mask set in use).
    """
    made = submission.made
    model, own_update_masks = _model_for_sampling(made, nin, hidden_sizes, num_masks, natural_ordering, seed,
                                                  advance)
    _install_mask_set(model, made, seed, natural_ordering, weight_scale)
    before = _snapshot(model, made)
    all_x = all_binary(nin)
    with torch.no_grad():
        logits = _describe(model(all_x))
    counters = [_Counter(model), _Counter(_masked_layers(model, made)[0][1])]
    try:
        samples = model.sample(n, generator=seeded_generator(gen_seed))
        calls = [c.calls for c in counters]
    finally:
        for counter in counters:
            counter.remove()
    result = {"samples": _describe(samples), "forward_calls": calls[0] or calls[1], "before": before,
              "own_update_masks": own_update_masks}
    if n_repeat:
        result["repeat"] = [_describe(model.sample(n_repeat, generator=seeded_generator(gen_seed + 1))) for _ in range(2)]
    if n_none:
        result["none"] = _describe(model.sample(n_none))
    result.update(after=_snapshot(model, made), all_x=all_x, logits=logits)
    return result
