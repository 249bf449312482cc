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
* ``{"op": "probe", "name": "q2.made_log_prob", "module": ..., "kwargs": {...},
  "hung": {...}, "trace": False}``: run a probe (``module`` is where it is
  defined, for probes outside ``src/grading/probes``) and reply with its result.
  ``hung`` maps student functions that timed out earlier in this grading
  (``"pixelcnn.PixelCNN.forward"``) to the grader's message: they are replaced
  by a stand-in that raises ``NotCalledAgain`` at once (see ``install_stand_ins``).
  ``trace`` (``grader.py --trace-calls``): also reply which student functions the probe entered;
* ``{"op": "stats"}``: the top-level modules loaded and the peak memory.

Replies are ``{"seq": n, "ok": True, "value": ...}`` or ``{"seq": n, "ok":
False, "error": {...}}``.  While a request runs for more than ``NOTE_AFTER_S``
seconds, a ``StackWatch`` thread also sends notes ``{"seq": n, "note": {...}}``:
which student functions are on the stack and for how long (see ``StackWatch``).
"""
import functools
import importlib
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_TEXT = 4000
PROBE_PACKAGES = ("src.grading.",)  # where probe modules may come from
SAMPLE_EVERY_S = 0.1  # how often StackWatch looks at the stack while a request runs
NOTE_AFTER_S = 1.0  # a request that runs longer than this gets notes ...
NOTE_EVERY_S = 0.5  # ... this often


class NotCalledAgain(Exception):
    """Raised by the stand-in of a student function that timed out earlier in this grading.

    An Exception like any other that the student's code raises, so that a probe that goes on
    when a student function raises (2c's, when ``update_masks`` does) goes on here too."""


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


def function_name(code):
    """``"made.MADE.forward"``: the student file's name and the function's qualified name."""
    return f"{Path(code.co_filename).stem}.{getattr(code, 'co_qualname', code.co_name)}"


def unimplemented_function(error, submission_dir):
    """``"made.MADE.forward"`` when ``error`` is a bare ``NotImplementedError`` raised in a student file."""
    if not isinstance(error, NotImplementedError) or str(error) not in ("", "TODO"):
        return None
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or not _in_submission(tb.tb_frame.f_code.co_filename, submission_dir):
        return None
    return function_name(tb.tb_frame.f_code)


def innermost_student_function(error, submission_dir):
    """``"made.MADE.log_prob"``: the innermost frame of the traceback that is in a student file."""
    found, tb = None, error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if _in_submission(code.co_filename, submission_dir):
            found = function_name(code)
        tb = tb.tb_next
    return found if found and not found.endswith(".<module>") else None


def student_qualname(code, submission_dir, cache):
    """``"made.MADE.forward"`` for a code object of a student file, else None (``cache``: code -> name)."""
    try:
        return cache[code]
    except KeyError:
        pass
    name = cache[code] = function_name(code) if _in_submission(code.co_filename, submission_dir) else None
    return name


def describe_arguments(frame):
    """``"x: (2, 1, 5, 5) float64, n: 3"``: the arguments of a running call (tensors by shape, never values)."""
    import torch

    code = frame.f_code
    count = code.co_argcount + code.co_kwonlyargcount
    try:
        values = frame.f_locals
    except Exception:
        return ""
    parts = []
    for name in code.co_varnames[:count]:
        if name in ("self", "cls") or name not in values:
            continue
        value = values[name]
        if type(value) in (torch.Tensor, torch.nn.Parameter):  # exact types: a subclass could run code here
            parts.append(f"{name}: {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}")
        elif type(value) in (int, float, bool, type(None)) or (type(value) is str and len(value) <= 20):
            parts.append(f"{name}: {value!r}")
        else:
            parts.append(f"{name}: {type(value).__name__}")
    return ", ".join(parts)[:300]


class StackWatch:
    """Watches the main thread's stack while a request runs, so that the grader can tell which call hung.

    Every ``SAMPLE_EVERY_S`` it lists the student's frames on the stack and remembers
    since when each one (that invocation: the same frame object) has been there.
    Once the request has run ``NOTE_AFTER_S``, it sends the grader a note every
    ``NOTE_EVERY_S``: ``{"elapsed": s, "stack": [{"function", "line", "seconds",
    "arguments"}, ...]}``, innermost frame first.  After a time-out the grader takes
    the innermost call that has been running for most of the time as the one that
    hung: a slow ``sample`` that calls a correct ``forward`` many times shows as
    ``sample`` (each ``forward`` call is short), a ``forward`` that never returns
    as ``forward``.  The notes also tell a waiting grader what it waits for.
    Frames are held only until the next sample.
    """

    def __init__(self, submission_dir, send):
        self.submission_dir = submission_dir
        self.send = send
        self.main = threading.get_ident()
        self.lock = threading.Lock()
        self.request = None  # (seq, started) of the request being run
        self.frames = []  # [(frame, since)], innermost first
        self.noted = 0.0
        self.names = {}

    def start(self):
        threading.Thread(target=self._run, name="ps1-stack-watch", daemon=True).start()

    def begin(self, seq):
        with self.lock:
            self.request, self.frames, self.noted = (seq, time.monotonic()), [], 0.0

    def end(self):
        with self.lock:  # after this no note of the request is sent: the reply comes last
            self.request, self.frames = None, []

    def _run(self):
        while True:
            time.sleep(SAMPLE_EVERY_S)
            try:
                with self.lock:
                    if self.request is not None:
                        self._sample()
            except Exception:  # never let the watch take the worker down
                pass

    def _sample(self):
        now = time.monotonic()
        seen = {id(frame): since for frame, since in self.frames}
        frames, frame = [], sys._current_frames().get(self.main)
        while frame is not None:
            if student_qualname(frame.f_code, self.submission_dir, self.names):
                frames.append((frame, seen.get(id(frame), now)))  # held in self.frames: an id cannot be reused
            frame = frame.f_back
        self.frames = frames
        seq, started = self.request
        if now - started >= NOTE_AFTER_S and now - self.noted >= NOTE_EVERY_S:
            self.noted = now
            stack = [{"function": student_qualname(f.f_code, self.submission_dir, self.names), "line": f.f_lineno,
                      "seconds": round(now - since, 2), "arguments": describe_arguments(f)} for f, since in frames[:20]]
            self.send({"seq": seq, "note": {"elapsed": round(now - started, 2), "stack": stack}})


def install_stand_ins(hung, submission_dir):
    """Replace each function of ``hung`` (``"pixelcnn.PixelCNN.forward"`` -> message) in the student's loaded
    modules by a stand-in that raises ``NotCalledAgain(message)`` at once, so that calls that reach it, directly
    or through the student's own code, fail without waiting for a time-out again.  Only a speed-up: the grader's
    time limit still applies to every call."""
    if not hung:
        return
    inside = str(submission_dir) + os.sep  # a prefix test: resolving every module's path costs ~0.1 s per probe
    modules = [m for m in list(sys.modules.values()) if str(getattr(m, "__file__", None) or "").startswith(inside)]
    for name, message in hung.items():
        module_name, _, qualname = name.partition(".")
        owner = sys.modules.get(module_name)
        if owner not in modules:
            continue
        *path, attribute = qualname.split(".")
        for part in path:
            owner = vars(owner).get(part)
            if not isinstance(owner, type):
                break
        else:
            original = vars(owner).get(attribute)
            function = getattr(original, "__func__", original)  # staticmethod / classmethod
            if not callable(function) or getattr(function, "__ps1_stand_in__", False):
                continue

            @functools.wraps(function)
            def stand_in(*args, _message=message, **kwargs):
                raise NotCalledAgain(_message)

            stand_in.__ps1_stand_in__ = True
            replacement = type(original)(stand_in) if isinstance(original, (staticmethod, classmethod)) else stand_in
            setattr(owner, attribute, replacement)
            if not path:  # a module-level function: also where other student modules imported it by name
                for module in modules:
                    for key, value in list(vars(module).items()):
                        if value is original:
                            setattr(module, key, replacement)


def run_traced(function, submission_dir):
    """``(function(), [student functions it entered])`` (``grader.py --trace-calls``).

    A global trace function sees each Python call once and returns None (no line events),
    which costs much less than ``sys.setprofile`` (called for every builtin call too)."""
    entered, names = set(), {}

    def trace(frame, event, arg):
        name = student_qualname(frame.f_code, submission_dir, names)
        if name:
            entered.add(name)

    sys.settrace(trace)
    try:
        value = function()
    finally:
        sys.settrace(None)
    return value, sorted(entered)


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
    """The reply's ``value`` (and, when tracing, the functions entered) for one request."""
    from src.grading import probes

    if request["op"] == "import":
        importlib.import_module(request["module"])
        return None
    if request["op"] == "probe":
        module = request.get("module")
        if module and module.startswith(PROBE_PACKAGES) and module not in sys.modules:
            importlib.import_module(module)  # registers the probes it defines
        install_stand_ins(request.get("hung") or {}, submission.directory)
        run = functools.partial(probes.get(request["name"]), submission, **request["kwargs"])
        if request.get("trace"):
            value, entered = run_traced(run, submission.directory)
            return {"value": plain(value), "entered": entered}
        return plain(run())
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
    if isinstance(error, NotCalledAgain):
        return {"type": "NotCalledAgain", "hung": str(error)[:MAX_TEXT], "message": "", "traceback": "",
                "not_implemented": False, "unimplemented": None, "memory": False,
                "where": innermost_student_function(error, submission_dir)}
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
        try:
            value = handle(request, submission)
            reply = {"seq": seq, "ok": True, "value": value}
            if request.get("trace"):
                reply.update(value)
        except BaseException as error:  # SystemExit and KeyboardInterrupt from student code too
            reply = {"seq": seq, "ok": False, "error": error_reply(error, submission_dir)}
            del error
        watch.end()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        try:
            send(reply)
        except BaseException as error:  # e.g. MemoryError while encoding a large result
            send({"seq": seq, "ok": False, "error": error_reply(error, submission_dir)})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
