"""Staff tests of the reference solution itself (not the graded tests).

The reference must satisfy every property the graded tests check of students:
autoregressive structure by gradients, exact normalisation, samples that follow
its own log_prob, and masks that survive a state_dict round trip.
"""
import importlib.util
import io
import itertools
from pathlib import Path

import pytest
import torch

SOLUTION = Path(__file__).resolve().parents[1] / "solution"


def load_solution(name):
    """Import solution/<name>.py under a private name, so it never clashes with submission/."""
    spec = importlib.util.spec_from_file_location(f"reference_{name}", SOLUTION / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ar, made, pixelcnn = (load_solution(n) for n in ("autoregressive", "made", "pixelcnn"))


def randomise(model, seed, std=1.0):
    """Give every parameter (not the buffers) random float64 values."""
    g = torch.Generator().manual_seed(seed)
    model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * std)
    return model


def chi_square_p_value(samples, log_probs):
    """p-value of Pearson's test that integer codes ``samples`` follow ``exp(log_probs)``."""
    n = samples.numel()
    expected = log_probs.exp() * n
    observed = torch.bincount(samples, minlength=len(expected)).double()
    keep = expected >= 5
    pooled_obs = torch.cat([observed[keep], observed[~keep].sum().view(1)])
    pooled_exp = torch.cat([expected[keep], expected[~keep].sum().view(1)])
    if pooled_exp[-1] < 5:  # too little mass to form a last cell: merge it into the largest one
        pooled_obs, pooled_exp = pooled_obs[:-1].clone(), pooled_exp[:-1].clone()
        pooled_obs[pooled_exp.argmax()] += observed[~keep].sum()
        pooled_exp[pooled_exp.argmax()] += expected[~keep].sum()
    stat = ((pooled_obs - pooled_exp) ** 2 / pooled_exp).sum()
    df = len(pooled_exp) - 1
    return torch.special.gammaincc(torch.tensor(df / 2, dtype=torch.float64), stat / 2).item()


def binary_codes(x):
    """Integer code of each binary row of ``x`` (B, D): first column is the most significant bit."""
    weights = 2 ** torch.arange(x.shape[1] - 1, -1, -1)
    return (x.long() * weights).sum(dim=1)


ALL_4BIT = torch.tensor(list(itertools.product([0, 1], repeat=4)), dtype=torch.float64)


# ---------------------------------------------------------------- Q1
def test_likelihoods_are_stable_for_extreme_logits():
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    logits = torch.tensor([[1e4, -1e4, 1e4, -1e4]])
    assert ar.bernoulli_log_likelihood(x, logits).item() == pytest.approx(-2e4)
    cat = ar.categorical_log_likelihood(torch.tensor([[2, 0]]), torch.tensor([[[1e4, -1e4], [-1e4, 0], [0, 1e4]]]))
    assert torch.isfinite(cat).all() and cat.item() == pytest.approx(-3e4)  # -1e4 - 2e4


def test_bits_per_dim_of_uniform_binary_model_is_one():
    assert ar.nll_to_bits_per_dim(784 * torch.log(torch.tensor(2.0)), 784).item() == pytest.approx(1.0)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_discrete_ar2d_normalises_and_samples_its_own_distribution(order):
    model = randomise(ar.DiscreteAR2D(4, order=order), seed=1)
    grid = torch.tensor(list(itertools.product(range(4), repeat=2)))
    log_p = model.log_prob(grid)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-12)
    samples = model.sample(20000, generator=torch.Generator().manual_seed(0))
    assert chi_square_p_value(samples[:, 0] * 4 + samples[:, 1], log_p) > 1e-6


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [2, 0, 3, 1]])
def test_fvsbn_normalises_is_autoregressive_and_samples_its_own_distribution(order):
    model = randomise(ar.FVSBN(4, order=order), seed=2)
    log_p = model.log_prob(ALL_4BIT)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-12)
    x = ALL_4BIT[5:6].clone().requires_grad_(True)
    logits = model.conditional_logits(x)
    for i, d in enumerate(order):
        (grad,) = torch.autograd.grad(logits[0, d], x, retain_graph=True)
        assert (grad[0, order[i:]] == 0).all(), f"logit of x{d} depends on itself or a later variable"
    samples = model.sample(20000, generator=torch.Generator().manual_seed(0))
    assert chi_square_p_value(binary_codes(samples), log_p) > 1e-6


# ---------------------------------------------------------------- Q2
@pytest.mark.parametrize("natural", [True, False])
@pytest.mark.parametrize("hidden", [[8], [16, 12]])
@pytest.mark.parametrize("k", [1, 2])
def test_made_is_autoregressive_by_jacobian(natural, hidden, k):
    D = 5
    model = randomise(made.MADE(D, hidden, k * D, num_masks=2, natural_ordering=natural, seed=3), seed=4)
    for _ in range(2):
        x = torch.rand(1, D, dtype=torch.float64)
        jacobian = torch.autograd.functional.jacobian(lambda v: model(v)[0], x)[:, 0, :]  # (k*D, D)
        degrees = torch.empty(D, dtype=torch.long)
        degrees[model.order] = torch.arange(D)
        for out in range(k * D):
            later = degrees >= degrees[out % D]
            assert (jacobian[out, later] == 0).all(), f"output {out} sees an input at or after it"
        model.update_masks()


