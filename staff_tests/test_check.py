"""Staff tests of ``python -m src check made|pixelcnn`` (src/check.py): the mask debugger students get.

* The reference passes (exit 0, "autoregressive: yes", the pictures are written); the stubs give
  the one-line "not implemented yet" error (exit 2, no traceback); a model with finished grey-scale
  masks but no colour masks (3e) is checked without its colour model.
* Mutation catalogue (staff_tests/mutants/q2.json, q3.json): which mutants break the autoregressive
  property is not written down anywhere; :func:`witness` decides it by an independent method and
  the check must agree with it on every mutant:

  - ``check`` measures dependencies with autograd, on the sizes and seeds of src/check.py;
  - ``witness`` changes one input value at a time and watches which logits move (no autograd),
    on models of other sizes, other orderings and seeds, several mask sets cycled through by
    ``update_masks`` on one model, random parameters of its own.  A logit of variable d that moves
    when a variable at or after d changes is a concrete counterexample: the mutant really
    breaks the property.

  "Every mutant the check flags really breaks it" holds because the witness finds a
  counterexample for each of them; "every mutant that breaks it is flagged" holds for every
  mutant that the witness can break (it looks at more mask sets and output layouts than the
  check does, so a blind spot of the check's sizes would show up as a disagreement).

The whole file takes about 25 s of CPU time (the mutant sweep runs in this process, on one thread).
"""
import importlib.util
import os
import re
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from tools.mutation_check import load_catalogue, make_mutant

from src import check

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "src", "check", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=300)


def _load(folder, name, tag):
    """Import ``folder/name.py`` under a unique module name (several mutants live in one process)."""
    spec = importlib.util.spec_from_file_location(f"checked_{tag}_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize("model, pictures", [("made", ["made.png"]),
                                             ("pixelcnn", ["pixelcnn.png", "pixelcnn_color.png"])])
def test_reference_is_autoregressive(model, pictures, tmp_path):
    result = _run_cli(model, "--impl", "solution", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "autoregressive: yes", result.stdout
    for name in pictures:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
        assert str(tmp_path / name) in result.stdout  # the command says where the picture went


@pytest.mark.parametrize("model, module", [("made", "made"), ("pixelcnn", "pixelcnn")])
def test_stubs_say_what_is_not_implemented(model, module, tmp_path):
    if "raise NotImplementedError" not in (ROOT / "submission" / f"{module}.py").read_text():
        pytest.skip(f"submission/{module}.py is implemented")
    result = _run_cli(model, "--out", str(tmp_path))
    assert result.returncode == 2 and result.stdout == "", result.stdout + result.stderr
    assert re.fullmatch(rf"python -m src check: error: submission/{module}\.py: \S+ is not implemented yet "
                        r"\(line \d+\)\n", result.stderr), result.stderr


def _run_in_process(monkeypatch, tmp_path, model, **modules):
    """``check.run`` on modules of our choice (it loads them through src.models.load_impl)."""
    from types import SimpleNamespace

    from src import models

    monkeypatch.setattr(models, "load_impl", lambda impl: SimpleNamespace(**modules))
    lines = []
    status = check.run(model, "submission", tmp_path, log=lines.append)
    return status, lines


def test_half_finished_pixelcnn_is_checked_without_its_colour_model(tmp_path, monkeypatch):
    folder = tmp_path / "impl"
    make_mutant({"id": "no-colour", "file": "pixelcnn.py",
                 "find": "    group_in = torch.arange(in_channels) * color_channels // in_channels\n",
                 "replace": "    raise NotImplementedError\n"}, folder)
    status, lines = _run_in_process(monkeypatch, tmp_path, "pixelcnn", pixelcnn=_load(folder, "pixelcnn", "half"))
    assert status == 0 and lines[-1] == "autoregressive: yes", lines
    assert any(re.fullmatch(r"colour model \(extra credit 3e\) not checked: pixelcnn\.py: color_center_mask is "
                            r"not implemented yet \(line \d+\)", line) for line in lines), lines
    assert (tmp_path / "pixelcnn.png").exists() and not (tmp_path / "pixelcnn_color.png").exists()


def test_half_finished_made_names_the_missing_function(tmp_path, monkeypatch):
    folder = tmp_path / "impl"
    make_mutant({"id": "no-forward", "file": "made.py", "find": "        return self.net(x)\n",
                 "replace": "        raise NotImplementedError\n"}, folder)
    with pytest.raises(NotImplementedError) as raised:  # src/cli.py's main() makes it the one line of the stubs
        _run_in_process(monkeypatch, tmp_path, "made", made=_load(folder, "made", "half"))
    assert raised.traceback[-1].name == "forward"


def test_a_mask_bug_gives_the_first_forbidden_dependency(tmp_path, monkeypatch):
    mutant = next(m for m in load_catalogue() if m["id"] == "made-output-mask-ge")
    make_mutant(mutant, tmp_path / "impl")
    status, lines = _run_in_process(monkeypatch, tmp_path, "made", made=_load(tmp_path / "impl", "made", "ge"))
    # output d sees its own input: in the natural ordering the first such output is output 0
    assert status == 1 and lines[-1].startswith("autoregressive: NO: output 0 depends on input 0, its own value ("), \
        lines


def test_check_sees_every_path_that_the_masks_leave_open():
    """No false "yes" from zero gradients (dead ReLUs, unlucky inputs): on the reference, the
    dependencies that the check measures are exactly the paths through the product of the masks."""
    made = _load(ROOT / "solution", "made", "reference")
    results = iter(check.made_dependencies(made))
    for _, case, n_sets in check.MADE_CASES:
        kwargs = {k: v for k, v in case.items() if k != "nout_per_input"}
        for k in range(n_sets):
            d = check.MADE_INPUTS
            model = made.MADE(d, check.MADE_HIDDEN, d * case["nout_per_input"], **kwargs)
            for _ in range(k):
                model.update_masks()
            masks = [layer.mask for layer in model.net if isinstance(layer, made.MaskedLinear)]
            reach = masks[0]
            for mask in masks[1:]:
                reach = mask @ reach  # (outputs, inputs): number of paths
            reach = reach.view(-1, d, d).amax(dim=0) > 0  # [variable, input]
            order = model.order
            assert torch.equal(next(results).depends, reach[order][:, order]), (case, k)


# --------------------------------------------------------------------------- the witness


def _random_parameters(model, generator):
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype)
                        / (p[0].numel() ** 0.5 if p.dim() > 1 else 1.0))


