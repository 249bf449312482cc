"""The stack watch (worker side): notes to the grader on which student calls are running, and for how long."""
import sys
import threading
import time

import torch

from .frames import student_qualname

SAMPLE_EVERY_S = 0.1  # how often StackWatch looks at the stack while a request runs
NOTE_AFTER_S = 1.0  # a request that runs longer than this gets notes ...
NOTE_EVERY_S = 0.5  # ... this often


def describe_arguments(frame):
    """``"x: (2, 1, 5, 5) float64, n: 3"``: the arguments of a running call (tensors by shape, never values)."""
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
