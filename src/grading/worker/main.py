"""The worker process (worker side, as the sandbox user): the only place where student code runs.

Started by ``start.py`` (see there for its arguments); reads requests from the grader's pipe, runs them
and replies.  Its limits are set before any student code runs; the student's folder goes on ``sys.path``
only after torch and the grader's own modules are imported, so a ``torch.py`` in a submission cannot replace
them.  Requests (``protocol.py`` carries them):

* ``{"op": "import", "module": "made"}``: import ``submission/made.py``;
* ``{"op": "probe", "name": "q2.made_log_prob", "module": ..., "kwargs": {...}, "hung": {...},
  "trace": False}``: run a probe (``module``: where it is defined, from ``probes/index.py``); ``hung``: the
  student functions that timed out earlier, replaced by stand-ins (``stand_ins.py``); ``trace``: also reply
  which student functions the probe entered;
* ``{"op": "stats"}``: the top-level modules loaded and the peak memory.

The first message is ``{"hello": {...}}``.  Replies are ``{"seq": n, "ok": True, "value": ...}`` or
``{"seq": n, "ok": False, "error": {...}}``, with ``"output": {"text", "more_lines"}`` when the student's code
printed something (``student_output.py``); meanwhile ``StackWatch`` sends notes ``{"seq": n, "note": ...}``.
"""
import faulthandler
import functools
import importlib
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import torch

from .. import protocol
from ..proc import memory_kb
from .frames import MAX_TEXT, innermost_student_function, student_traceback, unimplemented_function
from .probes import registry
from .stack_watch import StackWatch
from .stand_ins import NotCalledAgain, install_stand_ins, run_traced
from . import student_imports
from .student_output import Capture

PROBE_PACKAGE = registry.__name__.rsplit(".", 1)[0] + "."  # probe modules may come from there only


class Submission:
    """Lazy access to the student's modules: ``submission.made`` imports made.py."""

    def __init__(self, directory):
        self.directory = Path(directory).resolve()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return importlib.import_module(name)


def is_memory_error(error):
    text = str(error)[:2000]
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and ("can't allocate memory" in text or "Cannot allocate memory" in text
                                             or "not enough memory" in text))


def plain(value, where="result"):
    """Check that ``value`` is plain data that the grader can decode safely."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            value = value.to_dense()
        return value.detach().cpu().clone()
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, not plain data")


def handle(request, submission):
    """The reply's ``value`` (and, when tracing, the functions entered) for one request."""
    if request["op"] == "import":
        importlib.import_module(request["module"])
        return None
    if request["op"] == "probe":
        module = str(request.get("module"))
        if not module.startswith(PROBE_PACKAGE):
            raise ValueError(f"probe module {module!r} is not in {PROBE_PACKAGE}")
        install_stand_ins(request.get("hung") or {}, submission.directory)
        run = functools.partial(registry.get(request["name"], module), submission, **request["kwargs"])
        if request.get("trace"):
            value, entered = run_traced(run, submission.directory)
            return {"value": plain(value), "entered": entered}
        return plain(run())
    if request["op"] == "stats":
        return {"modules": sorted({name.split(".")[0] for name in list(sys.modules)}), **memory_kb()}
    raise ValueError(f"unknown request {request['op']!r}")


def apply_limits(limits):
    """Set this process's resource limits (soft = hard, so they stay); returns what took effect."""
    try:
        import resource
    except ImportError:  # Windows
        return {"note": "no resource limits on this platform"}
    applied = {}

    def limit(name, value):
        which = getattr(resource, name, None)
        if which is None or value is None:
            return
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        try:
            resource.setrlimit(which, (value, value))
            applied[name] = value
        except (ValueError, OSError) as error:
            applied[name] = f"not set: {error}"

    limit("RLIMIT_CORE", 0)
    if limits.get("fsize_mb"):
        limit("RLIMIT_FSIZE", limits["fsize_mb"] * 1024 * 1024)
    if limits.get("nproc"):
        limit("RLIMIT_NPROC", limits["nproc"])
    vm_kb = memory_kb().get("vm_kb")
    if limits.get("memory_mb") and vm_kb and sys.platform.startswith("linux"):
        if cuda_present():
            # Starting CUDA maps tens of GB of address space, so RLIMIT_AS would stop it; the grader's
            # resident-size watch (host/memory_watch.py) is the memory limit here, and torch caps the GPU memory.
            applied["RLIMIT_AS"] = "not set: CUDA is present (the grader watches the resident size)"
            applied["gpu_memory_mb"] = cap_gpu_memory(limits.get("gpu_memory_mb"))
        else:
            # Address space, relative to what Python and torch already mapped (the CUDA build of torch maps
            # several GB that it never touches; the CPU build about 640 MB).
            limit("RLIMIT_AS", (vm_kb * 1024) + limits["memory_mb"] * 1024 * 1024)
    return applied