def _logit_shape(model, base):
    """The logits of one example: (nout,) for a MADE, (K, C, H, W) for a PixelCNN."""
    return (model.nout,) if hasattr(model, "nout") else (model.num_levels, *base.shape[1:])


def _moved(model, base, changed_copies):
    """bool (copies, *logit shape): which logits of each changed copy differ from the base's."""
    with torch.no_grad():
        out = model(torch.cat([base, changed_copies])).double()
    expected = (len(base) + len(changed_copies), *_logit_shape(model, base))
    if tuple(out.shape) != expected:
        raise ValueError(f"forward returned shape {tuple(out.shape)}, expected {expected}")
    reference, others = out[: len(base)], out[len(base):].view(-1, *out[: len(base)].shape)
    return (others - reference).abs() > 1e-9 * (1 + reference.abs())  # (copies, batch, ...)


def _made_counterexample(made):
    """A forbidden dependency found by flipping one input at a time, or None."""
    generator = torch.Generator().manual_seed(77)
    d = 7
    for hidden, k, num_masks, natural in (([13, 11], 1, 1, True), ([13, 11], 1, 4, False), ([15], 3, 2, False)):
        torch.manual_seed(5)
        model = made.MADE(d, hidden, k * d, num_masks=num_masks, natural_ordering=natural, seed=9).double()
        for mask_set in range(num_masks):
            if mask_set:
                model.update_masks()
            position = torch.empty(d, dtype=torch.long)
            position[model.order.long()] = torch.arange(d)
            for draw in range(3):
                if draw:
                    _random_parameters(model, generator)
                x = torch.bernoulli(torch.full((16, d), 0.5, dtype=torch.float64), generator=generator)
                flipped = x.repeat(d, 1).view(d, 16, d)
                flipped[torch.arange(d), :, torch.arange(d)] = 1 - flipped[torch.arange(d), :, torch.arange(d)]
                moved = _moved(model, x, flipped.view(-1, d)).any(dim=1).view(d, k, d).any(dim=1)  # [input, var]
                for e, v in moved.nonzero().tolist():
                    if position[e] >= position[v]:
                        return f"flipping input {e} moves the logits of variable {v} (mask set {mask_set})"
    return None


def _pixelcnn_counterexample(pixelcnn):
    generator = torch.Generator().manual_seed(78)
    for colours, levels, channels, (h, w) in ((1, 2, 10, (5, 5)), (3, 3, 12, (4, 4))):
        torch.manual_seed(6)
        model = pixelcnn.PixelCNN(in_channels=colours, num_levels=levels, channels=channels, num_blocks=1,
                                  kernel_size=3).double()
        for draw in range(3):
            if draw:
                _random_parameters(model, generator)
            x = torch.randint(0, levels, (4, colours, h, w), generator=generator)
            copies = []
            for c in range(colours):
                for i in range(h):
                    for j in range(w):
                        y = x.clone()
                        y[:, c, i, j] = (y[:, c, i, j] + 1) % levels
                        copies.append(y)
            moved = _moved(model, x, torch.cat(copies)).any(dim=(1, 2))  # (copies, C, H, W)
            for r, (c, i, j) in enumerate((c, i, j) for c in range(colours) for i in range(h) for j in range(w)):
                for c2, i2, j2 in moved[r].nonzero().tolist():
                    if (i, j, c) >= (i2, j2, c2):  # the changed value comes at or after the one whose logits moved
                        return f"changing colour {c} of pixel ({i}, {j}) moves the logits of colour {c2} of " \
                               f"pixel ({i2}, {j2}) ({colours} colours)"
    return None


