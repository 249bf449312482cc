"""Patterns of device mixing, each with what CUDA does: the rules the stand-in device must follow.

``staff_tests/test_standin_device.py`` runs every pattern on the stand-in (``src.standin_device``);
``tools/gpu_device_check.sh`` runs them on a real GPU, so that a rule the stand-in gets wrong shows
as a disagreement there.  A pattern is ``(name, expected, function)``: ``function(device)`` builds
its tensors (``device`` is the stand-in or ``"cuda:0"``) and returns something; ``expected`` is
"refused" (it must raise) or "allowed".  Expectations come from CUDA's documented rules (CPU
0-dim tensors are scalars to CUDA kernels; cross-device ``copy_`` is allowed; a CPU tensor may
not be indexed with CUDA indices); the ones marked "(to confirm on a GPU)" are inferred from
PyTorch's source, not yet seen on CUDA.

    python tools/device_patterns.py            # on the stand-in: each pattern and what happened
    python tools/device_patterns.py cuda:0     # on a GPU
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from src import standin_device


def _on(device, *shape):
    return torch.arange(float(torch.Size(shape).numel())).reshape(shape).to(device)


class _WithBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3, 2))
        self.register_buffer("mask", torch.ones(3, 2))

    def forward(self, x):
        return F.linear(x, self.mask * self.weight)


class _WithAttribute(_WithBuffer):
    def __init__(self):
        super().__init__()
        del self.mask
        self.mask = torch.ones(3, 2)  # a plain attribute: .to(device) does not move it


def _set_data_then_use(d):
    t = _on(d, 3)
    t.data = torch.zeros(3)
    return t + _on(d, 3)


def _cpu_index_put(d):
    x = torch.zeros(3)
    x[torch.tensor([0, 1])] = _on(d, 2)
    return x


def _device_index_put_cpu_values(d):
    x = _on(d, 3)
    x[torch.tensor([0, 1])] = torch.ones(2)
    return x


def _copy_into_slice(d):
    x = _on(d, 2, 3)
    x[:, 0] = torch.ones(2)
    return x.cpu()


def _copy_to_cpu_slice(d):
    x = torch.zeros(2, 3)
    x[:, 0] = _on(d, 2)
    return x


def _backward(d):
    w = _on(d, 3).requires_grad_()
    (w * w).sum().backward()
    return w.grad.cpu()


def _module_buffer(d):
    return _WithBuffer().to(d)(_on(d, 4, 2)).cpu()


def _module_attribute(d):
    return _WithAttribute().to(d)(_on(d, 4, 2)).cpu()


PATTERNS = [
    # refused
    ("CPU tensor + device tensor", "refused", lambda d: torch.ones(3) + _on(d, 3)),
    ("F.linear(CPU input, device weight)", "refused", lambda d: F.linear(torch.ones(4, 2), _on(d, 3, 2))),
    ("device @ CPU matrix", "refused", lambda d: _on(d, 2, 3) @ torch.ones(3, 2)),
    ("torch.cat([CPU, device])", "refused", lambda d: torch.cat([torch.ones(2), _on(d, 2)])),
    ("torch.eye(K)[device index]", "refused", lambda d: torch.eye(4)[_on(d, 3).long()]),
    ("CPU tensor[device bool mask]", "refused", lambda d: torch.ones(3)[_on(d, 3) > 0]),
    ("CPU tensor[device index] = device values", "refused", _cpu_index_put),
    ("device tensor[CPU index] = CPU values of 1 or more dims (to confirm on a GPU)", "refused",
     _device_index_put_cpu_values),
    ("torch.gather(device, 0, CPU index)", "refused", lambda d: torch.gather(_on(d, 3), 0, torch.tensor([0, 2]))),
    ("torch.where(device cond, CPU 1-dim, device)", "refused",
     lambda d: torch.where(_on(d, 3) > 0, torch.ones(3), _on(d, 3))),
    ("CPU 1-dim * device 0-dim (to confirm on a GPU)", "refused", lambda d: torch.ones(3) * _on(d, 1)[0]),
    ("device_tensor.numpy()", "refused", lambda d: _on(d, 3).numpy()),
    ("np.asarray(device tensor)", "refused", lambda d: np.asarray(_on(d, 3))),
    ("device.data = CPU tensor, then used", "refused", _set_data_then_use),
    ("module.to(device) with a plain tensor attribute, then forward", "refused", _module_attribute),
    # allowed
    ("device * CPU 0-dim tensor", "allowed", lambda d: (_on(d, 3) * torch.tensor(2.0)).cpu()),
    ("device + Python number", "allowed", lambda d: (_on(d, 3) + 2).cpu()),
    ("CPU 0-dim * device (CPU scalar first)", "allowed", lambda d: (torch.tensor(2.0) * _on(d, 3)).cpu()),
    (".to(device), .cpu(), .to('cpu')", "allowed", lambda d: (torch.ones(3).to(d).cpu(), _on(d, 2).to("cpu"))),
    (".item(), .tolist(), float(), int()", "allowed",
     lambda d: (_on(d, 3)[1].item(), _on(d, 2).tolist(), float(_on(d, 2)[1]), int(_on(d, 2)[1]))),
    ("device[CPU long index]", "allowed", lambda d: _on(d, 3)[torch.tensor([0, 2])].cpu()),
    ("device[CPU bool mask]", "allowed", lambda d: _on(d, 3)[torch.tensor([True, False, True])].cpu()),
    ("device[:, 0] = CPU tensor (a copy)", "allowed", _copy_into_slice),
    ("CPU[:, 0] = device tensor (a copy)", "allowed", _copy_to_cpu_slice),
    ("device.copy_(CPU), CPU.copy_(device)", "allowed",
     lambda d: (_on(d, 2).copy_(torch.ones(2)).cpu(), torch.zeros(2).copy_(_on(d, 2)))),
    ("factories with device= and *_like", "allowed",
     lambda d: (torch.zeros(2, device=d) + torch.ones_like(_on(d, 2)) + _on(d, 2).new_zeros(2)).cpu()),
    ("torch.arange(K, device=model's device) == device", "allowed",
     lambda d: (torch.arange(3, device=_on(d, 1).device) == _on(d, 3)).cpu()),
    ("backward through device tensors", "allowed", _backward),
    ("module.to(device) with a buffer, then forward", "allowed", _module_buffer),
    ("iterating over a device tensor", "allowed", lambda d: [v.item() for v in _on(d, 3)]),
    ("F.cross_entropy and torch.stack on the device", "allowed",
     lambda d: torch.stack([F.cross_entropy(_on(d, 2, 3), torch.tensor([0, 2]).to(d))]).cpu()),
]


def run_all(device):
    """``[(name, expected, happened, detail)]`` for every pattern on ``device``."""
    rows = []
    for name, expected, function in PATTERNS:
        try:
            function(device)
        except Exception as error:  # noqa: BLE001 - what was raised is the point
            rows.append((name, expected, "refused", f"{type(error).__name__}: {' '.join(str(error).split())[:120]}"))
        else:
            rows.append((name, expected, "allowed", ""))
    return rows


def main(argv):
    device = argv[0] if argv else None
    if device is None:
        with standin_device.active() as standin:
            rows = run_all(standin)
    else:
        rows = run_all(device)
    wrong = 0
    for name, expected, happened, detail in rows:
        flag = "ok  " if expected == happened else "DIFF"
        wrong += expected != happened
        print(f"{flag} {happened:8s} {name}" + (f"  [{detail}]" if detail else ""))
    print(f"{len(rows) - wrong} of {len(rows)} patterns as expected on {device or 'the stand-in'}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
