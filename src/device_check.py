"""Does your code run on another device (a GPU) and give the same values there as on the CPU?

Each *part* builds a small model of one function of the problem set on the CPU with fixed seeds,
runs it once on the CPU and once after ``model.to(device)`` (inputs on the device, a
``torch.Generator`` seeded alike), and compares: the values, the gradients of ``log_prob`` and, where
the docstring promises it, that ``sample`` returns its tensor on the model's device.  ``device`` is
the stand-in device of :mod:`src.standin_device` (any machine: CUDA's rules, the CPU's values, so
the values must be equal) or ``"cuda"`` (values within float tolerance; samples only checked for
shape, values and device, since CUDA's random numbers are not the CPU's).

``python -m src check made|pixelcnn`` runs the parts of its model on the stand-in; the course's
own tests run them on catalogued device bugs too.  The same parts with ``dtype =
torch.float64`` on the CPU show a float32 hard-coded inside a function (compare with the
reference's float64 values).

Nothing here comes from the grader's tests: sizes, seeds and inputs are this module's own.
"""
import importlib.util
import itertools
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import standin_device

SEED = 4321


@dataclass
class Part:
    """One function checked on a device: ``run(modules, device, dtype, generator, seen)`` -> (model, {name: value});
    ``run`` appends its model to the list ``seen`` as soon as it is built (for messages)."""
    question: str
    label: str
    module: str
    run: object
    sampling: tuple = None  # (n, steps): ``run`` draws n samples of `steps` variables (or pixels) each
    sample_kwargs: tuple = ()  # ((name, value), ...): the other arguments of its ``sample`` call


@dataclass
class Result:
    """What one part gave on one device: ``values`` ({name: CPU tensor or float}) or ``error`` (one line)."""
    part: Part
    device: str
    values: dict = field(default_factory=dict)
    error: str = None
    not_implemented: bool = False
    host_copies: object = None  # on the stand-in, for parts that sample: a standin_device.HostCopies
    model: object = None  # the part's model, on the device (None for parts without one)


def _seeded(seed):
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _grads(model):
    return {f"grad of {name}": p.grad for name, p in model.named_parameters() if p.grad is not None}


def _log_prob_and_grads(model, x):
    """log_prob and, where it is differentiable, the parameters' gradients (a log_prob that is not is the
    business of the grader's differentiability checks, not of a device check)."""
    log_p = model.log_prob(x)
    if log_p.requires_grad:
        log_p.sum().backward()
    return {"log_prob": log_p, **_grads(model)}


#: the key under which a part's values carry the copies to the host that ``sample`` made
SAMPLING_COPIES = "copies to the host while sampling"


def _sample(model, n, gen, **kwargs):
    """``model.sample(n, ...)`` and the copies to the host it made (counted on the stand-in only)."""
    with standin_device.counting_host_copies() as copies:
        sample = model.sample(n, generator=gen, **kwargs)
    return {"sample": sample, SAMPLING_COPIES: copies}


