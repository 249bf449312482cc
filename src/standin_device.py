"""A stand-in for a GPU on machines without one: real values, CUDA's rules of device mixing.

Student code must run on whatever device the model is on.  Without CUDA this module gives a
second device on which the code runs with real values (the CPU's own kernels, so the values are
the CPU's bit for bit) and which refuses what CUDA refuses:

* refused: a CPU tensor of one or more dimensions meeting a device tensor in an operation
  (``F.linear(cpu_x, device_w)``, ``cpu_mask * device_weight``); indexing a CPU tensor with a
  device index (``torch.eye(K)[x]``); ``.numpy()`` of a device tensor; setting ``.data`` of a
  device tensor to a CPU tensor (CUDA allows that one, and refuses the next use of the tensor);
* allowed: CPU 0-dim tensors as scalars; explicit copies (``.to(device)``, ``.cpu()``, ``.cuda()``,
  ``copy_`` either way, ``x[:, d] = cpu_values``); indexing a device tensor with CPU indices;
  ``.item()`` and ``.tolist()`` (they copy); ``device=`` factories; ``nn.Module.to(device)``
  (parameters and buffers move, plain tensor attributes stay on the CPU, as with CUDA);
  CPU ``torch.Generator`` s for the device's random draws (CUDA would want a CUDA generator: the
  one deliberate leniency, since the values must be the CPU's).

How.  A tensor on the stand-in is a ``torch.Tensor`` wrapper subclass (``StandinTensor``) holding
a CPU tensor; its ``__torch_dispatch__`` checks the devices of every ATen operation's arguments,
runs the operation on the CPU data and wraps the results.  A ``TorchFunctionMode`` (``active()``)
sends ``.to(device)``, ``.cuda()`` and ``device=`` factories to it and notes where each CPU tensor
was made (``torch.zeros``, ...), so that :func:`explain` can say "torch.zeros created its tensor
on the CPU while the model is on the device".  The wrapper reports the device ``meta``: it is the
only device type besides ``cpu`` that PyTorch's autograd engine runs without a device backend (a
wrapper reporting ``cuda`` aborts the process in ``backward`` on torch 2.13.0+cpu, "not linked with
support for cuda devices", and on 2.14.1+cu130 without a GPU, "CUDA driver version is
insufficient").  The ``meta`` device itself is not enough: it has no values, and it accepts a CPU
input against meta weights.  Tested with torch 2.13.0 and 2.14.1.

Use::

    with standin_device.active() as device:       # device == standin_device.DEVICE
        model = model.to(device)
        model.log_prob(x.to(device))               # refused: DeviceMixingError, a RuntimeError
"""
import contextlib
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import return_and_correct_aliasing

#: what ``tensor.device`` says on the stand-in
DEVICE = torch.device("meta")
#: how messages call it
NAME = "the device"
#: ``PSET_STANDIN_DEVICE=1``: ``--device cuda`` of the library means the stand-in (to test the CLI without a GPU)
ENV_VAR = "PSET_STANDIN_DEVICE"

aten = torch.ops.aten
#: copies between devices: allowed in every direction, as on CUDA
_COPY_OPS = {aten.copy_.default, aten._to_copy.default, aten.copy.default}
#: ops whose first argument decides where the indices may be
_INDEX_OPS = {aten.index.Tensor, aten.index_put_.default, aten.index_put.default, aten._index_put_impl_.default}


class DeviceMixingError(RuntimeError):
    """Student code did on the stand-in what CUDA refuses.

    ``kind``: ``"mix"`` (a CPU tensor met device tensors), ``"index"`` (a CPU tensor indexed with a
    device index) or ``"numpy"``.  (``device_tensor.data = cpu_tensor`` is refused by PyTorch itself,
    "incompatible tensor type", before any operation: :func:`explain` knows that message.)
    ``op``: the operation's name; ``cpu_tensor``: the CPU tensor involved (or None).
    """

    def __init__(self, message, *, kind, op, cpu_tensor=None):
        super().__init__(message)
        self.kind, self.op, self.cpu_tensor = kind, op, cpu_tensor


