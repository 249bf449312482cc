"""The stand-in device (``src/standin_device.py``): the CPU's values under CUDA's rules of device mixing.

* the reference's functions moved to the stand-in give the CPU's values bit for bit (forward,
  ``log_prob`` and its gradients, ``update_masks``, ``sample`` with a seeded generator,
  ``evaluate_nll``): every part of ``src.device_check``;
* every pattern of ``tools/device_patterns.py`` is refused or allowed as CUDA does;
* a device-mixing error becomes one line naming the student's function and where the CPU tensor
  was made.

    python -m pytest staff_tests/test_standin_device.py -q      # about 10 s
"""
import pytest
import torch
from conftest import ROOT

from src import device_check, standin_device
from tools import device_patterns


@pytest.fixture(scope="module")
def reference():
    return device_check.load_modules(ROOT / "solution")


@pytest.mark.parametrize("part", device_check.PARTS, ids=[f"{p.question} {p.label}" for p in device_check.PARTS])
def test_reference_gives_the_cpu_values_on_the_standin(part, reference):
    cpu = device_check.run_part(part, reference, "cpu")
    assert cpu.error is None and cpu.values, cpu.error
    with standin_device.active() as device:
        moved = device_check.run_part(part, reference, device)
    assert device_check.compare(cpu, moved, exact=True) is None
    assert moved.values.keys() == cpu.values.keys()


@pytest.mark.parametrize("pattern", device_patterns.PATTERNS, ids=[p[0] for p in device_patterns.PATTERNS])
def test_pattern_refused_or_allowed_as_on_cuda(pattern):
    _, expected, function = pattern
    with standin_device.active() as device:
        if expected == "refused":
            with pytest.raises((RuntimeError, TypeError)) as raised:
                function(device)
            assert standin_device.is_device_error(raised.value), raised.value
        else:
            function(device)


def test_module_to_moves_parameters_and_buffers_not_plain_attributes():
    model = torch.nn.Linear(2, 3)
    model.register_buffer("mask", torch.ones(3, 2))
    model.plain = torch.ones(3)
    with standin_device.active() as device:
        model.to(device)
        assert next(model.parameters()).device == device
        assert isinstance(model.weight, torch.nn.Parameter) and standin_device.is_standin(model.weight)
        assert standin_device.is_standin(model.mask)
        assert not standin_device.is_standin(model.plain) and model.plain.device.type == "cpu"
        assert not standin_device.is_standin(torch.zeros(2))  # no device=: the CPU, as with CUDA
        assert standin_device.is_standin(torch.zeros(2, device=device))
        assert standin_device.is_standin(torch.zeros(2).cuda())  # .cuda() means the device here


def test_saving_a_standin_tensor_saves_its_cpu_values(tmp_path):
    with standin_device.active() as device:
        t = torch.arange(4.0).to(device)
        torch.save({"t": t}, tmp_path / "t.pt")
    loaded = torch.load(tmp_path / "t.pt")["t"]
    assert loaded.device.type == "cpu" and torch.equal(loaded, torch.arange(4.0))


def _sampler_file(tmp_path):
    path = tmp_path / "student.py"
    path.write_text(
        "import torch\n"
        "class Model(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.w = torch.nn.Parameter(torch.ones(3, 3))\n"
        "    def sample(self, n):\n"
        "        x = torch.zeros(n, 3)\n"
        "        return self.step(x)\n"
        "    def step(self, x):\n"
        "        return x @ self.w\n")
    return path


def test_explain_names_the_function_that_made_the_cpu_tensor(tmp_path):
    path = _sampler_file(tmp_path)
    student = device_check.load_modules(tmp_path, names=("student",)).student
    model = student.Model()
    with standin_device.active() as device:
        model.to(device)
        with pytest.raises(standin_device.DeviceMixingError) as raised:
            model.sample(2)
    line = standin_device.explain(raised.value, [path], model)
    assert line == ("Model.sample: torch.zeros created its tensor on the CPU (line 7 of student.py), then it was "
                    "used with the model's tensors on the device in Model.step (line 10): pass device=... "
                    "(the model's device)")
    assert standin_device.explain(ValueError("not a device error"), [path]) is None


def test_explain_reads_cuda_own_messages(tmp_path):
    """On a GPU the error is CUDA's own RuntimeError: still one line, naming the student's function."""
    path = tmp_path / "student.py"
    path.write_text("def log_prob(x):\n"
                    "    raise RuntimeError('Expected all tensors to be on the same device, but found at least two "
                    "devices, cuda:0 and cpu!')\n")
    student = device_check.load_modules(tmp_path, names=("student",)).student
    with pytest.raises(RuntimeError) as raised:
        student.log_prob(None)
    line = standin_device.explain(raised.value, [path])
    assert line.startswith("log_prob: mixes devices, which CUDA refuses: Expected all tensors"), line
    assert line.endswith("(line 2 of student.py)"), line
