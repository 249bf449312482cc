"""Command line: ``python -m src SUBCOMMAND ...`` (``python -m src -h`` lists them).

    python -m src train made                      # quick CPU run (about a minute)
    python -m src train made --full --device cuda # the full-data run (meant for a GPU)
    python -m src train pixelcnn --resume         # continue an interrupted run
    python -m src train pixelcnn --overwrite      # start runs/pixelcnn/ again from scratch
    python -m src evaluate made --checkpoint runs/made/best.pt
    python -m src evaluate made --checkpoint runs/made_masks4/best.pt --num-masks 1   # one mask set of four
    python -m src figures                         # copy the runs' figures into written/figures/ (the PDF's)
    python -m src sample pixelcnn --checkpoint runs/pixelcnn/best.pt --n 16
    python -m src receptive-field pixelcnn --checkpoint runs/pixelcnn/best.pt --pixel 14 14
    python -m src baseline

Without ``--full`` a run uses a small slice of MNIST and a small model; every
option given on the command line overrides the preset (``PRESETS`` below).  A run
folder (``--out``, default ``runs/MODEL`` or ``runs/MODEL_full``) receives
``best.pt``, ``last.pt``, ``history.json``, ``results.json``, ``samples.png`` and
``curves.png`` (and ``receptive_field.png`` for a PixelCNN); ``train`` refuses a
folder that already holds a run unless ``--resume`` or ``--overwrite`` is given.

Errors that are not bugs (bad arguments, missing data set, missing checkpoint,
unfinished stubs, a syntax error in your code) print one line on stderr (a syntax
error also the line of code) and exit with status 2; ``--debug`` shows the full
traceback instead.
"""
import argparse
import json
import shutil
import sys
import time
import traceback
from pathlib import Path

from .models import IMPLS, MODEL_NAMES, ROOT, ImplConflictError

EXIT_USAGE = 2
IMPL_FOLDERS = tuple(ROOT / impl for impl in IMPLS)  # a traceback frame in one of them is the student's code
# BEGIN STAFF ONLY (tools/build_release.py leaves this out of the students' copy, which has one implementation)
#: the implementations present in this copy (``--impl`` is offered only when there is a choice)
AVAILABLE_IMPLS = tuple(impl for impl in IMPLS if (ROOT / impl).is_dir())
# END STAFF ONLY

#: Settings of the runs.  "quick": small model, slice of MNIST, about a minute on
#: a 2-core CPU.  "full": all of MNIST, sized for a GPU.  ``None`` limit = whole split.
PRESETS = {
    "made": {
        "quick": {"hparams": {"hidden_sizes": [500], "num_masks": 1, "natural_ordering": True},
                  "train_limit": 10000, "valid_limit": 2000, "test_limit": 2000,
                  "epochs": 12, "batch_size": 100, "lr": 3e-3, "lr_decay": 1.0, "patience": 3, "n_samples": 64},
        # the reference reaches test NLL 87.30 nats (early stop after 16 epochs, about a minute on a GPU);
        # without --ema/--weight-decay the same model overfits after 7 epochs (89.43 nats)
        "full": {"hparams": {"hidden_sizes": [8000], "num_masks": 1, "natural_ordering": True},
                 "train_limit": None, "valid_limit": None, "test_limit": None,
                 "epochs": 50, "batch_size": 100, "lr": 1e-3, "lr_decay": 1.0, "weight_decay": 0.1, "ema": 0.999,
                 "patience": 5, "n_samples": 64},
    },
    "pixelcnn": {
        "quick": {"hparams": {"channels": 32, "num_blocks": 4, "kernel_size": 7},
                  "train_limit": 4000, "valid_limit": 1000, "test_limit": 1000,
                  "epochs": 3, "batch_size": 50, "lr": 2e-3, "lr_decay": 1.0, "patience": 3, "n_samples": 16},
        # the reference reaches test NLL 82.22 nats after 28 epochs (about 13 s per epoch on a fast GPU)
        "full": {"hparams": {"channels": 128, "num_blocks": 20, "kernel_size": 7},
                 "train_limit": None, "valid_limit": None, "test_limit": None,
                 "epochs": 80, "batch_size": 100, "lr": 1e-3, "lr_decay": 0.93, "patience": 6, "n_samples": 64},
    },
    "pixelcnn_color": {
        # 9 samples: drawing them takes 3 * 784 forward passes, about as long as the training
        "quick": {"hparams": {"channels": 36, "num_blocks": 4, "kernel_size": 7, "levels": 4},
                  "train_limit": 3000, "valid_limit": 1000, "test_limit": 1000,
                  "epochs": 3, "batch_size": 50, "lr": 2e-3, "lr_decay": 1.0, "patience": 3, "n_samples": 9},
        "full": {"hparams": {"channels": 120, "num_blocks": 12, "kernel_size": 7, "levels": 4},
                 "train_limit": None, "valid_limit": None, "test_limit": None,
                 "epochs": 50, "batch_size": 100, "lr": 1e-3, "lr_decay": 1.0, "patience": 5, "n_samples": 64},
    },
}

