"""Turn a training run's ``best.pt`` into a small weights-only file that the library loads as it is.

    python tools/export_checkpoint.py RUN/best.pt staff/checkpoints/made_full.pt

The exported file is what ``python -m src evaluate/sample ... --checkpoint FILE``
reads (``src.train.load_checkpoint`` and ``load_model_state``, unchanged): a dict
with ``model`` (the state_dict), ``mask_index`` (MADE), ``config`` (the run's
settings: model name, hyper-parameters, seed), ``epoch`` and ``valid_nll`` of the
kept weights.  What it drops: nothing else is in a ``best.pt``; a ``last.pt``
(optimizer, moving average, RNG states) is refused, since its ``model`` is not
the validated weights when the run kept a moving average.

Storage: floating-point weights in float16 (``--dtype float32`` keeps them as
they are); ``load_state_dict`` copies them into the model's float32 parameters,
so evaluation runs in float32 on the rounded weights.  Masks (float buffers
named ``*mask`` holding only 0 and 1) are stored as bool, 1 byte an entry:
exact, and the file does not depend on how some implementation draws its
random mask degrees (rebuilding them from the seed would).
"""
import argparse
import hashlib
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from src.train import load_checkpoint, save_atomic  # noqa: E402

KEPT = ("model", "mask_index", "config", "epoch", "valid_nll")
DTYPES = {"float16": torch.float16, "float32": torch.float32}


def _is_mask(name, tensor):
    return (name.rsplit(".", 1)[-1] == "mask" and tensor.is_floating_point()
            and bool(((tensor == 0) | (tensor == 1)).all()))


def compact_state_dict(state_dict, dtype=torch.float16):
    """``state_dict`` with 0/1 masks as bool and the other floating tensors in ``dtype`` (others as they are)."""
    compact = {}
    for name, tensor in state_dict.items():
        if _is_mask(name, tensor):
            tensor = tensor.bool()
        elif tensor.is_floating_point():
            tensor = tensor.to(dtype)
        compact[name] = tensor.detach().cpu().clone()  # clone: a view would save its whole storage
    return compact


def export_checkpoint(source, target, dtype=torch.float16):
    """Write the weights-only export of the checkpoint ``source`` to ``target``; return the written dict."""
    checkpoint = load_checkpoint(source)
    if "optimizer" in checkpoint or "ema" in checkpoint:
        raise ValueError(f"{source} is a last.pt (training state); export the run's best.pt")
    if "model" not in checkpoint or "model" not in (checkpoint.get("config") or {}):
        raise ValueError(f"{source} is not a checkpoint written by `python -m src train` (no model or config)")
    exported = {key: checkpoint[key] for key in KEPT if key in checkpoint}
    exported["model"] = compact_state_dict(checkpoint["model"], dtype)
    save_atomic(exported, target)
    return exported


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a run's best.pt")
    parser.add_argument("target", type=Path, help="the file to write, e.g. staff/checkpoints/made_full.pt")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16",
                        help="storage of the floating-point weights (default float16)")
    args = parser.parse_args(argv)
    try:
        exported = export_checkpoint(args.source, args.target, DTYPES[args.dtype])
    except (ValueError, FileNotFoundError) as error:
        print(f"export_checkpoint: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.target}: {exported['config']['model']} of epoch {exported.get('epoch')} "
          f"(valid NLL {exported.get('valid_nll', float('nan')):.2f}), {args.target.stat().st_size / 1e6:.1f} MB, "
          f"sha256 {sha256(args.target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
