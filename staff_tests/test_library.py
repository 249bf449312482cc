"""Staff tests of the course library (src/models.py, src/train.py, src/plots.py, src/cli.py).

Everything runs the reference (``impl="solution"``) on the CPU; the whole file
takes well under 90 s on 2 cores.  Tests that need the shipped MNIST files skip
(with the reason) when they are missing.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src import cli, plots  # noqa: E402
from src.models import AdaptedLoader, adapt_batch, build_model  # noqa: E402
from src.train import (  # noqa: E402
    evaluate, independent_pixel_baseline, load_checkpoint, mean_nll, train, train_step, train_steps, uniform_baseline,
)

IMPL = "solution"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}


def _data_or_skip():
    try:
        from src import data

        data.binarized_mnist("test")
    except ImportError as error:
        pytest.skip(f"src/data.py is not importable yet: {error}")
    except FileNotFoundError as error:  # src.data.DatasetMissingError
        pytest.skip(f"MNIST is not there: {error}")


def _run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "src", *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def _toy_images(n, seed=0):
    """Binary images (n, 1, 28, 28) with a lot of structure: random vertical bars."""
    g = torch.Generator().manual_seed(seed)
    columns = torch.rand(n, 1, 1, 28, generator=g) < 0.3
    noise = torch.rand(n, 1, 28, 28, generator=g) < 0.05
    return (columns.expand(n, 1, 28, 28) ^ noise).float()


def _loader(name, images, batch_size, shuffle, seed=0):
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    loader = DataLoader(TensorDataset(images), batch_size=batch_size, shuffle=shuffle, generator=generator)
    return AdaptedLoader(loader, name)


# --------------------------------------------------------------------------- models


def test_build_model_and_adapter_shapes():
    made = build_model("made", IMPL, hidden_sizes=[32])
    pcnn = build_model("pixelcnn", IMPL, channels=8, num_blocks=1)
    x = _toy_images(3)
    assert adapt_batch("made", x).shape == (3, 784) and adapt_batch("made", x).dtype == torch.float32
    assert adapt_batch("pixelcnn", x).dtype == torch.int64
    assert made.log_prob(adapt_batch("made", x)).shape == (3,)
    assert pcnn.log_prob(adapt_batch("pixelcnn", x)).shape == (3,)
    color = build_model("pixelcnn_color", IMPL, channels=12, num_blocks=1, levels=4)
    assert color.log_prob(torch.randint(0, 4, (2, 3, 28, 28))).shape == (2,)


@pytest.mark.parametrize("name, hparams", [
    ("made", {"hidden_sizes": [0]}), ("made", {"channels": 8}), ("pixelcnn", {"kernel_size": 4}),
    ("pixelcnn", {"channels": 7}), ("nosuch", {}),
])
def test_build_model_rejects_bad_hyperparameters(name, hparams):
    with pytest.raises(ValueError):
        build_model(name, IMPL, **hparams)


def test_impls_are_never_mixed_and_light_imports():
    code = (
        "import sys; import src.models as m, src.train\n"
        "assert 'torchvision' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'\n"
        "a = m.load_impl('solution'); assert m.load_impl('solution') is a\n"
        "assert sys.modules['made'] is a.made and a.made.__file__.endswith('solution/made.py')\n"
        "try:\n    m.load_impl('submission')\nexcept m.ImplConflictError:\n    print('refused')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "refused"


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("name, hparams", [("made", {"hidden_sizes": [64]}),
                                           ("pixelcnn", {"channels": 16, "num_blocks": 1})])
def test_train_steps_lowers_nll(name, hparams):
    torch.manual_seed(0)
    model = build_model(name, IMPL, **hparams)
    x = adapt_batch(name, _toy_images(16))
    before = -model.log_prob(x).mean().item()
    state = torch.get_rng_state()
    losses = train_steps(model, x, steps=40, lr=1e-2, seed=0)
    assert torch.equal(torch.get_rng_state(), state), "train_steps must not disturb the caller's RNG"
    assert len(losses) == 40 and abs(losses[0] - before) < 1e-3
    after = -model.log_prob(x).mean().item()
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("name, hparams", [("made", {"hidden_sizes": [32], "num_masks": 2}),
                                           ("pixelcnn", {"channels": 8, "num_blocks": 1})])
def test_train_steps_is_torch_adam_bit_for_bit(name, hparams):
    """train_steps' FunctionalAdam (kept to spare the worker torch._dynamo) gives torch.optim.Adam's numbers."""
    batches = [adapt_batch(name, _toy_images(8, seed=s)) for s in range(3)]
    torch.manual_seed(0)
    ours = build_model(name, IMPL, **hparams)
    torch.manual_seed(0)
    torchs = build_model(name, IMPL, **hparams)
    losses = train_steps(ours, batches, steps=7, lr=1e-2, seed=3)
    optimizer = torch.optim.Adam(torchs.parameters(), lr=1e-2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        expected = [train_step(torchs, optimizer, batches[i % 3]) for i in range(7)]
    assert losses == expected
    for (key, a), b in zip(ours.state_dict().items(), torchs.state_dict().values()):
        assert torch.equal(a, b), key


def test_train_steps_does_not_import_dynamo():
    """If a torch upgrade makes this fail, the learning probes' worker grows by about 70 MB."""
    code = ("import sys, torch\n"
            "from src.models import build_model\n"
            "from src.train import train_steps\n"
            "model = build_model('made', 'solution', hidden_sizes=[8])\n"
            "train_steps(model, torch.zeros(2, 784), steps=2, lr=1e-3)\n"
            "print(sorted(m for m in sys.modules if m.startswith('torch._dynamo'))[:3])\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_train_steps_cycles_mask_sets():
    model = build_model("made", IMPL, hidden_sizes=[32], num_masks=3, natural_ordering=False)
    start = model.mask_index
    train_steps(model, [adapt_batch("made", _toy_images(4))], steps=4, lr=1e-3)
    assert model.mask_index == (start + 4) % 3  # update_masks before every step


def _toy_run(tmp_path, epochs, resume=False, patience=10, lr=3e-3, out="run", lr_decay=0.7, **options):
    torch.manual_seed(0)
    model = build_model("made", IMPL, hidden_sizes=[32], num_masks=2, natural_ordering=False)
    train_loader = _loader("made", _toy_images(64, seed=1), 16, shuffle=True, seed=5)
    valid_loader = _loader("made", _toy_images(32, seed=2), 32, shuffle=False)
    history = train(model, train_loader, valid_loader, epochs=epochs, lr=lr, out_dir=tmp_path / out,
                    patience=patience, device="cpu", resume=resume, progress=False, log=lambda *a: None,
                    config={"model": "made"}, lr_decay=lr_decay, **options)
    return model, history, valid_loader


def _numbers(history):
    return [h[k] for h in history for k in ("epoch", "train_nll", "valid_nll")]


def test_checkpoint_resume_continues_the_same_run(tmp_path):
    _, straight, _ = _toy_run(tmp_path, epochs=4, out="straight")
    _, first, _ = _toy_run(tmp_path, epochs=2, out="split")
    ckpt = load_checkpoint(tmp_path / "split" / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["step"] == 8 and len(ckpt["history"]) == 2 and "optimizer" in ckpt
    _, resumed, _ = _toy_run(tmp_path, epochs=4, resume=True, out="split")
    assert [h["epoch"] for h in resumed] == [1, 2, 3, 4]
    assert resumed[:2] == first  # the saved history is carried on, not recomputed
    assert load_checkpoint(tmp_path / "split" / "last.pt")["optimizer"]["param_groups"][0]["lr"] == pytest.approx(
        3e-3 * 0.7 ** 3)  # the learning-rate schedule goes on
    # optimizer, RNG (shuffling) and mask-set state restored: identical to the uninterrupted run
    assert _numbers(resumed) == pytest.approx(_numbers(straight), rel=1e-6)
    assert (tmp_path / "split" / "best.pt").exists()
    assert not list((tmp_path / "split").glob(".*tmp*")), "temporary checkpoint files left behind"


def test_weight_averaging_and_decay_are_validated_kept_and_resumed(tmp_path):
    options = {"ema_decay": 0.9, "weight_decay": 0.5}
    model, straight, valid_loader = _toy_run(tmp_path, epochs=4, out="straight", **options)
    # the returned model holds the averaged weights of the best epoch: the ones that were validated
    assert mean_nll(model, valid_loader) == pytest.approx(min(h["valid_nll"] for h in straight), rel=1e-6)
    last = load_checkpoint(tmp_path / "straight" / "last.pt")
    assert not torch.equal(last["ema"]["module.net.0.weight"], last["model"]["net.0.weight"])
    assert last["optimizer"]["param_groups"][0]["weight_decay"] == 0.5
    _, plain, _ = _toy_run(tmp_path, epochs=4, out="plain")
    assert _numbers(plain) != pytest.approx(_numbers(straight), rel=1e-3)
    _toy_run(tmp_path, epochs=2, out="split", **options)
    _, resumed, _ = _toy_run(tmp_path, epochs=4, resume=True, out="split", **options)
    assert _numbers(resumed) == pytest.approx(_numbers(straight), rel=1e-6)  # the average is resumed too
    with pytest.raises(ValueError, match="without weight averaging"):
        _toy_run(tmp_path, epochs=5, resume=True, out="plain", **options)


def test_early_stopping(tmp_path):
    # lr = 0: the validation NLL never improves after epoch 1
    _, history, _ = _toy_run(tmp_path, epochs=20, patience=2, lr=0.0)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["bad_epochs"] == 2
    # resuming a run that stopped early does nothing more
    _, again, _ = _toy_run(tmp_path, epochs=20, patience=2, lr=0.0, resume=True)
    assert len(again) == 3


def test_evaluate_uses_the_impl_and_baselines():
    torch.manual_seed(0)
    model = build_model("made", IMPL, hidden_sizes=[16])
    loader = _loader("made", _toy_images(20), 8, shuffle=False)
    result = evaluate(model, loader, IMPL)
    assert result["nll"] == pytest.approx(mean_nll(model, loader), rel=1e-5)
    assert result["bits_per_dim"] == pytest.approx(result["nll"] / (784 * 0.6931471805599453), rel=1e-6)
    train_x = torch.tensor([[1, 1], [1, 0], [0, 0]]).view(3, 1, 1, 2)
    test_x = torch.tensor([[1, 0]]).view(1, 1, 1, 2)
    # add-one smoothing: p(x0 = 1) = 3/5, p(x1 = 0) = 3/5
    expected = -2 * torch.log(torch.tensor(0.6)).item()
    assert independent_pixel_baseline(train_x, test_x)["nll"] == pytest.approx(expected)
    assert uniform_baseline(784)["bits_per_dim"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- plots


def test_plots_write_pngs(tmp_path):
    torch.manual_seed(0)
    model = build_model("pixelcnn", IMPL, channels=8, num_blocks=2)
    path = plots.plot_receptive_field(model, (28, 28), (10, 12), tmp_path / "rf.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grad = plots.input_gradient(model, (28, 28), (10, 12))
    index = torch.arange(784).view(28, 28)
    assert grad[index >= 10 * 28 + 12].abs().max() == 0  # nothing from the future
    assert grad[10, 11] > 0 and grad[9, 12] > 0
    assert grad[9, 20] == 0  # the blind spot (up and to the right, within the receptive field's rows)
    plots.save_sample_grid(torch.rand(6, 784), tmp_path / "s.png", nrow=3)
    plots.plot_learning_curves([{"epoch": 1, "train_nll": 200.0, "valid_nll": 150.0},
                                {"epoch": 2, "train_nll": 140.0, "valid_nll": 130.0}], tmp_path / "c.png")
    plots.plot_made_connectivity(build_model("made", IMPL, hidden_sizes=[20]), tmp_path / "m.png")
    for name in ("s.png", "c.png", "m.png"):
        assert (tmp_path / name).stat().st_size > 1000


@pytest.mark.parametrize("history", [
    [(1, 200.0, 150.0), (2, 140.0, 130.0)],                   # best at the last epoch
    [(1, 150.0, 120.0), (2, 110.0, 125.0), (3, 100.0, 131.0)],  # best at the first, the top of the plot
    [(1, 300.0, 200.0), (2, 150.0, 100.0), (3, 120.0, 140.0)],  # in the middle
    [(1, 300.0, 200.0)],                                      # one epoch
])
def test_the_best_label_stays_inside_the_axes(history, tmp_path, monkeypatch):
    import matplotlib.figure

    figures, save = [], matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, *args, **kwargs: (figures.append(fig), save(fig, *args, **kwargs))[1])
    plots.plot_learning_curves([{"epoch": e, "train_nll": t, "valid_nll": v} for e, t, v in history],
                               tmp_path / "c.png")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = figures[-1]
    renderer = FigureCanvasAgg(fig).get_renderer()  # the figure is closed: a canvas of its own to measure on
    ax = fig.axes[0]
    label = next(t for t in ax.texts if t.get_text().startswith("best "))
    inside, box = ax.get_window_extent(renderer), label.get_window_extent(renderer)
    assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, (box, inside)


# --------------------------------------------------------------------------- command line


def _main(args, capsys):
    """Run the command line in this process: (exit status, stderr)."""
    try:
        code = cli.main(args)
    except SystemExit as error:  # argparse
        code = error.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args", [
    ["train", "made", "--lr", "-1"],
    ["train", "made", "--channels", "8"],
    ["train", "made", "--lr-decay", "1.5"],
    ["train", "made", "--ema", "1"],
    ["train", "made", "--weight-decay", "nan"],
    ["train", "made", "--epochs", "2.5"],
    ["train", "pixelcnn", "--impl", "solution", "--kernel-size", "4", "--train-limit", "10"],
    ["evaluate", "made", "--checkpoint", "no/such/file.pt"],
    ["receptive-field", "pixelcnn", "--impl", "solution", "--pixel", "30", "3", "--out", "runs/never.png"],
    ["frobnicate"],
])
def test_cli_bad_arguments_give_one_line_and_status_2(args, capsys):
    code, err = _main(args, capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_cli_entry_point_bad_argument():
    result = _run_cli("train", "nosuch")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "invalid choice: 'nosuch'" in result.stderr, result.stderr


def test_cli_unfinished_stub_is_one_line():
    if "raise NotImplementedError" not in (ROOT / "submission" / "made.py").read_text():
        pytest.skip("submission/made.py is implemented")
    result = _run_cli("receptive-field", "made", "--impl", "submission", "--out", "runs/never.png")
    assert result.returncode == 2
    assert re.fullmatch(r"python -m src receptive-field: error: submission/made\.py: \S+ is not implemented yet "
                        r"\(line \d+\)\n", result.stderr), result.stderr


def test_cli_missing_dataset_is_one_line(monkeypatch, capsys):
    from src import data

    def missing(*args, **kwargs):
        raise data.DatasetMissingError("MNIST data file data/binarized_mnist.npz is missing")

    monkeypatch.setattr(data, "binarized_mnist", missing)
    assert cli.main(["baseline"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "binarized_mnist.npz is missing" in err


def test_cli_made_run_beats_the_baseline(tmp_path):
    _data_or_skip()
    out, figures = tmp_path / "run", tmp_path / "figures"
    # the default run, shortened (the full default takes about a minute)
    result = _run_cli("train", "made", "--impl", "solution", "--epochs", "4", "--train-limit", "2000",
                      "--batch-size", "50", "--lr", "5e-3", "--valid-limit", "500", "--test-limit", "500",
                      "--n-samples", "16", "--no-progress", "--out", str(out), "--figures", str(figures))
    assert result.returncode == 0, result.stderr[-3000:]
    nll = float(re.search(r"^test NLL ([\d.]+) nats", result.stdout, re.M).group(1))
    baseline = float(re.search(r"^independent-pixel baseline on the same images: ([\d.]+) nats",
                               result.stdout, re.M).group(1))
    assert nll < baseline - 20, result.stdout
    for path in (out / "samples.png", out / "curves.png", figures / "made_samples.png", figures / "made_curves.png"):
        assert path.read_bytes()[:4] == b"\x89PNG", path
    results = json.loads((out / "results.json").read_text())
    assert results["test"]["nll"] == pytest.approx(nll, abs=0.01)
    # the checkpoint can be evaluated and sampled from the command line
    result = _run_cli("evaluate", "made", "--impl", "solution", "--checkpoint", str(out / "best.pt"), "--limit", "500")
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(re.search(r"test NLL ([\d.]+) nats", result.stdout).group(1)) == pytest.approx(nll, abs=0.01)
    result = _run_cli("sample", "made", "--impl", "solution", "--checkpoint", str(out / "best.pt"), "--n", "4",
                      "--out", str(tmp_path / "four.png"))
    assert result.returncode == 0 and (tmp_path / "four.png").exists(), result.stderr[-3000:]


def test_sampling_progress_counts_the_forward_passes():
    from src.models import forward_progress, sample_images, sampling_passes

    made = build_model("made", IMPL, hidden_sizes=[8])
    pcnn = build_model("pixelcnn_color", IMPL, channels=6, num_blocks=0, kernel_size=3, levels=2)
    assert sampling_passes(made) == 784 and sampling_passes(pcnn) == 3 * 784
    with forward_progress(made, sampling_passes(made), "test") as bar:
        images = sample_images(made, 2, progress=True)  # a second bar inside: both hooks count
    assert bar.n == 784  # the passes of the model's own sample()
    assert not made._forward_hooks, "the hooks must be removed"
    assert images.shape == (2, 1, 28, 28) and set(images.unique().tolist()) <= {0.0, 1.0}  # outputs left alone


def _copy_without_solution(tmp_path):
    """src/ and submission/ alone, as in the students' bundle (no solution/)."""
    for folder in ("src", "submission"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _run_cli_in(folder, *args):
    env = {**ENV, "PYTHONPATH": str(folder)}
    return subprocess.run([sys.executable, "-m", "src", *args], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_help_without_solution_names_no_staff_thing(monkeypatch):
    monkeypatch.setattr(cli, "AVAILABLE_IMPLS", ("submission",))  # what the students' bundle has
    parser = cli.build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, subparser in {"": parser, **subcommands}.items():
        text = subparser.format_help()
        assert "--impl" not in text and "solution" not in text and "staff" not in text, name
    assert parser.parse_args(["sample", "made", "--checkpoint", "x.pt"]).impl == "submission"


def test_cli_without_solution_offers_no_impl_and_reports_syntax_errors_in_one_line(tmp_path):
    copy = _copy_without_solution(tmp_path)
    result = _run_cli_in(copy, "train", "-h")
    assert result.returncode == 0 and "--impl" not in result.stdout, result.stderr
    made = copy / "submission" / "made.py"
    lines = made.read_text().splitlines(keepends=True)
    lineno = next(i for i, line in enumerate(lines, 1) if "raise NotImplementedError" in line)
    indent = lines[lineno - 1][:len(lines[lineno - 1]) - len(lines[lineno - 1].lstrip())]
    lines[lineno - 1] = f"{indent}h = max((1, 2)\n"
    made.write_text("".join(lines))
    result = _run_cli_in(copy, "train", "made")
    assert result.returncode == 2 and result.stdout == "", result.stderr
    err = result.stderr.splitlines()
    assert len(err) <= 3 and "Traceback" not in result.stderr, result.stderr
    assert err[0] == f"python -m src train: error: submission/made.py, line {lineno}: '(' was never closed", err


def test_cli_train_refuses_to_replace_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"an earlier run")
    code, err = _main(["train", "made", "--impl", "solution", "--out", str(out)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (out / "last.pt").read_bytes() == b"an earlier run"
    code, err = _main(["train", "made", "--resume", "--overwrite"], capsys)
    assert code == 2 and "not allowed with" in err
    _data_or_skip()
    (out / "receptive_field.png").write_bytes(b"stale")  # not written by a MADE run: --overwrite removes it
    code, err = _main(["train", "made", "--impl", "solution", "--out", str(out), "--overwrite", "--hidden", "8",
                       "--epochs", "1", "--train-limit", "20", "--valid-limit", "20", "--test-limit", "20",
                       "--n-samples", "1", "--no-progress"], capsys)
    assert code == 0, err
    assert load_checkpoint(out / "last.pt")["epoch"] == 1 and not (out / "receptive_field.png").exists()


def test_cli_receptive_field_says_what_it_plots(tmp_path, capsys, monkeypatch):
    import matplotlib.figure

    figures, save = [], matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, *args, **kwargs: (figures.append(fig), save(fig, *args, **kwargs))[1])
    assert cli.main(["receptive-field", "pixelcnn", "--impl", "solution", "--out", str(tmp_path / "a.png")]) == 0
    out = capsys.readouterr().out
    preset = cli.PRESETS["pixelcnn"]["quick"]["hparams"]
    assert f"untrained pixelcnn (channels={preset['channels']}, num_blocks={preset['num_blocks']}" in out, out
    assert "--checkpoint" in out
    assert "untrained pixelcnn" in figures[-1]._suptitle.get_text()
    heat_map = figures[-1].axes[0]
    assert {0, 14, 27} <= set(heat_map.get_xticks()) and {0, 14, 27} <= set(heat_map.get_yticks())
    assert heat_map.get_xlabel() == "column" and heat_map.get_ylabel() == "row"

    from src.train import model_state, save_atomic

    hparams = {"channels": 8, "num_blocks": 1, "kernel_size": 5}
    checkpoint = tmp_path / "best.pt"
    save_atomic({**model_state(build_model("pixelcnn", IMPL, **hparams)), "config": {"model": "pixelcnn",
                                                                                      "hparams": hparams}}, checkpoint)
    args = ["receptive-field", "pixelcnn", "--impl", "solution", "--checkpoint", str(checkpoint),
            "--out", str(tmp_path / "b.png")]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert f"trained in {checkpoint} (channels=8, num_blocks=1, kernel_size=5)" in out and "untrained" not in out
    assert str(checkpoint) in figures[-1]._suptitle.get_text()
    code, err = _main(args + ["--channels", "16"], capsys)
    assert code == 2 and "a checkpoint has its own size" in err


# --------------------------------------------------------------------------- interrupts and resumes


class _InterruptingLoader:
    """``loader``, but Ctrl-C (KeyboardInterrupt) when batch number ``at`` (counted over all epochs) is due."""

    def __init__(self, loader, at):
        self.loader, self.at, self.count = loader, at, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            self.count += 1
            if self.count == self.at:
                raise KeyboardInterrupt
            yield batch


def _interrupted_run(tmp_path, at, epochs=3, resume=False):
    torch.manual_seed(0)
    model = build_model("made", IMPL, hidden_sizes=[16])
    messages = []
    train_loader = _InterruptingLoader(_loader("made", _toy_images(32, seed=1), 16, shuffle=True), at)
    with pytest.raises(KeyboardInterrupt):
        train(model, train_loader, _loader("made", _toy_images(16, seed=2), 16, shuffle=False), epochs=epochs,
              lr=1e-3, out_dir=tmp_path / "run", device="cpu", resume=resume, progress=False, log=messages.append,
              config={"model": "made"})
    return messages[-1]


def test_an_interrupt_says_what_was_saved(tmp_path):
    # Ctrl-C in epoch 1: no checkpoint yet, and the message must not promise one
    message = _interrupted_run(tmp_path, at=2)
    assert "during epoch 1" in message and "nothing of this run was saved" in message, message
    assert not (tmp_path / "run" / "last.pt").exists() and "--resume" not in message
    # Ctrl-C in epoch 2 (two batches per epoch): last.pt holds epoch 1, as the message says
    message = _interrupted_run(tmp_path, at=4)
    assert "during epoch 2" in message and "holds the state after epoch 1" in message, message
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1
    # resumed, then interrupted before its first new epoch ends: still the epoch on disk
    message = _interrupted_run(tmp_path, at=1, resume=True)
    assert "during epoch 2" in message and "holds the state after epoch 1" in message, message


def test_a_resumed_run_adds_up_its_time(tmp_path, capsys):
    _data_or_skip()
    import time

    out = tmp_path / "run"
    small = ["train", "made", "--impl", "solution", "--out", str(out), "--hidden", "8", "--train-limit", "100",
             "--valid-limit", "50", "--test-limit", "50", "--n-samples", "1", "--no-progress"]
    assert cli.main(small + ["--epochs", "1"]) == 0
    first = json.loads((out / "results.json").read_text())
    assert load_checkpoint(out / "last.pt")["wall_seconds"] <= first["wall_seconds"]
    started = time.perf_counter()
    assert cli.main(small + ["--epochs", "2", "--resume"]) == 0
    second_session = time.perf_counter() - started
    second = json.loads((out / "results.json").read_text())
    assert 0 < second["wall_seconds"] - first["wall_seconds"] <= second_session  # the first session counts too
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert second["train_seconds"] == pytest.approx(sum(h["seconds"] for h in history))
    assert "for the whole run, all its sessions" in capsys.readouterr().out


def test_cli_debug_after_the_subcommand_and_hints_name_the_subcommand(capsys):
    parser = cli.build_parser()
    assert parser.parse_known_args(["check", "pixelcnn", "--debug"])[0].debug is True
    assert parser.parse_known_args(["check", "pixelcnn"])[0].debug is False
    code, err = _main(["train", "made", "--hiden", "100"], capsys)
    assert code == 2 and err.strip() == ("python -m src train: error: unrecognized arguments: --hiden 100 "
                                         "(see python -m src train -h)"), err


def test_cli_figures_copies_what_the_runs_have(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _main(["figures"], capsys)
    assert code == 2 and "train first" in err and len(err.strip().splitlines()) == 1, err
    for name in ("samples.png", "curves.png"):
        plots.save_sample_grid(torch.rand(1, 784), tmp_path / "runs" / "made" / name)
    assert cli.main(["figures"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "written" / "figures").iterdir()) == ["made_curves.png",
                                                                                  "made_samples.png"]
    assert (tmp_path / "written" / "figures" / "made_samples.png").read_bytes() == \
        (tmp_path / "runs" / "made" / "samples.png").read_bytes()
    assert "not in runs/pixelcnn/ yet (python -m src train pixelcnn writes them)" in out, out


def test_cli_receptive_field_names_its_file_after_the_model(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["receptive-field", "pixelcnn", "--impl", "solution", "--channels", "4", "--blocks", "0"]) == 0
    assert cli.main(["receptive-field", "made", "--impl", "solution"]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["receptive_field_made.png",
                                                                    "receptive_field_pixelcnn.png"]
# --------------------------------------------------------------------------- memory of a laptop run

def _peak_rss_mb(command, tmp_path, name):
    """Run ``command`` in the repository and return the peak resident size of that process (MB)."""
    with open(tmp_path / f"{name}.log", "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, (tmp_path / f"{name}.log").read_text()[-2000:]
    return usage.ru_maxrss / 1024  # KB on Linux


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 (Linux, macOS)")
def test_training_memory_stays_near_a_minimal_loop(tmp_path):
    """A small library run needs at most 1.1 times the memory of tools/minimal_made_loop.py doing the
    same work (a ratio measured in the same test).  Before the fix: whole splits converted to float32
    and sliced, and a one-hot int64 copy of the training images for the baseline (1.57 times)."""
    size = ["--train-limit", "20000", "--test-limit", "2000", "--hidden", "100", "--max-steps", "20",
            "--n-samples", "4"]
    minimal = _peak_rss_mb([sys.executable, "tools/minimal_made_loop.py", *size], tmp_path, "minimal")
    library = _peak_rss_mb([sys.executable, "-m", "src", "train", "made", "--impl", IMPL, *size, "--epochs", "1",
                            "--valid-limit", "500", "--out", str(tmp_path / "run"), "--no-progress"],
                           tmp_path, "library")
    assert library <= 1.1 * minimal, f"library run {library:.0f} MB, minimal loop {minimal:.0f} MB"