def _shape(t):
    return tuple(t.shape)


class StandinTensor(torch.Tensor):
    """A tensor on the stand-in device: CPU data in ``_data``, reporting ``DEVICE``."""

    @staticmethod
    def __new__(cls, data):
        if isinstance(data, StandinTensor) or data.device.type != "cpu":
            raise TypeError(f"StandinTensor wraps a CPU tensor, got one on {data.device}")
        wrapper = torch.Tensor._make_wrapper_subclass(
            cls, data.shape, strides=data.stride(), storage_offset=data.storage_offset(), dtype=data.dtype,
            layout=data.layout, device=DEVICE, requires_grad=data.requires_grad)
        wrapper._data = data
        return wrapper

    def __repr__(self, **kwargs):
        return f"StandinTensor({self._data!r})"

    @property
    def is_meta(self):  # Module.load_state_dict skips (a silent no-op) parameters that say they are meta
        return False

    def __reduce_ex__(self, protocol):  # torch.save of a stand-in tensor saves its CPU values
        return self._data.__reduce_ex__(protocol)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.numpy, torch.Tensor.__array__):
            raise DeviceMixingError(
                f"Tensor.numpy() of a tensor on {NAME}: CUDA refuses it (TypeError: can't convert cuda:0 device "
                "type tensor to numpy); stay in torch, or copy with .cpu() first", kind="numpy", op="Tensor.numpy")
        if func is torch.Tensor.tolist:  # a copy to the host, which CUDA allows
            _note_host_copy(args[0]._data.numel())
            return args[0]._data.tolist()
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        _check_devices(func, args, kwargs)
        device = kwargs.get("device")
        to_cpu = func is aten._to_copy.default and device is not None and torch.device(device).type == "cpu"
        unwrapped_args, unwrapped_kwargs = pytree.tree_map_only(StandinTensor, lambda t: t._data, (args, kwargs))
        if device is not None and torch.device(device) == DEVICE:  # new_zeros(..., device=self.device) in autograd
            unwrapped_kwargs = {**unwrapped_kwargs, "device": torch.device("cpu")}
        out = func(*unwrapped_args, **unwrapped_kwargs)
        if func is aten._local_scalar_dense.default:  # .item(), float(t), bool(t), int(t)
            _note_host_copy(1)
        if to_cpu:
            _note_host_copy(out.numel())
            return out
        if func is aten.copy_.default and not isinstance(args[0], StandinTensor):
            _note_host_copy(args[0].numel())
            return args[0]  # a copy into a CPU tensor stays on the CPU
        wrapped = pytree.tree_map_only(torch.Tensor, lambda t: t if isinstance(t, StandinTensor) else
                                       StandinTensor(t), out)
        return return_and_correct_aliasing(func, args, kwargs, wrapped)


@dataclass
class HostCopies:
    """What code copied from the stand-in to the CPU: ``waits`` copies (each one, on a GPU, waits until the
    device has finished all its queued work) and ``elements`` copied in all."""
    waits: int = 0
    elements: int = 0


_counters = []  # the HostCopies of every counting() block that is open


def _note_host_copy(elements):
    for counter in _counters:
        counter.waits += 1
        counter.elements += elements


@contextlib.contextmanager
def counting_host_copies():
    """Count the copies from the stand-in to the CPU (``.item()``, ``.tolist()``, ``.cpu()``, ``bool(t)``, ...)
    made in the block; yields a :class:`HostCopies`.  On a GPU each is a synchronisation: a sampler that
    makes one per pixel and image, or moves its canvas to the CPU and back at every step, is slow there,
    however fast it is on the CPU."""
    counter = HostCopies()
    _counters.append(counter)
    try:
        yield counter
    finally:
        _counters.remove(counter)


def _tensors(tree):
    return [t for t in pytree.tree_leaves(tree) if isinstance(t, torch.Tensor)]