def _outcome(function, module):
    """("flags", sentence), ("clean", None), ("cannot", why) (check.CannotCheck) or ("error", what)."""
    try:
        found = function(module)
    except check.CannotCheck as error:
        return "cannot", str(error)
    except Exception as error:  # noqa: BLE001 - a mutant whose forward pass crashes has no verdict
        return "error", f"{type(error).__name__}: {str(error)[:200]}"
    return ("flags", found) if found else ("clean", None)


def _agree(witness, verdict):
    """The check flags exactly what the witness breaks; it has no verdict ("cannot tell": the input
    is cut off from autograd, or every path is masked) only for a model the witness cannot break;
    a forward pass that crashes crashes in both."""
    if "flags" in (witness, verdict) or "error" in (witness, verdict):
        return witness == verdict
    return witness == "clean" and verdict in ("clean", "cannot")


def _check_verdict(module, file):
    if file == "made.py":
        results = check.made_dependencies(module)
    else:
        results = [check.pixelcnn_dependencies(module), check.pixelcnn_dependencies(module, colour=True)]
    return next((v for v in (r.first_violation() for r in results) if v), None)


@pytest.fixture
def one_thread():
    """The witness's tensors are tiny: more threads only wait for each other (and crawl on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_check_finds_exactly_the_mutants_that_break_the_property(tmp_path, one_thread):
    table, disagree, broken = [], [], []
    for mutant in load_catalogue():
        if mutant["file"] not in ("made.py", "pixelcnn.py"):
            continue
        folder = tmp_path / mutant["id"]
        make_mutant(mutant, folder)
        module = _load(folder, mutant["file"][:-3], mutant["id"].replace("-", "_"))
        witness = _outcome(_made_counterexample if mutant["file"] == "made.py" else _pixelcnn_counterexample,
                           module)
        verdict = _outcome(lambda m: _check_verdict(m, mutant["file"]), module)
        table.append(f"{mutant['id']:<42} witness: {witness[0]:<6} check: {verdict[0]:<6} "
                     f"{witness[1] or ''} | {verdict[1] or ''}")
        broken += [mutant["id"]] if witness[0] == "flags" else []
        if not _agree(witness[0], verdict[0]):
            disagree.append(table[-1])
    print("\n" + "\n".join(table))
    assert not disagree, "check and witness disagree:\n" + "\n".join(disagree)
    # not a vacuous agreement: both catalogues plant bugs that break the property
    assert sum(b.startswith("made-") for b in broken) >= 3 and sum(b.startswith("pixelcnn-") for b in broken) >= 3, \
        broken


def test_swapped_mask_types_are_drawn_and_the_cutting_layer_named(tmp_path, monkeypatch):
    # types A and B swapped: every 1x1 convolution (type B, now hiding its centre) sees nothing
    make_mutant({"id": "swapped", "file": "pixelcnn.py",
                 "find": 'mask[:, :, centre, centre] = 1.0 if mask_type == "B" else 0.0',
                 "replace": 'mask[:, :, centre, centre] = 1.0 if mask_type == "A" else 0.0'}, tmp_path / "impl")
    status, lines = _run_in_process(monkeypatch, tmp_path, "pixelcnn",
                                    pixelcnn=_load(tmp_path / "impl", "pixelcnn", "swapped"))
    assert status == 2, lines
    assert (tmp_path / "pixelcnn.png").read_bytes()[:4] == b"\x89PNG"  # the picture is drawn anyway
    verdict = lines[-1]
    assert verdict.startswith("autoregressive: cannot tell: no output of PixelCNN.forward depends on any input: "
                              "every path is cut at layer head.1 (MaskedConv2d, 1x1 kernel)"), verdict
    assert "types A and B swapped" in verdict and ".detach()" not in verdict, verdict


def test_a_detached_input_still_points_to_autograd(tmp_path, monkeypatch):
    make_mutant({"id": "detached", "file": "made.py", "find": "        return self.net(x)\n",
                 "replace": "        return self.net(x.detach()) + 0 * x.sum(dim=1, keepdim=True)\n"}, tmp_path / "impl")
    status, lines = _run_in_process(monkeypatch, tmp_path, "made", made=_load(tmp_path / "impl", "made", "detached"))
    assert status == 2 and (tmp_path / "made.png").exists(), lines
    assert "autograd cannot see any path" in lines[-1] and ".detach()" in lines[-1], lines


def test_the_legend_names_own_inputs_and_explains_orange(tmp_path, monkeypatch):
    import matplotlib.figure

    figures, save = [], matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, *args, **kwargs: (figures.append(fig), save(fig, *args, **kwargs))[1])
    n = check.MADE_INPUTS
    correct = check.Dependencies("natural ordering", "MADE", torch.ones(n, n, dtype=torch.bool).tril(-1),
                                 [f"input {v}" for v in range(n)])
    check.plot_made([correct], tmp_path / "made.png")
    texts = [t.get_text() for t in figures[-1].texts] + [t.get_text() for t in figures[-1].legends[0].get_texts()]
    assert "itself or later, not seen" in texts and "itself or later, SEEN (bug)" in texts, texts
    assert not any(t.startswith("comes later") for t in texts), texts
    assert any(t.startswith("orange is allowed") for t in texts), texts
