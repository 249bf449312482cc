"""The reference does what its docstrings say: an inventory from each promise to the test that checks it.

``INVENTORY`` lists, for every property that a docstring of ``solution/*.py``
promises, the file, the function (``""`` for the module docstring), the promise
quoted (whitespace aside, it must occur in that docstring) and the test that checks
it on the reference: a test of this file, or ``test_reference::name`` for one of
``staff_tests/test_reference.py``.  ``test_inventory_quotes_the_docstrings`` fails
when a docstring is edited until the inventory follows, and when an entry names a
test that does not exist.  Devices: only the CPU is checked here.
"""
import itertools
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import test_reference
from test_reference import ALL_4BIT, ar, binary_codes, chi_square_p_value, made, pixelcnn, randomise

MODULES = {"autoregressive.py": ar, "made.py": made, "pixelcnn.py": pixelcnn}

INVENTORY = [
    # autoregressive.py
    ("autoregressive.py", "", "Log-likelihoods are natural logarithms (nats), **summed** over every dimension of one "
     "example, so a batch gives one number per example: shape ``(B,)``.", "test_log_likelihoods_sum_each_example"),
    ("autoregressive.py", "", "Every ``sample(n, generator=None)`` draws all its randomness from ``generator``",
     "test_samplers_draw_from_the_generator"),
    ("autoregressive.py", "bernoulli_log_likelihood", "tensor of shape ``(B, ...)`` with values in {0, 1} (any dtype).",
     "test_log_likelihoods_sum_each_example"),
    ("autoregressive.py", "bernoulli_log_likelihood", "``sum_d log p(x_d)`` for each example, in nats.",
     "test_log_likelihoods_sum_each_example"),
    ("autoregressive.py", "bernoulli_log_likelihood", "Must be finite for logits as large as ``+-1e4``",
     "test_reference::test_likelihoods_are_stable_for_extreme_logits"),
    ("autoregressive.py", "categorical_log_likelihood", "(the class dimension is dimension 1, as in "
     "``F.cross_entropy``)", "test_log_likelihoods_sum_each_example"),
    ("autoregressive.py", "categorical_log_likelihood", "Must be finite for logits as large as ``+-1e4``.",
     "test_reference::test_likelihoods_are_stable_for_extreme_logits"),
    ("autoregressive.py", "nll_to_bits_per_dim", "the same type and shape as ``nll``: ``nll / (num_dims * ln 2)``.",
     "test_bits_per_dim_keeps_type_and_shape"),
    ("autoregressive.py", "DiscreteAR2D", "With ``order=(0, 1)`` it models ``p(x0) p(x1 | x0)``; with "
     "``order=(1, 0)`` it models ``p(x1) p(x0 | x1)``.", "test_discrete_ar2d_factorises_in_its_order"),
    ("autoregressive.py", "DiscreteAR2D", "``second_logits``, shape ``(K, K)``: row ``v`` holds the logits of the "
     "variable generated second, given that the first one equals ``v``.", "test_discrete_ar2d_factorises_in_its_order"),
    ("autoregressive.py", "DiscreteAR2D.log_prob", "float tensor of shape ``(B,)``: ``log p(x)`` in nats.",
     "test_discrete_ar2d_factorises_in_its_order"),
    ("autoregressive.py", "DiscreteAR2D.sample", "Draw ``n`` samples by ancestral sampling in the model's order.",
     "test_reference::test_discrete_ar2d_normalises_and_samples_its_own_distribution"),
    ("autoregressive.py", "DiscreteAR2D.sample", "int64 tensor of shape ``(n, 2)`` with values in "
     "``{0, ..., K-1}``.", "test_samplers_draw_from_the_generator"),
    ("autoregressive.py", "FVSBN", "Only the strictly lower triangle of ``weight`` (``j < i``) is used: entries on "
     "and above the diagonal must have no effect on anything.", "test_fvsbn_ignores_the_diagonal_and_above"),
    ("autoregressive.py", "FVSBN", "sigmoid(bias[i] + sum_{j < i} weight[i, j] * x[order[j]]).",
     "test_fvsbn_conditionals_follow_the_formula"),
    ("autoregressive.py", "FVSBN", "weight: parameter of shape ``(D, D)``, indexed by positions in the ordering.",
     "test_fvsbn_conditionals_follow_the_formula"),
    ("autoregressive.py", "FVSBN.conditional_logits", "entry ``[b, d]`` is the logit of ``p(x[b, d] = 1 | the "
     "variables before d in the ordering)``.", "test_fvsbn_conditionals_follow_the_formula"),
    ("autoregressive.py", "FVSBN.conditional_logits", "entry ``[b, d]`` is the logit of ``p(x[b, d] = 1 | the "
     "variables before d in the ordering)``.",
     "test_reference::test_fvsbn_normalises_is_autoregressive_and_samples_its_own_distribution"),
    ("autoregressive.py", "FVSBN.log_prob", "float tensor ``(B, D)`` in {0, 1} -> ``(B,)`` nats.",
     "test_fvsbn_conditionals_follow_the_formula"),
    ("autoregressive.py", "FVSBN.sample", "Draw ``n`` samples, one variable at a time in the model's order.",
     "test_reference::test_fvsbn_normalises_is_autoregressive_and_samples_its_own_distribution"),
    ("autoregressive.py", "FVSBN.sample", "float tensor of shape ``(n, D)`` with values in {0., 1.}.",
     "test_samplers_draw_from_the_generator"),
    ("autoregressive.py", "evaluate_nll", "a batch is either a tensor ``x`` or a tuple/list whose first element is "
     "``x`` (labels are ignored).", "test_evaluate_nll_averages_over_all_examples"),
    ("autoregressive.py", "evaluate_nll", "The last batch may be smaller than the others.",
     "test_evaluate_nll_averages_over_all_examples"),
    ("autoregressive.py", "evaluate_nll", "Batches are moved to the device of the model's parameters.",
     "test_evaluate_nll_averages_over_all_examples"),
    ("autoregressive.py", "evaluate_nll", "``\"nll\"``: the mean over **all examples** of ``-log p(x)``, in nats;",
     "test_evaluate_nll_averages_over_all_examples"),
    ("autoregressive.py", "evaluate_nll", "``\"bits_per_dim\"``: the same in bits per dimension, where the number of "
     "dimensions is that of one example (``x[0].numel()``).", "test_evaluate_nll_averages_over_all_examples"),
    ("autoregressive.py", "evaluate_nll", "dict with two Python floats:", "test_evaluate_nll_averages_over_all_examples"),
    # made.py
    ("made.py", "", "The degree of input ``d`` is its position in the ordering: ``m0[d] = i`` where "
     "``order[i] = d``; degrees run from 0 to D-1.", "test_reference::test_made_degrees_and_masks_follow_the_rules"),
    ("made.py", "", "Hidden degrees lie between the smallest degree of the layer below and ``D-2``",
     "test_made_degrees_are_drawn_from_the_generator"),
    ("made.py", "", "Output unit ``o`` models input ``d = o % D`` (parameter ``o // D`` of it, when ``nout = k * D``); "
     "it may depend on inputs of degree strictly below ``m0[d]``.",
     "test_reference::test_made_is_autoregressive_by_jacobian"),
    ("made.py", "MaskedLinear", "The mask is a buffer named ``mask`` of shape ``(out_features, in_features)``, "
     "float, initially all ones, so that it is saved in and loaded from the module's ``state_dict`` and moves with "
     "``.to(device)``.", "test_masked_linear_mask_is_a_buffer"),
    ("made.py", "MaskedLinear.set_mask", "Copy ``mask`` (any array-like of shape ``(out_features, in_features)`` "
     "with entries 0/1) into the ``mask`` buffer, in place.", "test_masked_linear_set_mask_and_forward"),
    ("made.py", "MaskedLinear.forward", "``(B, in_features) -> (B, out_features)``: ``x @ (mask * weight).T + bias``.",
     "test_masked_linear_set_mask_and_forward"),
    ("made.py", "made_degrees", "the input degrees ``m0`` of shape ``(D,)`` (``m0[order[i]] = i``)",
     "test_reference::test_made_degrees_and_masks_follow_the_rules"),
    ("made.py", "made_degrees", "drawn uniformly at random from ``{min(previous layer's degrees), ..., D-2}``.",
     "test_made_degrees_are_drawn_from_the_generator"),
    ("made.py", "made_degrees", "``torch.Generator`` for the random hidden degrees, or None.",
     "test_made_degrees_are_drawn_from_the_generator"),
    ("made.py", "made_masks", "hidden layer ``l`` gets shape ``(len(m_l), len(m_{l-1}))`` with entry 1 iff "
     "``m_l[out] >= m_{l-1}[in]``; the output layer gets shape ``(k * D, len(mL))`` with entry ``[o, j]`` equal to "
     "1 iff ``m0[o % D] > mL[j]``.", "test_made_masks_follow_the_degrees"),
    ("made.py", "MADE", "natural_ordering: if True every mask set uses ``order = arange(D)``; otherwise mask set "
     "``k`` uses a random permutation.", "test_made_update_masks_installs_set_k"),
    ("made.py", "MADE", "seed: mask set ``k`` is a deterministic function of ``(seed, k)``.",
     "test_made_update_masks_installs_set_k"),
    ("made.py", "MADE", "``order`` (int64 buffer ``(D,)``, the ordering of the mask set in use) and ``mask_index`` "
     "(int, which of the ``num_masks`` mask sets is in use).", "test_made_update_masks_installs_set_k"),
    ("made.py", "MADE.update_masks", "Install the next mask set: ``mask_index <- (mask_index + 1) % num_masks``.",
     "test_made_update_masks_installs_set_k"),
    ("made.py", "MADE.update_masks", "installing set ``k`` twice gives the same masks and ``num_masks`` calls bring "
     "the model back to the masks it started with.", "test_reference::test_made_update_masks_cycles_back"),
    ("made.py", "MADE.update_masks", "Sets ``self.order`` to the set's ordering and calls ``set_mask`` on every "
     "``MaskedLinear`` of ``self.net``.", "test_made_update_masks_installs_set_k"),
    ("made.py", "MADE.forward", "``(B, D)`` float inputs -> ``(B, nout)`` logits, with the mask set in use.",
     "test_made_update_masks_installs_set_k"),
    ("made.py", "MADE.log_prob", "With one mask set this is ``log p(x)``.", "test_made_log_prob_with_one_mask_set"),
    ("made.py", "MADE.log_prob", "it is the log of the mean of the M likelihoods, ``log (1/M) sum_k p_k(x)``, "
     "where ``p_k`` uses mask set ``k``; the model is left with the mask set it had before the call.",
     "test_made_log_prob_with_several_mask_sets"),
    ("made.py", "MADE.log_prob", "With one mask set it must not change the masks, and it is differentiable: "
     "training minimises ``-log_prob(x).mean()`` under one mask set per step", "test_made_log_prob_with_one_mask_set"),
    ("made.py", "MADE.log_prob", "With several mask sets it is an evaluation quantity",
     "test_made_log_prob_with_several_mask_sets"),
    ("made.py", "MADE.sample", "Draw ``n`` samples with the mask set in use, in exactly D forward passes.",
     "test_made_sample_uses_the_installed_mask_set"),
    ("made.py", "MADE.sample", "Variables are drawn in the order ``self.order`` (the ordering of the installed mask "
     "set); the masks are not changed.", "test_made_sample_uses_the_installed_mask_set"),
    ("made.py", "MADE.sample", "float tensor ``(n, D)`` with values in {0., 1.}, on the model's device.",
     "test_samplers_draw_from_the_generator"),
    # pixelcnn.py
    ("pixelcnn.py", "", "Pixels are generated in raster order (row by row, left to right); inside one pixel of a "
     "colour image the channels come in order (R, then G, then B).", "test_colour_pixelcnn_sees_earlier_values_only"),
    ("pixelcnn.py", "", "channel ``i`` of a layer with ``n`` channels belongs to group ``(i * C) // n``.",
     "test_color_center_mask_follows_the_groups"),
    ("pixelcnn.py", "", "at the centre pixel a type-A mask lets output group ``g`` see input groups ``h < g``, a "
     "type-B mask input groups ``h <= g``.", "test_color_center_mask_follows_the_groups"),
    ("pixelcnn.py", "preprocess", "Map integer pixels ``{0..K-1}`` (any shape) to floats of ``dtype`` in [0, 1]",
     "test_preprocess_maps_to_the_unit_interval"),
    ("pixelcnn.py", "color_center_mask", "entry ``[o, i]`` is 1 iff group(i) < group(o) (type A) or group(i) <= "
     "group(o) (type B)", "test_color_center_mask_follows_the_groups"),
    ("pixelcnn.py", "conv_mask", "1 for every kernel position strictly before the centre in raster order, 0 for "
     "every position after it, and at the centre 0 (type A) or 1 (type B) when ``color_channels == 1``.",
     "test_reference::test_conv_mask_hides_the_future_and_the_centre_for_type_a"),
    ("pixelcnn.py", "conv_mask", "C > 1 uses ``color_center_mask`` at the centre pixel",
     "test_conv_mask_with_colours_changes_only_the_centre"),
    ("pixelcnn.py", "MaskedConv2d", "A same-padded ``nn.Conv2d`` whose kernel is multiplied by ``conv_mask(...)``.",
     "test_masked_conv_is_a_same_padded_masked_convolution"),
    ("pixelcnn.py", "MaskedConv2d", "The mask is the float buffer ``mask`` of the weight's shape.",
     "test_masked_conv_is_a_same_padded_masked_convolution"),
    ("pixelcnn.py", "MaskedConv2d", "The mask is the float buffer ``mask`` of the weight's shape.",
     "test_reference::test_pixelcnn_masks_survive_state_dict_round_trip"),
    ("pixelcnn.py", "ResidualBlock", "PixelCNN residual block: ``x + net(x)``, shape ``(B, c, H, W)`` kept.",
     "test_residual_block_adds_its_input"),
    ("pixelcnn.py", "ResidualBlock", "``net`` is ReLU, 1x1 conv (c -> c/2), ReLU, 3x3 conv, ReLU, 1x1 conv "
     "(c/2 -> c), all masked convolutions of type B.", "test_pixelcnn_layers_are_masked_as_documented"),
    ("pixelcnn.py", "PixelCNN", "``input_conv`` (type A, ``kernel_size``), ``blocks`` (``num_blocks`` residual "
     "blocks), ``head`` (ReLU, 1x1 type B, ReLU, 1x1 type B with ``in_channels * num_levels`` outputs;",
     "test_pixelcnn_layers_are_masked_as_documented"),
    ("pixelcnn.py", "PixelCNN", "output channel ``c * num_levels + v`` is the logit of value ``v`` for colour ``c``).",
     "test_pixelcnn_logits_layout_and_log_prob"),
    ("pixelcnn.py", "PixelCNN.forward", "with the dtype of ``input_conv.weight``.",
     "test_pixelcnn_logits_layout_and_log_prob"),
    ("pixelcnn.py", "PixelCNN.forward", "float tensor ``(B, K, C, H, W)``: ``[b, :, c, i, j]`` are the logits of "
     "``p(x[b, c, i, j] | pixels before (i, j), and colours before c)``.",
     "test_reference::test_pixelcnn_receptive_field_is_strictly_before_each_pixel"),
    ("pixelcnn.py", "PixelCNN.forward", "float tensor ``(B, K, C, H, W)``: ``[b, :, c, i, j]`` are the logits of "
     "``p(x[b, c, i, j] | pixels before (i, j), and colours before c)``.",
     "test_colour_pixelcnn_sees_earlier_values_only"),
    ("pixelcnn.py", "PixelCNN.log_prob", "int64 ``(B, C, H, W)`` -> float ``(B,)``: ``log p(x)`` in nats, summed over "
     "pixels and colours.", "test_pixelcnn_logits_layout_and_log_prob"),
    ("pixelcnn.py", "PixelCNN.sample", "Draw ``n`` images in raster order, the whole batch at once.",
     "test_reference::test_pixelcnn_normalises_exactly_and_samples_its_own_distribution"),
    ("pixelcnn.py", "PixelCNN.sample", "Uses exactly ``H * W * C`` forward passes (``H * W`` for grey-scale).",
     "test_colour_sample_takes_c_h_w_forward_passes"),
    ("pixelcnn.py", "PixelCNN.sample", "int64 tensor ``(n, C, H, W)`` with values in ``{0..K-1}``, on the model's "
     "device.", "test_samplers_draw_from_the_generator"),
]