#: where the written part (written/main.tex) reads its figures, and which file of a run each one is
WRITTEN_FIGURES = Path("written/figures")
FIGURE_FILES = {"made": {"made_samples.png": "samples.png", "made_curves.png": "curves.png"},
                "pixelcnn": {"pixelcnn_samples.png": "samples.png", "pixelcnn_curves.png": "curves.png",
                             "receptive_field.png": "receptive_field.png"}}

# command-line option -> hyper-parameter name
HPARAM_OPTIONS = {"hidden": "hidden_sizes", "num_masks": "num_masks", "natural_ordering": "natural_ordering",
                  "channels": "channels", "blocks": "num_blocks", "kernel_size": "kernel_size", "levels": "levels"}
# settings that may change when a run is resumed; the others come from the checkpoint
RESUMABLE = ("epochs", "patience", "max_steps", "n_samples", "lr", "lr_decay", "weight_decay")


class UsageError(Exception):
    """A mistake on the command line: reported in one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def _number(kind, accept, expected):
    """An argparse ``type``: ``kind(text)`` if ``accept`` holds for it, else a one-line error."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_positive_float = _number(float, lambda v: v > 0, "a positive number")
_non_negative_float = _number(float, lambda v: v >= 0, "a number >= 0")
_decay = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
_ema_decay = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")


def _presets_text():
    lines = ["presets (an option given on the command line wins; limits: first N images of each split):"]
    for model, presets in PRESETS.items():
        for kind, preset in presets.items():
            hp = ", ".join(f"{k}={v}" for k, v in preset["hparams"].items())
            data = "all of MNIST" if preset["train_limit"] is None else (
                f"{preset['train_limit']}/{preset['valid_limit']}/{preset['test_limit']} train/valid/test images")
            lines.append(f"  {model} {'--full' if kind == 'full' else '(default)'}: {hp}; {data}; "
                         f"epochs={preset['epochs']}, batch={preset['batch_size']}, lr={preset['lr']} "
                         f"(x{preset['lr_decay']}/epoch), "
                         + (f"weight decay={preset['weight_decay']}, " if preset.get("weight_decay") else "")
                         + (f"ema={preset['ema']}, " if preset.get("ema") else "") +
                         f"patience={preset['patience']}, samples={preset['n_samples']}")
    return "\n".join(lines)