def _randomise(model, gen):
    """Non-zero parameters (DiscreteAR2D and FVSBN start at zero: every value would be trivial)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))


# ---------------------------------------------------------------------------
# The parts: (model built on the CPU, moved to `device`) -> values
# ---------------------------------------------------------------------------

def _likelihoods(mods, device, dtype, gen, keep):
    gen_cpu = _seeded(SEED - 1)
    ar = mods.autoregressive
    x_bin = torch.bernoulli(torch.full((4, 2, 3), 0.5), generator=gen_cpu)
    logits_bin = torch.randn(4, 2, 3, generator=gen_cpu, dtype=dtype)
    x_cat = torch.randint(0, 5, (4, 2, 3), generator=gen_cpu)
    logits_cat = torch.randn(4, 5, 2, 3, generator=gen_cpu, dtype=dtype)
    return None, {"bernoulli_log_likelihood": ar.bernoulli_log_likelihood(x_bin.to(device), logits_bin.to(device)),
                  "categorical_log_likelihood": ar.categorical_log_likelihood(x_cat.to(device),
                                                                              logits_cat.to(device))}


def _discrete_ar2d(mods, device, dtype, gen, keep):
    gen_cpu = _seeded(SEED)
    model = mods.autoregressive.DiscreteAR2D(4, order=(1, 0)).to(dtype)
    model = keep(model)
    _randomise(model, gen_cpu)
    x = torch.randint(0, 4, (9, 2), generator=gen_cpu)
    model.to(device)
    values = _log_prob_and_grads(model, x.to(device))
    values.update(_sample(model, 7, gen))
    return model, values


def _fvsbn(mods, device, dtype, gen, keep):
    gen_cpu = _seeded(SEED + 1)
    model = mods.autoregressive.FVSBN(5, order=[3, 0, 4, 1, 2]).to(dtype)
    model = keep(model)
    _randomise(model, gen_cpu)
    x = torch.bernoulli(torch.full((6, 5), 0.5), generator=gen_cpu).to(dtype)
    model.to(device)
    values = _log_prob_and_grads(model, x.to(device))
    values.update(_sample(model, 7, gen))
    return model, values


class _IndependentBernoulli(nn.Module):
    """A device-safe model of our own for ``evaluate_nll``: independent Bernoulli pixels."""

    def __init__(self, dim):
        super().__init__()
        self.logits = nn.Parameter(torch.linspace(-2, 2, dim))

    def log_prob(self, x):
        x = x.reshape(x.shape[0], -1).to(self.logits.dtype)
        return -nn.functional.binary_cross_entropy_with_logits(self.logits.expand_as(x), x, reduction="none").sum(1)


def _evaluate_nll(mods, device, dtype, gen, keep):
    gen_cpu = _seeded(SEED + 2)
    model = _IndependentBernoulli(6).to(dtype)
    model = keep(model)
    data = torch.bernoulli(torch.full((11, 6), 0.3), generator=gen_cpu)
    loader = [(data[i:i + 4], torch.zeros(len(data[i:i + 4]))) for i in range(0, 11, 4)]  # CPU batches, as a DataLoader gives
    model.to(device)
    result = mods.autoregressive.evaluate_nll(model, loader)
    return model, {key: float(result[key]) for key in ("nll", "bits_per_dim")}


def _masked_linear(mods, device, dtype, gen, keep):
    gen_cpu = _seeded(SEED + 3)
    layer = mods.made.MaskedLinear(5, 4).to(dtype)
    layer = keep(layer)
    mask = (torch.rand(4, 5, generator=gen_cpu) < 0.5).float()  # a CPU mask, as made_masks gives it
    x = torch.randn(3, 5, generator=gen_cpu, dtype=dtype).requires_grad_(False)
    layer.to(device)
    layer.set_mask(mask)
    out = layer(x.to(device))
    out.sum().backward()
    return layer, {"forward": out, **_grads(layer)}


def _made(mods, dtype, keep, **kwargs):
    torch.manual_seed(SEED + 4)
    return keep(mods.made.MADE(6, [12, 12], 6, **kwargs).to(dtype))


def _made_data(dtype):
    return torch.bernoulli(torch.full((5, 6), 0.5), generator=torch.Generator().manual_seed(SEED + 5)).to(dtype)


def _made_forward_log_prob(mods, device, dtype, gen, keep):
    model = _made(mods, dtype, keep, seed=7).to(device)
    x = _made_data(dtype).to(device)
    return model, {"forward": model(x), **_log_prob_and_grads(model, x)}


def _made_ensemble(mods, device, dtype, gen, keep):
    model = _made(mods, dtype, keep, num_masks=3, natural_ordering=False, seed=8).to(device)
    x = _made_data(dtype).to(device)
    values = {"log_prob (3 mask sets)": model.log_prob(x)}
    model.update_masks()
    values["forward after update_masks"] = model(x)
    values["order after update_masks"] = model.order
    return model, values


def _made_sample(mods, device, dtype, gen, keep):
    model = _made(mods, dtype, keep, num_masks=2, natural_ordering=False, seed=9).to(device)
    model.update_masks()
    return model, _sample(model, 7, gen)


def _pixelcnn(mods, dtype, keep, **kwargs):
    torch.manual_seed(SEED + 6)
    return keep(mods.pixelcnn.PixelCNN(**kwargs).to(dtype))


GREY = {"in_channels": 1, "num_levels": 2, "channels": 8, "num_blocks": 1, "kernel_size": 3}
COLOUR = {"in_channels": 3, "num_levels": 4, "channels": 6, "num_blocks": 1, "kernel_size": 3}


def _masked_conv(mods, device, dtype, gen, keep):
    gen_cpu = _seeded(SEED + 7)
    conv = mods.pixelcnn.MaskedConv2d("A", 2, 4, 3).to(dtype)
    conv = keep(conv)
    x = torch.randn(2, 2, 4, 4, generator=gen_cpu, dtype=dtype)
    conv.to(device)
    return conv, {"forward": conv(x.to(device))}


def _masked_conv_colour(mods, device, dtype, gen, keep):
    """A colour MaskedConv2d (3 colours): where its constructor keeps the colour mask matters on a device."""
    gen_cpu = _seeded(SEED + 10)
    conv = mods.pixelcnn.MaskedConv2d("B", 6, 6, 3, color_channels=3).to(dtype)
    conv = keep(conv)
    x = torch.randn(2, 6, 4, 4, generator=gen_cpu, dtype=dtype)
    conv.to(device)
    return conv, {"forward": conv(x.to(device))}


def _images(config, shape, seed):
    return torch.randint(0, config["num_levels"], (3, config["in_channels"], *shape),
                         generator=torch.Generator().manual_seed(seed))


def _pixelcnn_log_prob(mods, device, dtype, gen, keep):
    model = _pixelcnn(mods, dtype, keep, **GREY).to(device)
    x = _images(GREY, (4, 4), SEED + 8).to(device)
    return model, {"forward": model(x), **_log_prob_and_grads(model, x)}


def _pixelcnn_sample(mods, device, dtype, gen, keep):
    model = _pixelcnn(mods, dtype, keep, **GREY).to(device)
    return model, _sample(model, 3, gen, image_shape=(4, 4))


def _colour(mods, device, dtype, gen, keep):
    model = _pixelcnn(mods, dtype, keep, **COLOUR).to(device)
    x = _images(COLOUR, (3, 3), SEED + 9).to(device)
    values = _log_prob_and_grads(model, x)
    values.update(_sample(model, 2, gen, image_shape=(3, 3)))
    return model, values


#: the parts, in the order of the questions
PARTS = [
    Part("1a", "bernoulli_log_likelihood, categorical_log_likelihood", "autoregressive", _likelihoods),
    # 1c and 1d: no limit on copies to the host (``sampling``): their docstrings do not ask for the whole batch
    # at once, as MADE's ("exactly D forward passes") and PixelCNN's do
    Part("1c", "DiscreteAR2D.log_prob, sample", "autoregressive", _discrete_ar2d),
    Part("1d", "FVSBN.log_prob, sample", "autoregressive", _fvsbn),
    Part("2a", "MaskedLinear.set_mask, forward", "made", _masked_linear),
    Part("2b", "MADE.forward, log_prob", "made", _made_forward_log_prob),
    Part("2b", "MADE.log_prob (3 mask sets), update_masks", "made", _made_ensemble),
    Part("2c", "MADE.sample", "made", _made_sample, sampling=(7, 6)),
    Part("3a", "MaskedConv2d.forward", "pixelcnn", _masked_conv),
    Part("3a", "MaskedConv2d.forward, colour", "pixelcnn", _masked_conv_colour),
    Part("3b", "PixelCNN.forward, log_prob", "pixelcnn", _pixelcnn_log_prob),
    Part("3c", "PixelCNN.sample", "pixelcnn", _pixelcnn_sample, sampling=(3, 16),
         sample_kwargs=(("image_shape", (4, 4)),)),
    Part("3e", "colour PixelCNN.log_prob, sample", "pixelcnn", _colour, sampling=(2, 27),
         sample_kwargs=(("image_shape", (3, 3)),)),
    Part("4a", "evaluate_nll", "autoregressive", _evaluate_nll),
]
#: keys whose tensor the docstring puts on the model's device
ON_DEVICE = {("made", "sample"), ("pixelcnn", "sample")}




def part_named(question, label):
    """The part of ``question`` called ``label``."""
    return next(p for p in PARTS if p.question == question and p.label == label)


def sampling_limits(part):
    """``(waits, elements)``: the most copies to the host, and numbers copied, that sampling may make on a
    device: 2 waits per drawn variable (reading and writing the canvas at a 0-dim index each wait once on
    CUDA) and one batch row (n numbers) per variable, plus 2 waits in all.  One ``.item()`` per pixel and
    image makes n waits per variable; moving the canvas to the CPU and back at every step copies n * steps
    numbers per variable."""
    n, steps = part.sampling
    return 2 * steps + 2, (n + 2) * steps


def sampling_problem(part, copies):
    """One line if a stand-in run of the sampling ``part`` made more ``copies`` (a
    :class:`standin_device.HostCopies`) to the host than :func:`sampling_limits` allows (slow on a GPU:
    each copy waits for the device), else None."""
    if copies is None or part.sampling is None:
        return None
    waits, elements = sampling_limits(part)
    if copies.waits <= waits and copies.elements <= elements:
        return None
    n, steps = part.sampling
    return (f"{part.label}: drawing {n} samples of {steps} variables on the device, sample copied to the CPU "
            f"{copies.waits} times ({copies.elements} numbers), more than the {waits} copies and {elements} "
            f"numbers a sampler needs; on a GPU every copy (.item(), .tolist(), .cpu(), int(t), bool(t)) waits "
            f"for the device: keep the samples on the model's device while drawing")


_loads = itertools.count()


def load_modules(folder, names=("autoregressive", "made", "pixelcnn")):
    """The files ``folder/NAME.py`` as modules under fresh names (neither ``sys.path`` nor ``sys.modules``
    is touched), so that one process can hold the reference and many mutants."""
    loaded = {}
    for name in names:
        path = Path(folder) / f"{name}.py"
        if not path.is_file():
            continue
        spec = importlib.util.spec_from_file_location(f"_device_check_{next(_loads)}_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded[name] = module
    return types.SimpleNamespace(**loaded)


# ---------------------------------------------------------------------------
# Running and comparing
# ---------------------------------------------------------------------------

def _student_files(mods):
    return [m.__file__ for m in vars(mods).values() if hasattr(m, "__file__")]


def _on_device(value, device):
    if standin_device.is_standin(device):
        return standin_device.is_standin(value)
    return value.device.type == torch.device(device).type


def _to_cpu(value):
    return value.detach().cpu().clone() if isinstance(value, torch.Tensor) else value


def run_part(part, mods, device="cpu", dtype=torch.float32, *, prepare=None, catch=True):
    """Run ``part`` with the model on ``device``; every error becomes one line naming the student's function.

    ``prepare(model)``: called on the part's model as soon as it is built, before it moves (the grader
    uses it to run the part with its stand-ins for earlier questions).  ``catch=False``: the student's
    errors propagate (the grader's worker reports them as it reports any other error).  On the stand-in
    the result also counts the copies to the host that ``sample`` made (``host_copies``).
    """
    result = Result(part, str(device))
    seen = []  # the part's model, as soon as it is built: a CPU tensor it holds is named in messages

    def keep(model):
        seen.append(model)
        if prepare is not None:
            prepare(model)
        return model

    if standin_device.is_standin(device):
        gen = torch.Generator().manual_seed(SEED)  # the stand-in draws with the CPU's generator
    else:
        gen = torch.Generator(device=device).manual_seed(SEED)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only wait for each other (10x slower on a busy machine)
    try:
        with torch.random.fork_rng(devices=[]):
            result.model, values = part.run(mods, device, dtype, gen, keep)
            copies = values.pop(SAMPLING_COPIES, None)
            for key, value in values.items():
                if (part.module, key) in ON_DEVICE and isinstance(value, torch.Tensor) \
                        and not _on_device(value, device):
                    result.error = (f"{part.label}: returns its {key} on {value.device}, not on the model's device "
                                    f"({device})")
                    return result
            result.values = {key: _to_cpu(value) for key, value in values.items()}
        if standin_device.is_standin(device):
            result.host_copies = copies
    except NotImplementedError:
        if not catch:
            raise
        result.not_implemented = True
    except Exception as error:  # noqa: BLE001 - student code: any error becomes one line
        if not catch:
            raise
        line = standin_device.explain(error, _student_files(mods), seen[0] if seen else None)
        if line is None:
            where = standin_device.student_frame(error, _student_files(mods))
            func = where[0] if where else part.label
            line = f"{func}: {type(error).__name__}: {' '.join(str(error).split())[:160]}"
        result.error = line
    finally:
        torch.set_num_threads(threads)
    return result


def differs(a, b, exact):
    """What differs between the CPU's value ``a`` and a device's ``b`` (a few words), or None."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape:
            return f"shape {tuple(b.shape)} instead of {tuple(a.shape)}"
        if exact:
            same = torch.equal(a, b.to(a.dtype)) if a.dtype == b.dtype else False
        else:
            same = a.dtype == b.dtype and torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-5)
        return None if same else "different values"
    if isinstance(a, float) and isinstance(b, float):
        same = a == b if exact else abs(a - b) <= 1e-4 * max(1.0, abs(a))
        return None if same else f"{b!r} instead of {a!r}"
    return None if type(a) is type(b) else f"a {type(b).__name__} instead of a {type(a).__name__}"