def _docstring(file, name):
    obj = MODULES[file]
    for part in filter(None, name.split(".")):
        obj = getattr(obj, part)
    return " ".join((obj.__doc__ or "").split())


def _test_named(name):
    module, _, function = name.rpartition("::")
    return getattr(test_reference if module == "test_reference" else sys.modules[__name__], function, None)


def test_inventory_quotes_the_docstrings():
    problems = []
    for file, name, promise, test in INVENTORY:
        if " ".join(promise.split()) not in _docstring(file, name):
            problems.append(f"{file} {name or '(module)'}: the docstring no longer says {promise!r}")
        if not callable(_test_named(test)) or not test.rpartition("::")[2].startswith("test_"):
            problems.append(f"{file} {name or '(module)'}: no test named {test}")
    assert not problems, "\n".join(problems)


def test_every_promising_function_has_an_entry():
    """Every function or class of solution/*.py with a docstring appears in the inventory."""
    listed = {(file, name) for file, name, _, _ in INVENTORY}
    missing = []
    for file, module in MODULES.items():
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ or name.startswith("_"):
                continue
            members = [(name, obj)] + [(f"{name}.{m}", f) for m, f in vars(obj).items()
                                       if isinstance(obj, type) and callable(f) and f.__doc__ and not m.startswith("_")]
            missing += [f"{file} {qual}" for qual, item in members if item.__doc__ and (file, qual) not in listed]
    assert not missing, "docstrings without any entry in INVENTORY: " + ", ".join(missing)