def build_parser():
    parser = OneLineParser(prog="python -m src", description="Problem Set 1: autoregressive models on MNIST.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p, device=True):
        p.set_defaults(impl="submission")
        # also after the subcommand (SUPPRESS: absent, it leaves the main parser's value alone)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks instead of one-line errors")
        # BEGIN STAFF ONLY
        if len(AVAILABLE_IMPLS) > 1:
            p.add_argument("--impl", choices=AVAILABLE_IMPLS, default="submission",
                           help="whose code to run: your submission/ (default) or the staff solution/")
        # END STAFF ONLY
        if device:
            p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                           help="auto = cuda if available (default)")

    p = sub.add_parser("train", help="train a model (quick CPU preset, or --full)",
                       epilog=_presets_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=MODEL_NAMES)
    common(p)
    p.add_argument("--full", action="store_true", help="full MNIST and the full-size model (meant for a GPU)")
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--train-limit", type=_positive_int, help="use only the first N training images")
    p.add_argument("--valid-limit", type=_positive_int, help="use only the first N validation images")
    p.add_argument("--test-limit", type=_positive_int, help="use only the first N test images")
    p.add_argument("--max-steps", type=_positive_int, help="stop after this many optimisation steps in all")
    p.add_argument("--lr", type=_positive_float, help="Adam learning rate")
    p.add_argument("--lr-decay", type=_decay, help="multiply the learning rate by this after every epoch")
    p.add_argument("--weight-decay", type=_non_negative_float, help="AdamW's decoupled weight decay (0 = Adam)")
    p.add_argument("--ema", type=_ema_decay, metavar="DECAY",
                   help="validate and keep a moving average of the weights, e.g. 0.999")
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--patience", type=_positive_int, help="early stopping after N epochs without improvement")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation, shuffling and samples")
    g = p.add_argument_group("MADE")
    g.add_argument("--hidden", type=_positive_int, nargs="+", metavar="H", help="hidden layer sizes, e.g. 500 500")
    g.add_argument("--num-masks", type=_positive_int, help="number of mask sets (order-agnostic training if > 1)")
    g.add_argument("--natural-ordering", dest="natural_ordering", action="store_true", default=None,
                   help="pixels in raster order")
    g.add_argument("--random-ordering", dest="natural_ordering", action="store_false",
                   help="a random ordering for each mask set")
    g = p.add_argument_group("PixelCNN")
    g.add_argument("--channels", type=_positive_int)
    g.add_argument("--blocks", type=int, help="number of residual blocks")
    g.add_argument("--kernel-size", type=_positive_int, help="kernel of the first (type A) convolution, odd")
    g.add_argument("--levels", type=_positive_int, help="intensity levels per colour (pixelcnn_color)")
    g = p.add_argument_group("output")
    g.add_argument("--out", type=Path, help="run folder (default runs/MODEL, or runs/MODEL_full)")
    again = g.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out (without --resume or --overwrite, train refuses a folder "
                            "that already holds a run)")
    g.add_argument("--figures", type=Path, metavar="DIR",
                   help="also copy the figures here, as `python -m src figures --out DIR` does")
    g.add_argument("--n-samples", type=_positive_int, help="number of samples drawn at the end")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser("evaluate", help="NLL and bits/dim of a checkpoint on a data split")
    p.add_argument("model", choices=MODEL_NAMES)
    p.add_argument("--checkpoint", type=Path, required=True)
    common(p)
    p.add_argument("--split", choices=["train", "valid", "test"], default="test")
    p.add_argument("--limit", type=_positive_int, help="use only the first N images of the split")
    p.add_argument("--num-masks", type=_positive_int, metavar="K",
                   help="MADE trained with M mask sets: evaluate with K of them (1: the mask set in use alone; "
                        "default: the ensemble of all M)")
    p.add_argument("--batch-size", type=_positive_int, default=500)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG grid")
    p.add_argument("model", choices=MODEL_NAMES)
    p.add_argument("--checkpoint", type=Path, required=True)
    common(p)
    p.add_argument("--n", type=_positive_int,
                   help="number of samples (default: as many as the run drew, e.g. 16 for pixelcnn; the time "
                        "grows with n: D forward passes of a batch of n for MADE, H*W*C for PixelCNN)")
    p.add_argument("--nrow", type=_positive_int, help="images per row (default: about sqrt(n))")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="PNG to write (default: samples_N.png beside the checkpoint)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("receptive-field", help="which input pixels a PixelCNN (or MADE) conditional sees")
    p.add_argument("model", nargs="?", default="pixelcnn", choices=MODEL_NAMES)
    p.add_argument("--checkpoint", type=Path,
                   help="trained weights, e.g. runs/pixelcnn/best.pt (default: an untrained model of the "
                        "default run's size; the masks alone decide what it can see)")
    common(p)
    p.add_argument("--pixel", type=int, nargs=2, default=[14, 14], metavar=("ROW", "COL"))
    p.add_argument("--channel", type=int, default=0, help="colour whose conditional is shown (pixelcnn_color)")
    p.add_argument("--channels", type=_positive_int, help="untrained model's size (default: the default run's)")
    p.add_argument("--blocks", type=int)
    p.add_argument("--kernel-size", type=_positive_int)
    p.add_argument("--out", type=Path, help="PNG to write (default: runs/receptive_field_MODEL.png)")

    p = sub.add_parser("figures", help="copy the figures of your runs into written/figures/ for the PDF "
                                       "(no training, in a second)")
    p.add_argument("--made", type=Path, default=Path("runs/made"), metavar="RUN",
                   help="MADE run folder (default runs/made)")
    p.add_argument("--pixelcnn", type=Path, default=Path("runs/pixelcnn"), metavar="RUN",
                   help="PixelCNN run folder (default runs/pixelcnn)")
    p.add_argument("--out", type=Path, default=WRITTEN_FIGURES, metavar="DIR",
                   help=f"where the PDF reads them (default {WRITTEN_FIGURES})")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks instead of one-line errors")

    p = sub.add_parser("check", help="is your model autoregressive? pictures of which outputs depend on which inputs")
    p.add_argument("model", choices=["made", "pixelcnn"], help="pixelcnn also checks the colour model once 3e runs")
    common(p, device=False)
    p.add_argument("--out", type=Path, default=Path("runs/check"), metavar="DIR",
                   help="folder of the pictures (default runs/check)")

    p = sub.add_parser("baseline", help="NLL of the independent-pixel and uniform baselines")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks instead of one-line errors")
    p.add_argument("--data", choices=["binary", "color"], default="binary",
                   help="binarised MNIST (default) or coloured MNIST")
    p.add_argument("--levels", type=_positive_int, default=4, help="levels of coloured MNIST")
    p.add_argument("--train-limit", type=_positive_int, help="fit on the first N training images only")
    p.add_argument("--test-limit", type=_positive_int, help="evaluate on the first N test images only")
    return parser


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def load_images(model, split, limit=None, levels=4):
    """Images of one split for ``model``: float32 (N,1,28,28) binarised, or int64 (N,3,28,28) coloured."""
    from . import data

    # the limit goes to the data module, which converts only those images (a slice of the whole split
    # would keep all of it in memory: 157 MB of float32 for binarised MNIST's training split)
    if model == "pixelcnn_color":
        x = data.colored_mnist(split, levels=levels, limit=limit)
    else:
        x = data.binarized_mnist(split, limit=limit)
    if isinstance(x, (tuple, list)):
        x = x[0]
    return x