def compare(expected, got, *, exact, skip=()):
    """One line if ``got`` (a :class:`Result`) is refused or differs from ``expected``, else None."""
    if got.error:
        return got.error
    for key, value in expected.values.items():
        if key in skip:
            continue
        if key not in got.values:
            return f"{got.part.label}: no {key} on {got.device}"
        problem = differs(value, got.values[key], exact)
        if problem:
            return f"{got.part.label}: {key} on {got.device} differs from the CPU's: {problem}"
    return None


def device_findings(mods, parts=PARTS, device=None):
    """``[(part, line)]``: every part that runs on the CPU but is refused, or differs, on ``device``.

    ``device`` None = the stand-in.  Parts not implemented, or failing on the CPU already, are left
    out (the other checks report those).
    """
    findings = []
    for part in parts:
        cpu = run_part(part, mods, "cpu")
        if cpu.error or cpu.not_implemented:
            continue
        if device is None:
            with standin_device.active() as standin:
                got = run_part(part, mods, standin)
            exact, skip = True, ()
        else:
            got = run_part(part, mods, device)
            exact, skip = False, {"sample"}  # CUDA's random numbers are not the CPU's
        line = compare(cpu, got, exact=exact, skip=skip) or sampling_problem(part, got.host_copies)
        if line:
            findings.append((part, line))
    return findings


def dtype_findings(mods, reference, parts=PARTS):
    """``[(part, line)]``: every part whose float64 run on the CPU is refused or differs from ``reference``'s."""
    findings = []
    for part in parts:
        expected = run_part(part, reference, "cpu", torch.float64)
        got = run_part(part, mods, "cpu", torch.float64)
        if expected.error or got.not_implemented:
            continue
        line = compare(expected, got, exact=False)
        if line:
            findings.append((part, line.replace(" on cpu differs from the CPU's", " in float64 differs from the "
                                                "reference's")))
    return findings


def report(mods, model_name, log=print):
    """``python -m src check``'s device lines: the parts of ``model_name`` on the stand-in.  Returns True if safe."""
    modules = {"made": {"made"}, "pixelcnn": {"pixelcnn"}}[model_name]
    findings = device_findings(mods, [p for p in PARTS if p.module in modules])
    if not findings:
        log("on another device (the stand-in for a GPU): same values as on the CPU")
        return True
    for part, line in findings:
        log(f"on another device: NO ({part.question}): {line}")
    return False