# ---------------------------------------------------------------- autoregressive.py
def test_log_likelihoods_sum_each_example():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (3, 2, 4), generator=g)
    logits = torch.randn(3, 2, 4, generator=g, dtype=torch.float64)
    expected = (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).flatten(1).sum(1)
    for dtype in (torch.int64, torch.uint8, torch.float64):
        out = ar.bernoulli_log_likelihood(x.to(dtype), logits)
        assert out.shape == (3,) and torch.allclose(out, expected)
    y = torch.randint(0, 5, (3, 2, 4), generator=g)
    cat_logits = torch.randn(3, 5, 2, 4, generator=g, dtype=torch.float64)
    expected = F.log_softmax(cat_logits, dim=1).gather(1, y[:, None]).squeeze(1).flatten(1).sum(1)
    out = ar.categorical_log_likelihood(y, cat_logits)
    assert out.shape == (3,) and torch.allclose(out, expected)


def test_bits_per_dim_keeps_type_and_shape():
    out = ar.nll_to_bits_per_dim(100.0, 10)
    assert type(out) is float and out == pytest.approx(100.0 / (10 * np.log(2)))
    nll = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    out = ar.nll_to_bits_per_dim(nll, 3)
    assert isinstance(out, torch.Tensor) and out.shape == nll.shape and out.dtype == nll.dtype
    assert torch.allclose(out, nll / (3 * np.log(2)))


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_discrete_ar2d_factorises_in_its_order(order):
    model = randomise(ar.DiscreteAR2D(3, order=order), seed=1)
    x = torch.tensor(list(itertools.product(range(3), repeat=2)))
    first, second = x[:, order[0]], x[:, order[1]]
    expected = (F.log_softmax(model.first_logits, 0)[first]
                + F.log_softmax(model.second_logits, 1)[first, second])
    out = model.log_prob(x)
    assert out.shape == (9,) and torch.allclose(out, expected)