def test_made_degrees_and_masks_follow_the_rules():
    order = torch.tensor([3, 0, 2, 1])
    degrees = made.made_degrees(order, [10, 10], torch.Generator().manual_seed(0))
    assert degrees[0].tolist() == [1, 3, 2, 0]
    for below, layer in zip(degrees[:-1], degrees[1:]):
        assert layer.min() >= below.min() and layer.max() <= 2
    masks = made.made_masks(degrees, k=2)
    assert [tuple(m.shape) for m in masks] == [(10, 4), (10, 10), (8, 10)]


@pytest.mark.parametrize("num_masks,natural", [(1, True), (3, False)])
def test_made_normalises_exactly(num_masks, natural):
    model = randomise(made.MADE(4, [12], 4, num_masks=num_masks, natural_ordering=natural), seed=5)
    before = model.mask_index
    assert model.log_prob(ALL_4BIT).exp().sum().item() == pytest.approx(1.0, abs=1e-12)
    assert model.mask_index == before


def test_made_update_masks_cycles_back():
    model = made.MADE(6, [16], 6, num_masks=3, natural_ordering=False)
    first = [m.clone() for m in model.state_dict().values() if m.dtype == torch.float32 and m.max() <= 1]
    for _ in range(3):
        model.update_masks()
    again = [m.clone() for m in model.state_dict().values() if m.dtype == torch.float32 and m.max() <= 1]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_made_samples_follow_its_own_log_prob_in_d_forward_passes():
    model = randomise(made.MADE(4, [16], 4, natural_ordering=False, seed=7), seed=8)
    calls = []
    forward = model.forward
    model.forward = lambda x: calls.append(1) or forward(x)
    samples = model.sample(20000, generator=torch.Generator().manual_seed(1))
    assert len(calls) == 4
    del model.forward
    assert chi_square_p_value(binary_codes(samples), model.log_prob(ALL_4BIT)) > 1e-6


def test_made_masks_survive_state_dict_round_trip():
    model = made.MADE(6, [16, 16], 6, natural_ordering=False, seed=11)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    other = made.MADE(6, [16, 16], 6, natural_ordering=True, seed=0)
    other.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    x = torch.randint(0, 2, (8, 6)).float()
    assert torch.equal(model(x), other(x))
    assert any(name.endswith("mask") for name in model.state_dict())


# ---------------------------------------------------------------- Q3
@pytest.mark.parametrize("mask_type,centre", [("A", 0.0), ("B", 1.0)])
def test_conv_mask_hides_the_future_and_the_centre_for_type_a(mask_type, centre):
    mask = pixelcnn.conv_mask(mask_type, 2, 3, 5)
    expected = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, centre, 0, 0], [0] * 5, [0] * 5]).float()
    assert (mask == expected).all()


@pytest.mark.parametrize("H,W", [(5, 5), (4, 7)])
def test_pixelcnn_receptive_field_is_strictly_before_each_pixel(H, W):
    model = randomise(pixelcnn.PixelCNN(1, 2, channels=8, num_blocks=2, kernel_size=3), seed=9, std=0.5)
    x = torch.randint(0, 2, (1, 1, H, W))
    for i, j in [(0, 0), (1, 2), (H - 1, W - 1), (H // 2, 0)]:
        inputs = pixelcnn.preprocess(x, 2, torch.float64).requires_grad_(True)
        h = model.blocks(model.input_conv(inputs))
        logits = model.head(h)[0, :, i, j].sum()
        (grad,) = torch.autograd.grad(logits, inputs)
        raster = torch.arange(H * W).view(H, W)
        assert (grad[0, 0][raster >= i * W + j] == 0).all(), f"pixel {(i, j)} sees itself or a later pixel"
        if j > 0:
            assert grad[0, 0, i, j - 1] != 0, "the left neighbour must be visible"


def test_pixelcnn_normalises_exactly_and_samples_its_own_distribution():
    model = randomise(pixelcnn.PixelCNN(1, 2, channels=8, num_blocks=1, kernel_size=3), seed=10, std=0.7)
    images = torch.tensor(list(itertools.product([0, 1], repeat=4))).view(-1, 1, 2, 2)
    log_p = model.log_prob(images)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-10)
    calls = []
    forward = model.forward
    model.forward = lambda x: calls.append(1) or forward(x)
    samples = model.sample(20000, (2, 2), generator=torch.Generator().manual_seed(2))
    assert len(calls) == 4
    assert chi_square_p_value(binary_codes(samples.view(-1, 4)), log_p) > 1e-6


def test_colour_pixelcnn_normalises_over_channel_order():
    model = randomise(pixelcnn.PixelCNN(3, 2, channels=12, num_blocks=1, kernel_size=3), seed=12, std=0.7)
    images = torch.tensor(list(itertools.product([0, 1], repeat=6))).view(-1, 3, 1, 2)
    assert model.log_prob(images).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


def test_pixelcnn_masks_survive_state_dict_round_trip():
    model = pixelcnn.PixelCNN(1, 2, channels=8, num_blocks=1)
    state = model.state_dict()
    assert state["input_conv.mask"][:, :, 3, 3].sum() == 0
    other = pixelcnn.PixelCNN(1, 2, channels=8, num_blocks=1)
    other.load_state_dict(state)
    x = torch.randint(0, 2, (2, 1, 6, 6))
    assert torch.equal(model(x), other(x))
