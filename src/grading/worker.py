"""The worker process: the only place where student code runs.

Started by ``sandbox.Worker`` as::

    python worker.py SUBMISSION_DIR REQUESTS RESPONSES LIMITS_JSON

``REQUESTS`` and ``RESPONSES`` name the two private pipes to the grader
(``fd:N`` on POSIX, ``handle:N`` on Windows); stdin is empty, and stdout and
stderr (whatever the student prints) go to a pipe that the grader drains and
truncates.  Before it reads any request, so before any student code runs, the
worker imports torch and sets its own limits (``LIMITS_JSON``, see
``privileges.Limits``): address space = what it uses now + ``memory_mb``,
processes, file size, no core dumps.  Hard and soft limits are both set, so
student code cannot raise them again.  The student's folder is put on
``sys.path`` only after that, so a file named ``torch.py`` in a submission
cannot replace what the worker itself imports.

The first message is ``{"hello": {...}}`` (pid, memory at start, the limits
that took effect).  Requests:

* ``{"op": "import", "module": "made"}``: import ``submission/made.py``;
* ``{"op": "probe", "name": "q2.made_log_prob", "module": ..., "kwargs": {...}}``:
  run a probe (``module`` is where it is defined, for probes outside
  ``src/grading/probes``) and reply with its result;
* ``{"op": "stats"}``: the top-level modules loaded and the peak memory.

Replies are ``{"seq": n, "ok": True, "value": ...}`` or ``{"seq": n, "ok":
False, "error": {...}}``.
"""
import importlib
import json
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_TEXT = 4000
PROBE_PACKAGES = ("src.grading.",)  # where probe modules may come from


class Submission:
    """Lazy access to the student's modules: ``submission.made`` imports made.py."""

    def __init__(self, directory):
        self.directory = Path(directory).resolve()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return importlib.import_module(name)


def _in_submission(filename, submission_dir):
    try:
        return Path(filename).resolve().is_relative_to(submission_dir)
    except (OSError, ValueError):
        return False


def student_traceback(error, submission_dir):
    """The traceback of ``error`` cut to the frames in the student's files (or the last frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if _in_submission(f.filename, submission_dir)]
    shown = own or frames[-1:]
    lines = traceback.format_list(shown) + traceback.format_exception_only(type(error), error)
    text = "".join(lines).rstrip()
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT // 2] + "\n[...]\n" + text[-MAX_TEXT // 2:]


def unimplemented_function(error, submission_dir):
    """``"made.MADE.forward"`` when ``error`` is a bare ``NotImplementedError`` raised in a student file."""
    if not isinstance(error, NotImplementedError) or str(error) not in ("", "TODO"):
        return None
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or not _in_submission(tb.tb_frame.f_code.co_filename, submission_dir):
        return None
    code = tb.tb_frame.f_code
    return f"{Path(code.co_filename).stem}.{getattr(code, 'co_qualname', code.co_name)}"


def innermost_student_function(error, submission_dir):
    """``"made.MADE.log_prob"``: the innermost frame of the traceback that is in a student file."""
    found, tb = None, error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if _in_submission(code.co_filename, submission_dir):
            found = f"{Path(code.co_filename).stem}.{getattr(code, 'co_qualname', code.co_name)}"
        tb = tb.tb_next
    return found if found and not found.endswith(".<module>") else None


def is_memory_error(error):
    text = str(error)[:2000]
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and ("can't allocate memory" in text or "Cannot allocate memory" in text
                                             or "not enough memory" in text))


def plain(value, where="result"):
    """Check that ``value`` is plain data that the grader can decode safely."""
    import torch

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
    from src.grading import probes

    if request["op"] == "import":
        importlib.import_module(request["module"])
        return None
    if request["op"] == "probe":
        module = request.get("module")
        if module and module.startswith(PROBE_PACKAGES) and module not in sys.modules:
            importlib.import_module(module)  # registers the probes it defines
        return plain(probes.get(request["name"])(submission, **request["kwargs"]))
    if request["op"] == "stats":
        return {"modules": sorted({name.split(".")[0] for name in list(sys.modules)}), **memory_status()}
    raise ValueError(f"unknown request {request['op']!r}")


def memory_status():
    """Virtual size, resident size and peak resident size of this process in kB (Linux; else empty)."""
    try:
        with open("/proc/self/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        return {key: int(fields[name].split()[0]) for key, name in
                (("vm_kb", "VmSize"), ("rss_kb", "VmRSS"), ("peak_rss_kb", "VmHWM")) if name in fields}
    except (OSError, ValueError):
        return {}


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
    vm_kb = memory_status().get("vm_kb")
    if limits.get("memory_mb") and vm_kb and sys.platform.startswith("linux"):
        # Address space, relative to what Python and torch already mapped (the CUDA build of torch maps
        # several GB that it never touches; the CPU build about 640 MB).
        limit("RLIMIT_AS", (vm_kb * 1024) + limits["memory_mb"] * 1024 * 1024)
    return applied


def _enable_stack_dumps():
    """Python tracebacks on stderr (the grader's output pipe) for fatal signals and, on SIGUSR1, on demand:
    the grader asks for one before it stops a call that timed out, to say where the code was."""
    import faulthandler
    import signal

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
    try:
        return {"type": type(error).__name__, "message": str(error)[:MAX_TEXT],
                "traceback": student_traceback(error, submission_dir),
                "not_implemented": isinstance(error, NotImplementedError),
                "unimplemented": unimplemented_function(error, submission_dir), "memory": memory,
                "where": innermost_student_function(error, submission_dir)}
    except BaseException as inner:  # e.g. a __str__ that raises, or no memory left to format
        return {"type": type(error).__name__, "message": "", "traceback": f"{type(error).__name__} "
                f"(its message could not be shown: {type(inner).__name__})", "not_implemented": False,
                "unimplemented": None, "memory": memory or isinstance(inner, MemoryError)}


def main(argv):
    submission_dir = Path(argv[1]).resolve()
    requests, responses = open_channel(argv[2], "rb"), open_channel(argv[3], "wb")
    limits = json.loads(argv[4]) if len(argv) > 4 else {}
    sys.dont_write_bytecode = True
    here = Path(__file__).resolve().parent  # python puts the script's folder first: not for student code
    sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != here]
    sys.path.insert(0, str(ROOT))
    from src.grading import protocol
    import torch

    torch.set_num_threads(int(limits.get("threads", 1)))
    _enable_stack_dumps()
    started = memory_status()
    applied = apply_limits(limits)
    sys.path.insert(0, str(submission_dir))
    os.environ.pop("PYTHONSTARTUP", None)
    protocol.write_message(responses, {"hello": {"pid": os.getpid(), "memory": started, "limits": applied,
                                                 "torch": str(torch.__version__)}})
    submission = Submission(submission_dir)
    while True:
        try:
            request = protocol.read_message(requests)
        except EOFError:
            return 0
        seq = request.get("seq") if isinstance(request, dict) else None
        try:
            reply = {"seq": seq, "ok": True, "value": handle(request, submission)}
        except BaseException as error:  # SystemExit and KeyboardInterrupt from student code too
            reply = {"seq": seq, "ok": False, "error": error_reply(error, submission_dir)}
            del error
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        try:
            protocol.write_message(responses, reply)
        except BaseException as error:  # e.g. MemoryError while encoding a large result
            protocol.write_message(responses, {"seq": seq, "ok": False, "error": error_reply(error, submission_dir)})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