def _samplers():
    """(name, model, sample(n, generator) -> samples, dtype, shape of one sample, values allowed)."""
    ar2d = randomise(ar.DiscreteAR2D(4, order=(1, 0)), seed=1)
    fvsbn = randomise(ar.FVSBN(3, order=[2, 0, 1]), seed=2)
    mad = randomise(made.MADE(4, [8], 4, num_masks=2, natural_ordering=False), seed=3)
    px = randomise(pixelcnn.PixelCNN(1, 3, channels=4, num_blocks=1, kernel_size=3), seed=4, std=0.3)
    return [
        ("DiscreteAR2D", ar2d, ar2d.sample, torch.int64, (2,), set(range(4))),
        ("FVSBN", fvsbn, fvsbn.sample, torch.float64, (3,), {0.0, 1.0}),
        ("MADE", mad, mad.sample, torch.float64, (4,), {0.0, 1.0}),
        ("PixelCNN", px, lambda n, generator=None: px.sample(n, (2, 3), generator=generator), torch.int64, (1, 2, 3),
         set(range(3))),
    ]


def test_samplers_draw_from_the_generator():
    for name, model, sample, dtype, shape, values in _samplers():
        first = sample(50, generator=torch.Generator().manual_seed(0))
        torch.rand(5)  # the global generator moves: the samples must not
        again = sample(50, generator=torch.Generator().manual_seed(0))
        other = sample(50, generator=torch.Generator().manual_seed(1))
        assert torch.equal(first, again) and not torch.equal(first, other), name
        assert first.shape == (50, *shape) and first.dtype == dtype, name
        assert set(first.unique().tolist()) <= values, name
        assert first.device == next(model.parameters()).device, name
        assert sample(3).shape == (3, *shape), name  # generator=None