def _check_devices(func, args, kwargs):
    """Raise :class:`DeviceMixingError` for what CUDA refuses (see the module docstring)."""
    if func in _COPY_OPS:
        return
    name = func.overloadpacket.__name__
    if func in _INDEX_OPS:
        self, indices = args[0], [t for t in _tensors(args[1]) if t is not None]
        if not isinstance(self, StandinTensor):
            if any(isinstance(t, StandinTensor) for t in indices):
                raise DeviceMixingError(
                    f"{name}: a tensor on the CPU of shape {_shape(self)} indexed with a tensor on {NAME}; CUDA "
                    "refuses it (indices should be either on cpu or on the same device as the indexed tensor)",
                    kind="index", op=name, cpu_tensor=self)
            others = _tensors(args[2:])  # index_put's values
        else:
            others = _tensors(args[2:])  # CPU indices of a device tensor are allowed, as on CUDA
        for t in others:
            if isinstance(t, StandinTensor) != isinstance(self, StandinTensor) and t.dim() > 0:
                cpu = self if isinstance(t, StandinTensor) else t
                raise DeviceMixingError(f"{name}: a tensor on the CPU of shape {_shape(cpu)} met tensors on {NAME}",
                                        kind="mix", op=name, cpu_tensor=cpu)
        return
    for t in _tensors((args, kwargs)):
        if isinstance(t, StandinTensor):
            continue
        if t.device.type != "cpu":
            raise DeviceMixingError(f"{name}: a tensor on {t.device} met tensors on {NAME} ({DEVICE} here is the "
                                    "stand-in device: create tensors with the model's device)", kind="mix", op=name)
        if t.dim() > 0:
            raise DeviceMixingError(
                f"{name}: a tensor on the CPU of shape {_shape(t)} met tensors on {NAME}; CUDA refuses it (Expected "
                "all tensors to be on the same device): create it on the model's device or move it with "
                ".to(device)", kind="mix", op=name, cpu_tensor=t)


# ---------------------------------------------------------------------------
# Moving tensors there, and the mode that sends device= and .to(device) to it
# ---------------------------------------------------------------------------

class _ToStandin(torch.autograd.Function):
    """CPU tensor -> stand-in copy, differentiable (the gradient comes back to the CPU)."""

    @staticmethod
    def forward(ctx, t):
        return StandinTensor(t.detach().clone())

    @staticmethod
    def backward(ctx, grad):
        return grad._data.clone() if isinstance(grad, StandinTensor) else grad


def to_standin(t):
    """A copy of the CPU tensor ``t`` on the stand-in (autograd follows it)."""
    if isinstance(t, StandinTensor):
        return t
    if t.device.type != "cpu":
        raise TypeError(f"to_standin takes a CPU tensor, got one on {t.device}")
    return _ToStandin.apply(t) if t.requires_grad else StandinTensor(t.detach().clone())


def is_standin(device_or_tensor):
    """True for a stand-in tensor, or for the stand-in device (``DEVICE``), or ``"standin"``."""
    if isinstance(device_or_tensor, torch.Tensor):
        return isinstance(device_or_tensor, StandinTensor)
    if isinstance(device_or_tensor, str) and device_or_tensor == "standin":
        return True
    try:
        return torch.device(device_or_tensor) == DEVICE
    except (TypeError, RuntimeError):
        return False


def _means_standin(device):
    """Inside the mode, ``meta`` and ``cuda`` (which would be the model's device on a GPU) mean the stand-in."""
    if device is None:
        return False
    if isinstance(device, str) and device == "standin":
        return True
    try:
        device = torch.device(device)
    except (TypeError, RuntimeError):
        return False
    return device.type in ("meta", "cuda")


#: methods of Tensor that copy to the device
_TO_METHODS = {torch.Tensor.to, torch.Tensor.cuda}


@dataclass(frozen=True)
class Origin:
    """Where a CPU tensor was made: ``what`` ("torch.zeros"), and the first caller outside torch."""
    what: str
    file: str
    function: str
    line: int


_TORCH_DIR = str(Path(torch.__file__).resolve().parent)
_THIS_FILE = str(Path(__file__).resolve())


