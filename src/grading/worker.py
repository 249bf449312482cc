"""The worker process: the only place where student code runs.

Started by ``sandbox.Worker`` as ``python worker.py SUBMISSION_DIR RESPONSE_FD``.
It reads requests from stdin and writes replies to the file descriptor
RESPONSE_FD; its stdout and stderr (whatever the student prints) go to a pipe
that the grader drains and truncates.  Requests:

* ``{"op": "import", "module": "made"}``: import ``submission/made.py``;
* ``{"op": "probe", "name": "q2.made_log_prob", "kwargs": {...}}``: run a probe
  from ``src/grading/probes`` on the submission and reply with its result.

Replies are ``{"ok": True, "value": ...}`` or ``{"ok": False, "error": {...}}``.
"""
import importlib
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Submission:
    """Lazy access to the student's modules: ``submission.made`` imports made.py."""

    def __init__(self, directory):
        self.directory = Path(directory).resolve()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return importlib.import_module(name)


def student_traceback(error, submission_dir):
    """The traceback of ``error`` cut to the frames in the student's files (or the last frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if Path(f.filename).resolve().is_relative_to(submission_dir)]
    shown = own or frames[-1:]
    lines = traceback.format_list(shown) + traceback.format_exception_only(type(error), error)
    return "".join(lines).rstrip()


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
        return plain(probes.get(request["name"])(submission, **request["kwargs"]))
    raise ValueError(f"unknown request {request['op']!r}")


def main(argv):
    submission_dir, response_fd = Path(argv[1]).resolve(), int(argv[2])
    sys.path[:0] = [str(submission_dir), str(ROOT)]
    sys.dont_write_bytecode = True
    from src.grading import protocol
    import torch

    torch.set_num_threads(1)
    requests = sys.stdin.buffer
    responses = os.fdopen(response_fd, "wb", buffering=0)
    submission = Submission(submission_dir)
    while True:
        try:
            request = protocol.read_message(requests)
        except EOFError:
            return 0
        try:
            reply = {"ok": True, "value": handle(request, submission)}
        except BaseException as error:  # SystemExit and KeyboardInterrupt from student code too
            reply = {"ok": False, "error": {
                "type": type(error).__name__,
                "message": str(error),
                "traceback": student_traceback(error, submission_dir),
                "not_implemented": isinstance(error, NotImplementedError),
            }}
        sys.stdout.flush()
        sys.stderr.flush()
        responses.write(protocol.encode(reply))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