def test_fvsbn_ignores_the_diagonal_and_above():
    model = randomise(ar.FVSBN(4, order=[1, 3, 0, 2]), seed=5)
    other = ar.FVSBN(4, order=[1, 3, 0, 2]).double()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.weight.add_(torch.triu(torch.full((4, 4), 7.0, dtype=torch.float64)))
    assert torch.equal(model.conditional_logits(ALL_4BIT), other.conditional_logits(ALL_4BIT))
    assert torch.equal(model.log_prob(ALL_4BIT), other.log_prob(ALL_4BIT))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(model.sample(100, generator=g1), other.sample(100, generator=g2))


def test_fvsbn_conditionals_follow_the_formula():
    order = [2, 0, 3, 1]
    model = randomise(ar.FVSBN(4, order=order), seed=6)
    logits = model.conditional_logits(ALL_4BIT)
    for i, d in enumerate(order):
        expected = model.bias[i] + sum(model.weight[i, j] * ALL_4BIT[:, order[j]] for j in range(i))
        assert torch.allclose(logits[:, d], expected + torch.zeros(16, dtype=torch.float64))
    out = model.log_prob(ALL_4BIT)
    assert out.shape == (16,) and torch.allclose(out, ar.bernoulli_log_likelihood(ALL_4BIT, logits))