def make_loader(model, images, batch_size, shuffle, seed=0):
    """A DataLoader over ``images`` that yields batches in ``model``'s input format."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from .models import AdaptedLoader

    generator = torch.Generator().manual_seed(seed) if shuffle else None
    loader = DataLoader(TensorDataset(images), batch_size=batch_size, shuffle=shuffle, generator=generator)
    return AdaptedLoader(loader, model)


# ---------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------

def _json_default(value):
    return value.item() if hasattr(value, "item") else str(value)


def _write_json(obj, path):
    Path(path).write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _resolve_settings(args):
    """Preset, then the options given on the command line (and the checkpoint's, on --resume)."""
    preset = PRESETS[args.model]["full" if args.full else "quick"]
    settings = {k: v for k, v in preset.items() if k != "hparams"}
    settings.update(model=args.model, impl=args.impl, full=args.full, seed=args.seed, max_steps=None,
                    hparams=dict(preset["hparams"]))
    given = {k: getattr(args, k) for k in ("epochs", "train_limit", "valid_limit", "test_limit", "max_steps",
                                           "lr", "lr_decay", "weight_decay", "ema", "batch_size", "patience",
                                           "n_samples")
             if getattr(args, k) is not None}
    given_hparams = {HPARAM_OPTIONS[k]: getattr(args, k) for k in HPARAM_OPTIONS if getattr(args, k) is not None}
    for key in given_hparams:
        if key not in preset["hparams"]:
            option = next(o for o, h in HPARAM_OPTIONS.items() if h == key).replace("_", "-")
            raise UsageError(f"--{option} does not apply to {args.model}")
    if args.blocks is not None and args.blocks < 0:
        raise UsageError("--blocks must be >= 0")
    out = args.out or Path("runs") / (args.model + ("_full" if args.full else ""))
    last = out / "last.pt"
    if args.resume and last.exists():
        from .train import load_checkpoint

        saved = load_checkpoint(last).get("config") or {}
        if saved.get("model") != args.model:
            raise UsageError(f"{last} is a {saved.get('model')} run, not {args.model}")
        for key, value in list(given.items()) + [(f"hparams.{k}", v) for k, v in given_hparams.items()]:
            old = saved["hparams"].get(key[8:]) if key.startswith("hparams.") else saved.get(key)
            if key not in RESUMABLE and value != old and not (isinstance(old, list) and list(value) == old):
                raise UsageError(f"cannot change {key} when resuming (the run has {old!r}, asked for {value!r})")
        settings = {**saved, **{k: v for k, v in given.items() if k in RESUMABLE}}
    else:
        settings.update(given)
        settings["hparams"].update(given_hparams)
    settings["hparams"] = {k: list(v) if isinstance(v, tuple) else v for k, v in settings["hparams"].items()}
    return settings, out


#: what ``train`` writes into a run folder (``--overwrite`` deletes exactly these)
RUN_FILES = ("best.pt", "last.pt", "history.json", "results.json", "samples.png", "curves.png",
             "receptive_field.png")


def _run_files(out, args):
    """The files of an earlier run in ``out`` that this run replaces: refused (one line) unless
    ``--resume`` (none are replaced) or ``--overwrite`` is given."""
    held = [name for name in RUN_FILES if (out / name).exists()]
    if args.resume or not held:
        return []
    if not args.overwrite:
        raise UsageError(f"{out} already holds a run ({', '.join(held)}): add --resume to continue it, "
                         f"--overwrite to replace it, or --out DIR to start another")
    return held


def cmd_train(args):
    import torch

    from . import plots
    from .models import build_model, sample_images
    from .train import (
        evaluate,
        independent_pixel_baseline,
        make_generator,
        resolve_device,
        train,
    )

    start = time.perf_counter()
    settings, out = _resolve_settings(args)
    replaced = _run_files(out, args)
    before = _earlier_wall_seconds(out) if args.resume else 0.0
    device = resolve_device(args.device)
    if str(device).startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest convolutions
    name, hp = args.model, dict(settings["hparams"])
    levels = hp.get("levels", 4)
    model_hparams = dict(hp)
    if name == "made":
        model_hparams["seed"] = settings["seed"]
    torch.manual_seed(settings["seed"])
    model = build_model(name, settings["impl"], **model_hparams)
    n_params = sum(p.numel() for p in model.parameters())

    train_x = load_images(name, "train", settings["train_limit"], levels)
    valid_x = load_images(name, "valid", settings["valid_limit"], levels)
    test_x = load_images(name, "test", settings["test_limit"], levels)
    bs = settings["batch_size"]
    train_loader = make_loader(name, train_x, bs, shuffle=True, seed=settings["seed"])
    valid_loader = make_loader(name, valid_x, max(bs, 500), shuffle=False)
    test_loader = make_loader(name, test_x, max(bs, 500), shuffle=False)
    print(f"{name} ({settings['impl']}, {n_params:,} parameters, {hp}) on {device}: "
          f"{len(train_x)} train / {len(valid_x)} valid / {len(test_x)} test images -> {out}")
    if getattr(model, "num_masks", 1) > 1:
        print(f"each step trains one mask set; validation and test use the ensemble of all {model.num_masks} "
              f"(evaluate --num-masks 1: one mask set alone)")
    for file_name in replaced:
        (out / file_name).unlink()

    history = train(model, train_loader, valid_loader, epochs=settings["epochs"], lr=settings["lr"],
                    lr_decay=settings.get("lr_decay", 1.0), weight_decay=settings.get("weight_decay", 0.0),
                    ema_decay=settings.get("ema"),
                    out_dir=out, patience=settings["patience"], max_steps=settings["max_steps"], device=device,
                    resume=args.resume, config=settings, progress=not args.no_progress,
                    wall_clock=lambda: before + time.perf_counter() - start)

    progress = not args.no_progress
    result = evaluate(model, test_loader, settings["impl"], progress=progress)
    baseline = independent_pixel_baseline(train_x, test_x, num_levels=levels if name == "pixelcnn_color" else 2)
    figures = {"samples": out / "samples.png", "curves": out / "curves.png"}
    generator = make_generator(device, settings["seed"])
    n = settings["n_samples"]
    nrow = max(1, round(n ** 0.5))
    plots.save_sample_grid(sample_images(model, n, generator=generator, progress=progress), figures["samples"],
                           nrow=nrow)
    plots.plot_learning_curves(history, figures["curves"], num_dims=test_x[0].numel(),
                               title=f"{name} ({settings['impl']})")
    if name != "made":
        figures["receptive_field"] = plots.plot_receptive_field(model, (28, 28), (14, 14),
                                                                out / "receptive_field.png",
                                                                title=f"trained {name} ({out / 'best.pt'})")
    if args.figures is not None and name in FIGURE_FILES:
        copy_figures(name, out, args.figures)

    seconds = time.perf_counter() - start
    train_seconds = sum(h["seconds"] for h in history)
    results = {"model": name, "impl": settings["impl"], "parameters": n_params, "test_images": len(test_x),
               "test": result, "independent_pixel_baseline": baseline,
               "best_epoch": min(history, key=lambda h: h["valid_nll"])["epoch"] if history else None,
               "epochs_run": len(history), "train_seconds": train_seconds, "wall_seconds": before + seconds}
    _write_json(history, out / "history.json")
    _write_json(results, out / "results.json")
    print(f"{_measured('test', model)} {result['nll']:.2f} nats ({result['bits_per_dim']:.4f} bits/dim) on "
          f"{len(test_x)} test images")
    print(f"independent-pixel baseline on the same images: {baseline['nll']:.2f} nats "
          f"({baseline['bits_per_dim']:.4f} bits/dim; fit on the {len(train_x)} training images of this run)")
    print(f"figures: {', '.join(str(p) for p in figures.values())}")
    if name in FIGURE_FILES and args.figures is None:
        command = "python -m src figures" + ("" if out == Path("runs") / name else f" --{name} {out}")
        print(f"for the written part: {command} copies them into {WRITTEN_FIGURES}/")
    resumed = f"; {before + seconds:.0f} s for the whole run, all its sessions" if before else ""
    print(f"training time: {train_seconds:.1f} s for {len(history)} epoch(s) (training and validation; "
          f"history.json has each epoch's)")
    print(f"done in {seconds:.0f} s{resumed}")
    return 0


def _earlier_wall_seconds(out):
    """Wall time of the earlier sessions of the run in ``out``: the larger of what its last.pt (saved after
    every epoch) and its results.json (written at the end of a session) say, 0 if neither does."""
    from .train import load_checkpoint

    seen = [0.0]
    if (out / "last.pt").exists():
        seen.append(float(load_checkpoint(out / "last.pt").get("wall_seconds", 0.0)))
    try:
        seen.append(float(json.loads((out / "results.json").read_text())["wall_seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return max(seen)


def _load_trained(args):
    """Rebuild the model of a checkpoint written by ``train`` and load its weights."""
    from .models import build_model
    from .train import load_checkpoint, load_model_state, resolve_device

    if not args.checkpoint.is_file():
        raise UsageError(f"no checkpoint at {args.checkpoint}")
    device = resolve_device(args.device)
    ckpt = load_checkpoint(args.checkpoint)
    config = ckpt.get("config") or {}
    if config.get("model", args.model) != args.model:
        raise UsageError(f"{args.checkpoint} holds a {config['model']} model, not {args.model}")
    hparams = dict(config.get("hparams", {}))
    if args.model == "made" and "seed" in config:
        hparams["seed"] = config["seed"]
    model = build_model(args.model, args.impl, **hparams)
    load_model_state(model, ckpt)
    return model.to(device).eval(), config


def _measured(split, model):
    """What an NLL line measured: ``test NLL``, or ``test NLL, ensemble of 4 mask sets:`` for a MADE with
    several mask sets, ``test NLL, mask set 3 alone (of 4):`` for one of them."""
    used, trained = getattr(model, "num_masks", 1), getattr(model, "trained_num_masks", None)
    if used > 1:
        return f"{split} NLL, ensemble of {used} mask sets" + (f" (of {trained})" if trained else "") + ":"
    if trained and trained > 1:
        return f"{split} NLL, mask set {getattr(model, 'mask_index', '?')} alone (of {trained}):"
    return f"{split} NLL"


def cmd_evaluate(args):
    from .train import evaluate

    model, config = _load_trained(args)
    if args.num_masks is not None:
        available = getattr(model, "num_masks", None)
        if args.model != "made" or available is None:
            raise UsageError("--num-masks applies to made only")
        if args.num_masks > available:
            raise UsageError(f"--num-masks {args.num_masks}: {args.checkpoint} was trained with {available} "
                             f"mask set(s)")
        if args.num_masks != available:
            model.trained_num_masks, model.num_masks = available, args.num_masks
    levels = config.get("hparams", {}).get("levels", 4)
    x = load_images(args.model, args.split, args.limit, levels)
    result = evaluate(model, make_loader(args.model, x, args.batch_size, shuffle=False), args.impl,
                      progress=not args.no_progress)
    print(f"{_measured(args.split, model)} {result['nll']:.2f} nats ({result['bits_per_dim']:.4f} bits/dim) "
          f"on {len(x)} images")
    return 0


def copy_figures(model, run, out, log=print):
    """Copy the figures of the ``model`` run in folder ``run`` into ``out`` under the names the written part
    reads (``FIGURE_FILES``); returns the names of those that the run does not have."""
    missing = []
    for target, source in FIGURE_FILES[model].items():
        if (run / source).is_file():
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run / source, out / target)
            log(f"{run / source} -> {out / target}")
        else:
            missing.append(target)
    return missing


def cmd_figures(args):
    copied = 0
    for model, run in (("made", args.made), ("pixelcnn", args.pixelcnn)):
        missing = copy_figures(model, run, args.out)
        copied += len(FIGURE_FILES[model]) - len(missing)
        if missing:
            print(f"{', '.join(missing)}: not in {run}/ yet (python -m src train {model}"
                  + ("" if run == Path("runs") / model else f" --out {run}") + " writes them)")
    if not copied:
        raise UsageError(f"no run with figures in {args.made} or {args.pixelcnn}: train first "
                         "(python -m src train made, python -m src train pixelcnn)")
    print(f"copied {copied} figure(s) into {args.out}: rebuild the PDF (cd written && latexmk -pdf main.tex)")
    return 0


def cmd_sample(args):
    from . import plots
    from .models import sample_images
    from .train import make_generator

    model, config = _load_trained(args)
    n = args.n or config.get("n_samples") or 16
    generator = make_generator(next(model.parameters()).device, args.seed)
    out = args.out or args.checkpoint.parent / f"samples_{n}.png"
    nrow = args.nrow or max(1, round(n ** 0.5))
    plots.save_sample_grid(sample_images(model, n, generator=generator, progress=not args.no_progress), out,
                           nrow=nrow)
    print(f"wrote {n} samples to {out}")
    return 0


def cmd_receptive_field(args):
    import torch

    from . import plots
    from .models import build_model
    from .train import resolve_device

    sizes = {k: v for k, v in {"channels": args.channels, "num_blocks": args.blocks,
                               "kernel_size": args.kernel_size}.items() if v is not None}
    if args.checkpoint is not None:
        if sizes:
            raise UsageError("--channels/--blocks/--kernel-size size an untrained model; "
                             "a checkpoint has its own size")
        model, config = _load_trained(args)
        what = f"the {args.model} trained in {args.checkpoint} ({_hparams_text(config.get('hparams', {}))})"
    else:
        if args.model == "made" and sizes:
            raise UsageError("--channels/--blocks/--kernel-size do not apply to made")
        hparams = {**PRESETS[args.model]["quick"]["hparams"], **sizes}
        torch.manual_seed(0)
        model = build_model(args.model, args.impl, **hparams).to(resolve_device(args.device))
        what = (f"an untrained {args.model} ({_hparams_text(hparams)}: "
                f"{'the size given' if sizes else 'the size of the default run'})")
    channels = getattr(model, "in_channels", 1)
    if not 0 <= args.channel < channels:
        raise UsageError(f"--channel must be in 0..{channels - 1} for {args.model}")
    out = args.out or Path("runs") / f"receptive_field_{args.model}.png"
    path = plots.plot_receptive_field(model, (28, 28), tuple(args.pixel), out, channel=args.channel,
                                      title=what)
    print(f"receptive field of pixel {tuple(args.pixel)} of {what} -> {path}")
    if args.checkpoint is None:
        print(f"(what the masks allow, not what a trained model uses: add --checkpoint "
              f"runs/{args.model}/best.pt for your trained one)")
    return 0


def _hparams_text(hparams):
    return ", ".join(f"{k}={v}" for k, v in hparams.items())


def cmd_check(args):
    from .check import run

    return run(args.model, args.impl, args.out)


def cmd_baseline(args):
    from .train import independent_pixel_baseline, uniform_baseline

    model = "pixelcnn_color" if args.data == "color" else "pixelcnn"
    levels = args.levels if args.data == "color" else 2
    train_x = load_images(model, "train", args.train_limit, levels)
    test_x = load_images(model, "test", args.test_limit, levels)
    ind = independent_pixel_baseline(train_x, test_x, num_levels=levels)
    uni = uniform_baseline(test_x[0].numel(), levels)
    print(f"{'binarised' if args.data == 'binary' else 'coloured'} MNIST, {len(test_x)} test images "
          f"({test_x[0].numel()} dims, {levels} levels)")
    print(f"independent pixels (fit on {len(train_x)} training images): {ind['nll']:.2f} nats "
          f"({ind['bits_per_dim']:.4f} bits/dim)")
    print(f"uniform: {uni['nll']:.2f} nats ({uni['bits_per_dim']:.4f} bits/dim)")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample,
            "receptive-field": cmd_receptive_field, "baseline": cmd_baseline, "check": cmd_check,
            "figures": cmd_figures}


# ---------------------------------------------------------------------------
# Error reporting
# ---------------------------------------------------------------------------

def _impl_frame(tb):
    """The innermost traceback frame inside an implementation's folder (submission/, ...), if any."""
    found = None
    for frame, lineno in traceback.walk_tb(tb):
        path = Path(frame.f_code.co_filename).resolve()
        if path.parent in IMPL_FOLDERS:
            found = (frame, lineno, path)
    return found


def _one_line(text):
    return " ".join(str(text).split())


def _syntax_error_lines(error):
    """``submission/made.py, line 46: '(' was never closed`` and the line with a caret, for a
    syntax error in an implementation's file; None for one elsewhere."""
    path = Path(error.filename or "").resolve()
    if path.parent not in IMPL_FOLDERS:
        return None
    lines = [f"{path.parent.name}/{path.name}, line {error.lineno}: {error.msg}"]
    text = (error.text or "").rstrip("\n")
    if text.strip():
        indent = len(text) - len(text.lstrip())
        lines.append("    " + text.strip())
        if error.offset and error.offset > indent:
            lines.append("    " + " " * (error.offset - 1 - indent) + "^")
    return lines


def _subparser(parser, command):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]


def main(argv=None):
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the subcommand's parser, whose -h lists the options that exist
        _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(unknown)}")

    def fail(message):
        print(f"{parser.prog} {args.command}: error: {_one_line(message)}", file=sys.stderr)
        return EXIT_USAGE

    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - sorted below: known user errors become one line
        if args.debug:
            raise
        if isinstance(error, SyntaxError) and _syntax_error_lines(error):
            first, *code = _syntax_error_lines(error)
            status = fail(first)
            print("\n".join(code), file=sys.stderr)
            return status
        where = _impl_frame(error.__traceback__)
        if isinstance(error, NotImplementedError) and where is not None:
            frame, lineno, path = where
            return fail(f"{path.parent.name}/{path.name}: {frame.f_code.co_qualname} is not implemented yet "
                        f"(line {lineno})")
        if isinstance(error, (UsageError, ImplConflictError, FileNotFoundError)):
            return fail(error)  # FileNotFoundError covers src.data.DatasetMissingError
        if isinstance(error, ModuleNotFoundError) and error.name == "src.data":
            return fail("src/data.py (the data module) is missing")
        if isinstance(error, ValueError) and where is None:
            return fail(error)  # a bad hyper-parameter, checked by src/ (errors raised in your code keep their traceback)
        # your code mixing devices (on a GPU, or on the stand-in device of src/standin_device.py): one line
        from .standin_device import explain
        line = explain(error, [p for folder in IMPL_FOLDERS for p in folder.glob("*.py")])
        if line is not None:
            return fail(line)
        raise