def _origin_of(func, suffix=""):
    name = getattr(func, "__name__", str(func))
    method = getattr(func, "__objclass__", None) is torch._C.TensorBase or \
        getattr(func, "__qualname__", "").startswith(("Tensor.", "TensorBase."))
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith(_TORCH_DIR)
                                 or frame.f_code.co_filename == _THIS_FILE):
        frame = frame.f_back
    if frame is None:
        return Origin(("Tensor." if method else "torch.") + name + suffix, "", "", 0)
    return Origin(("Tensor." if method else "torch.") + name + suffix, frame.f_code.co_filename,
                  frame.f_code.co_qualname, frame.f_lineno)


def _note_origin(out, func, args, kwargs):
    """Tag a CPU result with the :class:`Origin` of the CPU tensor it comes from (or of this factory)."""
    if not isinstance(out, torch.Tensor) or isinstance(out, StandinTensor) or out.device.type != "cpu" \
            or hasattr(out, "_standin_origin"):
        return
    inputs = _tensors((args, kwargs))
    origin = next((t._standin_origin for t in inputs if hasattr(t, "_standin_origin")), None)
    if origin is None and not inputs:
        origin = _origin_of(func)  # a factory: torch.zeros, torch.tensor, torch.from_numpy, ...
    elif origin is None and any(isinstance(t, StandinTensor) for t in inputs):
        origin = _origin_of(func, " (a copy to the CPU)")
    if origin is not None:
        try:
            out._standin_origin = origin
        except (AttributeError, RuntimeError):
            pass


class StandinMode(TorchFunctionMode):
    """Sends ``.to(device)``/``.cuda()``/``device=`` to the stand-in and notes where CPU tensors come from."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _TO_METHODS and isinstance(args[0], torch.Tensor):
            out = self._to(func, args, kwargs)
        elif "device" in kwargs and _means_standin(kwargs["device"]):
            kwargs = {**kwargs, "device": "cpu"}
            requires_grad = kwargs.pop("requires_grad", False)
            out = func(*args, **kwargs)
            return pytree.tree_map_only(torch.Tensor, lambda t: StandinTensor(t).requires_grad_(requires_grad)
                                        if not isinstance(t, StandinTensor) else t, out)
        else:
            out = func(*args, **kwargs)
        _note_origin(out, func, args, kwargs)
        return out

    def _to(self, func, args, kwargs):
        if func is torch.Tensor.cuda:
            device, dtype = DEVICE, None
        else:
            device, dtype, _, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
        if device is None or not _means_standin(device):
            return func(*args, **kwargs)
        moved = to_standin(args[0])
        return moved if dtype is None else moved.to(dtype)


@contextlib.contextmanager
def active():
    """Run a block with the stand-in device on; yields ``DEVICE`` (pass it to ``.to``)."""
    with StandinMode():
        yield DEVICE


_global_mode = None


def activate_for_process():
    """Turn the stand-in on for the rest of this process (the CLI under ``PSET_STANDIN_DEVICE=1``)."""
    global _global_mode
    if _global_mode is None:
        _global_mode = StandinMode()
        _global_mode.__enter__()
    return DEVICE


# ---------------------------------------------------------------------------
# One line for a device-mixing error, naming the student's function
# ---------------------------------------------------------------------------

#: CUDA's own messages for what the stand-in refuses
_CUDA_PATTERNS = ("Expected all tensors to be on the same device", "indices should be either on cpu or on the same device",
                  "device type tensor to numpy", "found at least two devices")
#: ``device_tensor.data = cpu_tensor`` on the stand-in (PyTorch's own refusal, before any operation)
_SET_DATA_PATTERN = "have incompatible tensor type"


def is_device_error(error):
    """True for a :class:`DeviceMixingError` or one of CUDA's device-mixing errors."""
    return isinstance(error, DeviceMixingError) or (
        isinstance(error, (RuntimeError, TypeError)) and any(p in str(error) for p in _CUDA_PATTERNS + (_SET_DATA_PATTERN,)))