class _Known(torch.nn.Module):
    """log p(x) = -(sum of x) - 1, recording the device and size of each batch."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def log_prob(self, x):
        self.seen.append((x.device, x.shape[0]))
        return -x.flatten(1).double().sum(1) - 1


def test_evaluate_nll_averages_over_all_examples():
    x = torch.arange(7 * 2 * 3, dtype=torch.float64).view(7, 2, 3)
    expected = (x.flatten(1).sum(1) + 1).mean().item()
    for loader in ([x[:3], x[3:6], x[6:]], [(x[:4], torch.zeros(4)), [x[4:], torch.ones(3)]]):
        model = _Known()
        out = ar.evaluate_nll(model, loader)
        assert set(out) == {"nll", "bits_per_dim"} and all(type(v) is float for v in out.values())
        assert out["nll"] == pytest.approx(expected) and out["bits_per_dim"] == pytest.approx(expected / (6 * np.log(2)))
        assert all(device == model.anchor.device for device, _ in model.seen) and sum(n for _, n in model.seen) == 7


# ---------------------------------------------------------------- made.py
def test_masked_linear_mask_is_a_buffer():
    layer = made.MaskedLinear(5, 3)
    assert "mask" in dict(layer.named_buffers()) and "mask" in layer.state_dict()
    assert layer.mask.shape == (3, 5) and layer.mask.dtype == torch.float32 and bool((layer.mask == 1).all())
    assert layer.double().mask.dtype == torch.float64
    fresh = made.MaskedLinear(5, 3).double()
    layer.set_mask(torch.eye(3, 5))
    fresh.load_state_dict(layer.state_dict())
    assert torch.equal(fresh.mask, torch.eye(3, 5, dtype=torch.float64))


def test_masked_linear_set_mask_and_forward():
    layer = randomise(made.MaskedLinear(4, 3), seed=7)
    buffer = layer.mask
    mask = (torch.arange(12).view(3, 4) % 3 == 0)
    for array_like in (mask.tolist(), mask, mask.numpy(), mask.double()):
        layer.set_mask(array_like)
        assert layer.mask is buffer and torch.equal(layer.mask, mask.double())
    x = torch.randn(6, 4, dtype=torch.float64)
    assert torch.allclose(layer(x), x @ (mask.double() * layer.weight).T + layer.bias)


def test_made_degrees_are_drawn_from_the_generator():
    order = torch.tensor([3, 7, 1, 10, 0, 5, 8, 2, 11, 4, 9, 6])
    degrees = made.made_degrees(order, [1, 300], torch.Generator().manual_seed(0))
    again = made.made_degrees(order, [1, 300], torch.Generator().manual_seed(0))
    other = made.made_degrees(order, [1, 300], torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(degrees, again)) and not torch.equal(degrees[2], other[2])
    low = int(degrees[1].min())
    assert set(degrees[2].tolist()) == set(range(low, 11))  # every degree from the layer below's minimum to D-2
    assert len(made.made_degrees(order, [4], None)) == 2


def test_made_masks_follow_the_degrees():
    degrees = [torch.tensor([2, 0, 1]), torch.tensor([0, 1, 1, 0]), torch.tensor([1, 0])]
    masks = made.made_masks(degrees, k=2)
    for layer, (below, above) in enumerate(zip(degrees[:-1], degrees[1:])):
        for o, i in itertools.product(range(len(above)), range(len(below))):
            assert masks[layer][o, i] == float(above[o] >= below[i])
    assert masks[-1].shape == (6, 2)
    for o, j in itertools.product(range(6), range(2)):
        assert masks[-1][o, j] == float(degrees[0][o % 3] > degrees[-1][j])


@pytest.mark.parametrize("natural", [True, False])
def test_made_update_masks_installs_set_k(natural):
    model = made.MADE(5, [12, 12], 10, num_masks=3, natural_ordering=natural, seed=4)
    twin = made.MADE(5, [12, 12], 10, num_masks=3, natural_ordering=natural, seed=4)
    layers = [m for m in model.net if isinstance(m, made.MaskedLinear)]
    orders, snapshots = [], []
    for step in range(4):
        assert model.mask_index == step % 3
        assert sorted(model.order.tolist()) == list(range(5)) and model.order.dtype == torch.int64
        if natural:
            assert torch.equal(model.order, torch.arange(5))
        degrees = torch.argsort(model.order)  # m0[order[i]] = i
        masks = [layer.mask for layer in layers]
        connect = masks[2] @ masks[1] @ masks[0]  # paths from input j to output o
        later = degrees[None, :] >= degrees[torch.arange(10) % 5][:, None]
        assert bool((connect[later] == 0).all()) and bool(connect[~later].sum() > 0)
        assert model(torch.rand(7, 5)).shape == (7, 10)
        orders.append(model.order.clone())
        snapshots.append([mask.clone() for mask in masks])
        model.update_masks()
    twin_masks = [m.mask for m in twin.net if isinstance(m, made.MaskedLinear)]
    assert all(torch.equal(a, b) for a, b in zip(snapshots[0], twin_masks))  # set 0 depends on (seed, 0) only
    assert all(torch.equal(a, b) for a, b in zip(snapshots[0], snapshots[3]))
    assert natural or not all(torch.equal(orders[0], o) for o in orders[1:3])


def _state(model):
    return model.mask_index, model.order.clone(), [m.clone() for n, m in model.named_buffers() if n.endswith("mask")]


def _same_state(a, b):
    return a[0] == b[0] and torch.equal(a[1], b[1]) and all(torch.equal(x, y) for x, y in zip(a[2], b[2]))


def _per_set_log_likelihoods(model, x):
    out = []
    for _ in range(model.num_masks):
        with torch.no_grad():
            out.append(ar.bernoulli_log_likelihood(x, model(x)))
        model.update_masks()
    return torch.stack(out)


def test_made_log_prob_with_one_mask_set():
    model = randomise(made.MADE(4, [12], 4, natural_ordering=False, seed=2), seed=3)
    before = _state(model)
    log_p = model.log_prob(ALL_4BIT)
    assert _same_state(_state(model), before)
    (-log_p.mean()).backward()
    assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0
               for m in model.net if isinstance(m, made.MaskedLinear))
    assert torch.allclose(log_p, _per_set_log_likelihoods(model, ALL_4BIT)[0])


def test_made_log_prob_with_several_mask_sets():
    model = randomise(made.MADE(4, [12], 4, num_masks=3, natural_ordering=False, seed=2), seed=3)
    model.update_masks()
    before = _state(model)
    log_p = model.log_prob(ALL_4BIT)
    assert _same_state(_state(model), before)
    per_set = _per_set_log_likelihoods(model, ALL_4BIT)
    assert torch.allclose(log_p, torch.logsumexp(per_set, 0) - np.log(3))
    # an evaluation quantity: backward fails with torch's ordinary error, never an in-place one
    with pytest.raises(RuntimeError, match="does not require grad"):
        model.log_prob(ALL_4BIT).mean().backward()


def test_made_sample_uses_the_installed_mask_set():
    model = randomise(made.MADE(4, [16], 4, num_masks=3, natural_ordering=False, seed=7), seed=8)
    model.update_masks()
    before = _state(model)
    calls, forward = [], model.forward
    model.forward = lambda x: calls.append(1) or forward(x)
    samples = model.sample(20000, generator=torch.Generator().manual_seed(1))
    del model.forward
    assert len(calls) == 4 and _same_state(_state(model), before)
    with torch.no_grad():
        log_p = ar.bernoulli_log_likelihood(ALL_4BIT, model(ALL_4BIT))
    assert chi_square_p_value(binary_codes(samples), log_p) > 1e-6


# ---------------------------------------------------------------- pixelcnn.py
def test_preprocess_maps_to_the_unit_interval():
    x = torch.arange(4).view(2, 1, 2)
    for dtype in (torch.float32, torch.float64):
        out = pixelcnn.preprocess(x, 4, dtype)
        assert out.dtype == dtype and out.shape == x.shape
        assert out.min() == 0 and out.max() == 1 and torch.allclose(out.flatten(), torch.tensor([0, 1 / 3, 2 / 3, 1],
                                                                                            dtype=dtype))


def test_color_center_mask_follows_the_groups():
    for cin, cout in ((3, 6), (6, 12), (5, 7)):
        group_in, group_out = [i * 3 // cin for i in range(cin)], [o * 3 // cout for o in range(cout)]
        for mask_type, allowed in (("A", lambda h, g: h < g), ("B", lambda h, g: h <= g)):
            mask = pixelcnn.color_center_mask(mask_type, cin, cout, 3)
            assert mask.shape == (cout, cin) and mask.is_floating_point()
            for o, i in itertools.product(range(cout), range(cin)):
                assert mask[o, i] == float(allowed(group_in[i], group_out[o]))


def test_conv_mask_with_colours_changes_only_the_centre():
    for mask_type in "AB":
        colour, grey = pixelcnn.conv_mask(mask_type, 6, 9, 5, 3), pixelcnn.conv_mask(mask_type, 6, 9, 5)
        assert torch.equal(colour[:, :, 2, 2], pixelcnn.color_center_mask(mask_type, 6, 9, 3))
        colour[:, :, 2, 2] = grey[:, :, 2, 2]
        assert torch.equal(colour, grey)


def test_masked_conv_is_a_same_padded_masked_convolution():
    conv = randomise(pixelcnn.MaskedConv2d("B", 2, 3, 5), seed=9)
    assert conv.mask.shape == conv.weight.shape and conv.mask.is_floating_point()
    assert torch.equal(conv.mask.float(), pixelcnn.conv_mask("B", 2, 3, 5))
    x = torch.randn(2, 2, 4, 6, dtype=torch.float64)
    out = conv(x)
    assert out.shape == (2, 3, 4, 6)
    assert torch.allclose(out, F.conv2d(x, conv.mask * conv.weight, conv.bias, padding=2))


def test_residual_block_adds_its_input():
    block = randomise(pixelcnn.ResidualBlock(6), seed=10, std=0.5)
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64)
    assert torch.allclose(block(x), x + block.net(x))


def test_pixelcnn_logits_layout_and_log_prob():
    model = randomise(pixelcnn.PixelCNN(3, 4, channels=12, num_blocks=1, kernel_size=3), seed=11, std=0.5)
    x = torch.randint(0, 4, (2, 3, 2, 3))
    head = model.head(model.blocks(model.input_conv(pixelcnn.preprocess(x, 4, torch.float64))))
    logits = model(x)
    assert logits.shape == (2, 4, 3, 2, 3) and logits.dtype == torch.float64
    for c, v in itertools.product(range(3), range(4)):
        assert torch.allclose(logits[:, v, c], head[:, c * 4 + v])
    expected = F.log_softmax(logits, dim=1).gather(1, x[:, None]).squeeze(1).sum(dim=(1, 2, 3))
    out = model.log_prob(x)
    assert out.shape == (2,) and torch.allclose(out, expected)


def test_colour_pixelcnn_sees_earlier_values_only():
    C, H, W = 3, 2, 2
    model = randomise(pixelcnn.PixelCNN(C, 2, channels=12, num_blocks=1, kernel_size=3), seed=12, std=0.7)
    base = torch.randint(0, 2, (1, C, H, W), generator=torch.Generator().manual_seed(0))
    position = lambda c, i, j: (i * W + j) * C + c  # noqa: E731  (raster order, colours in turn)
    with torch.no_grad():
        reference = model(base)
        seen_before = set()
        for c1, i1, j1 in itertools.product(range(C), range(H), range(W)):
            x = base.clone()
            x[0, c1, i1, j1] = 1 - x[0, c1, i1, j1]
            moved = (model(x) - reference).abs().amax(dim=1)[0]  # (C, H, W)
            for c, i, j in itertools.product(range(C), range(H), range(W)):
                if position(c1, i1, j1) >= position(c, i, j):
                    assert moved[c, i, j] == 0, f"value {(c, i, j)} sees {(c1, i1, j1)}"
                elif moved[c, i, j] > 0:
                    seen_before.add((c, i, j))
    assert len(seen_before) == C * H * W - 1  # everything but the first value sees something before it


def test_colour_sample_takes_c_h_w_forward_passes():
    model = randomise(pixelcnn.PixelCNN(3, 2, channels=12, num_blocks=1, kernel_size=3), seed=13, std=0.5)
    calls, forward = [], model.forward
    model.forward = lambda x: calls.append(1) or forward(x)
    samples = model.sample(5, (2, 3), generator=torch.Generator().manual_seed(0))
    assert len(calls) == 3 * 2 * 3 and samples.shape == (5, 3, 2, 3)


def test_pixelcnn_layers_are_masked_as_documented():
    model = pixelcnn.PixelCNN(3, 4, channels=12, num_blocks=2, kernel_size=5)
    convs = lambda seq: [m for m in seq if isinstance(m, pixelcnn.MaskedConv2d)]  # noqa: E731
    assert model.input_conv.mask_type == "A" and model.input_conv.kernel_size == (5, 5)
    assert len(model.blocks) == 2 and all(isinstance(b, pixelcnn.ResidualBlock) for b in model.blocks)
    block = convs(model.blocks[0].net)
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in block] == [(12, 6, 1), (6, 6, 3), (6, 12, 1)]
    assert [type(m).__name__ for m in model.blocks[0].net][::2] == ["ReLU"] * 3
    head = convs(model.head)
    assert [(c.out_channels, c.kernel_size[0]) for c in head] == [(12, 1), (3 * 4, 1)]
    assert all(c.mask_type == "B" for c in block + head)