def cuda_present():
    """True when this worker sees a usable GPU (the device parts then also run there)."""
    try:
        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - a broken driver counts as no GPU
        return False


def cap_gpu_memory(gpu_memory_mb):
    """Cap what torch may allocate on GPU 0 at ``gpu_memory_mb`` (None: leave it); returns the cap in MB."""
    if not gpu_memory_mb:
        return None
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, gpu_memory_mb * 1024 * 1024 / total), 0)
    return gpu_memory_mb


def _enable_stack_dumps():
    """Python tracebacks on stderr (the grader's output pipe) for fatal signals and, on SIGUSR1, on demand:
    the grader asks for one before it stops a call that timed out, to say where the code was."""
    faulthandler.enable(file=sys.stderr, all_threads=False)
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=False)


def open_channel(spec, mode):
    kind, _, number = spec.partition(":")
    if kind == "handle":  # Windows: an inherited OS handle
        import msvcrt

        fd = msvcrt.open_osfhandle(int(number), os.O_RDONLY if "r" in mode else os.O_WRONLY)
    else:
        fd = int(number)
    return os.fdopen(fd, mode, buffering=0)


def error_reply(error, submission_dir):
    memory = is_memory_error(error)
    if memory:
        traceback.clear_frames(error.__traceback__)  # free what the student allocated before formatting
    if isinstance(error, NotCalledAgain):
        return {"type": "NotCalledAgain", "hung": str(error)[:MAX_TEXT], "message": "", "traceback": "",
                "unimplemented": None, "memory": False,
                "where": innermost_student_function(error, submission_dir)}
    try:
        return {"type": type(error).__name__, "message": str(error)[:MAX_TEXT],
                "traceback": student_traceback(error, submission_dir),
                "unimplemented": unimplemented_function(error, submission_dir), "memory": memory,
                "where": innermost_student_function(error, submission_dir)}
    except BaseException as inner:  # e.g. a __str__ that raises, or no memory left to format
        return {"type": type(error).__name__, "message": "", "traceback": f"{type(error).__name__} "
                f"(its message could not be shown: {type(inner).__name__})",
                "unimplemented": None, "memory": memory or isinstance(inner, MemoryError)}


def main(argv, limits):
    """The request loop; ``argv`` as ``start.py`` got it, ``limits`` its parsed ``LIMITS_JSON``."""
    submission_dir = Path(argv[1]).resolve()
    requests, responses = open_channel(argv[2], "rb"), open_channel(argv[3], "wb")
    torch.set_num_threads(int(limits.get("threads", 1)))
    _enable_stack_dumps()
    started = memory_kb()
    applied = apply_limits(limits)
    sys.path.insert(0, str(submission_dir))
    student_imports.install()  # `submission.<name>` is the graded folder's <name>, nothing else
    os.environ.pop("PYTHONSTARTUP", None)
    writing = threading.Lock()  # the main loop's replies and the watch's notes share the channel

    def send(message):
        with writing:
            protocol.write_message(responses, message)

    send({"hello": {"pid": os.getpid(), "memory": started, "limits": applied, "torch": str(torch.__version__)}})
    submission = Submission(submission_dir)
    watch = StackWatch(submission_dir, send)
    watch.start()
    while True:
        try:
            request = protocol.read_message(requests)
        except EOFError:
            return 0
        seq = request.get("seq") if isinstance(request, dict) else None
        watch.begin(seq)
        capture = Capture()
        try:
            with capture:  # what the student's code prints comes back with the reply, capped
                value = handle(request, submission)
            reply = {"seq": seq, "ok": True, "value": value}
            if request.get("trace"):
                reply.update(value)
        except BaseException as error:  # SystemExit and KeyboardInterrupt from student code too
            reply = {"seq": seq, "ok": False, "error": error_reply(error, submission_dir)}
            del error
        watch.end()
        printed = capture.captured()
        if printed:
            reply["output"] = printed
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        try:
            send(reply)
        except BaseException as error:  # e.g. MemoryError while encoding a large result
            send({"seq": seq, "ok": False, "error": error_reply(error, submission_dir)})