def student_frames(error, student_files):
    """``[(qualname, file name, line)]`` of the traceback frames in one of ``student_files``, outermost first."""
    files = {Path(f).resolve() for f in student_files}
    return [(frame.f_code.co_qualname, Path(frame.f_code.co_filename).name, lineno)
            for frame, lineno in traceback.walk_tb(error.__traceback__)
            if Path(frame.f_code.co_filename).resolve() in files]


def student_frame(error, student_files):
    """``(qualname, file name, line)`` of the innermost traceback frame in one of ``student_files``, or None."""
    frames = student_frames(error, student_files)
    return frames[-1] if frames else None


def _attribute_of(model, t):
    """``("buffer"|"attribute", "net.0.mask", module)`` where ``t`` is held by a module of ``model``, or None."""
    if model is None or t is None:
        return None
    for prefix, module in model.named_modules():
        for name, value in list(module._buffers.items()) + list(vars(module).items()):
            if value is t:
                kind = "buffer" if name in module._buffers else "attribute"
                return kind, (prefix + "." if prefix else "") + name, module
    return None


def explain(error, student_files, model=None):
    """One line for a device-mixing error raised in student code, or None for any other error.

    Args:
        error: the exception (a :class:`DeviceMixingError` on the stand-in, CUDA's RuntimeError or
            TypeError on a GPU).
        student_files: paths of the student's files; the innermost frame in one of them names the function.
        model: the model that was moved, if any: a CPU tensor held by one of its modules is named.

    Returns:
        e.g. ``"MADE.sample: torch.zeros created its tensor on the CPU (line 212 of made.py), then it
        was used with the model's tensors on the device in MaskedLinear.forward (line 50): pass
        device=... (the model's device)"``.
    """
    if not is_device_error(error):
        return None
    where = student_frame(error, student_files)
    func = where[0] if where else "your code"
    at = f" (line {where[2]} of {where[1]})" if where else ""
    if _SET_DATA_PATTERN in str(error):
        return (f"{func}: set .data of a tensor on the device to a new CPU tensor, so it would be left on the CPU "
                f"(CUDA then refuses its next use with the model's tensors): copy into it in place (copy_){at}")
    if not isinstance(error, DeviceMixingError):
        return f"{func}: mixes devices, which CUDA refuses: {' '.join(str(error).split())[:200]}{at}"
    t = error.cpu_tensor
    held = _attribute_of(model, t)
    origin = getattr(t, "_standin_origin", None)
    files = {str(Path(f).resolve()) for f in student_files}
    made_by_student = origin is not None and bool(origin.file) and str(Path(origin.file).resolve()) in files
    if error.kind == "numpy":
        what = ("called .numpy() on a tensor on the device, which CUDA refuses: stay in torch (or .cpu() first, "
                "and move the result back)")
    elif held is not None and held[0] == "buffer":
        what = (f"buffer {held[1]} is on the CPU while the model is on the device (was it replaced by a new CPU "
                f"tensor? copy into it in place instead of rebinding it)")
    elif held is not None:
        what = (f"{held[1]} is a plain tensor attribute, so .to(device) left it on the CPU: register it with "
                f"register_buffer")
    elif made_by_student:
        used = "indexed with a tensor on the device" if error.kind == "index" else \
            "used with the model's tensors on the device"
        if where and where[0] != origin.function:
            used += f" in {where[0]} (line {where[2]})"
        return (f"{origin.function}: {origin.what} created its tensor on the CPU (line {origin.line} of "
                f"{Path(origin.file).name}), then it was {used}: pass device=... (the model's device)")
    elif error.kind == "index":
        what = "a CPU tensor was indexed with a tensor on the device, which CUDA refuses: create it on the device"
    else:  # made outside the student's code: the function that was given it is the one to blame
        entry = student_frames(error, student_files)[0] if where else None
        shape = f" of shape {_shape(t)}" if t is not None else ""
        inside = f" in {where[0]} (line {where[2]} of {where[1]})" if where and where != entry else at
        return (f"{entry[0] if entry else func}: a CPU tensor{shape} that it was given (a batch? an argument?) met "
                f"the model's tensors on the device ({error.op}){inside}: move it to the model's device with "
                f".to(device)")
    return f"{func}: {what}{at}"
