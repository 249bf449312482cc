"""What the student's code was doing when a call ran long or timed out (host side): read from the worker's
stack notes (``worker/stack_watch.py``) or from a stack dump that the grader asks the worker for."""
import os
import re
import signal
import time
from pathlib import Path

from .messages import qualified_name

_FRAME = re.compile(r'File "([^"]+)", line (\d+) in (\S+)')
_FUNCTION_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def hung_function(note, display_dir):
    """``(name, line, arguments)`` of the call that hung, from the worker's last note, or None.

    The innermost student call that has been running for at least half of the
    time so far: a function that never returns, not a correct one that a slow
    caller calls many times (each of those calls is short).  Functions that
    cannot be replaced by name (nested ones, lambdas) give way to their caller.
    """
    try:
        elapsed = float(note["elapsed"])
        for frame in note["stack"]:
            name, line = str(frame["function"]), int(frame["line"])
            module, _, function = name.partition(".")
            path = display_dir / f"{module}.py"
            if float(frame["seconds"]) >= 0.5 * elapsed and _FUNCTION_NAME.fullmatch(name) and path.is_file():
                if "." not in function:  # Python < 3.11 names no class: find it in the file
                    name = f"{module}.{qualified_name(path, line, function)}"
                return name, line, str(frame.get("arguments") or "")[:300]
    except (TypeError, KeyError, ValueError, AttributeError):
        pass
    return None


def waiting_for(note, doing, elapsed, timeout_s, shown):
    """``(still running made.MADE.forward (line 12) after 15 s; time limit 60 s)``: what a long call waits for;
    ``shown`` maps sandbox paths to the student's."""
    try:
        frame = note["stack"][0]
        what = f"{frame['function']} (line {int(frame['line'])})"
    except (TypeError, KeyError, IndexError, ValueError):
        what = doing.split("(", 1)[0]
    return f"(still running {shown(what)[:120]} after {elapsed:.0f} s; time limit {timeout_s:g} s)"


def where_now(process, output, submission_dir):
    """Where the worker's main thread is now, in the student's files (``student_frame``): asks the worker
    for a stack dump (SIGUSR1) and reads it from its output (``worker_pipes.OutputTail``)."""
    if process is None or process.poll() is not None or not hasattr(signal, "SIGUSR1"):
        return None
    before = output.total
    try:
        os.kill(process.pid, signal.SIGUSR1)
    except OSError:
        return None
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and output.total == before:
        time.sleep(0.02)
    time.sleep(0.05)
    return student_frame(output.tail.decode("utf-8", "replace"), submission_dir)


def student_frame(text, submission_dir):
    """``("made.MADE.forward", 12, "")``, or ``(None, 3, "made.py")`` for a file's top level: the innermost
    student frame of a faulthandler dump in ``text``, or None."""
    dump = text.rsplit("most recent call first", 1)
    if len(dump) < 2:
        return None
    for file, line, function in _FRAME.findall(dump[1]):
        try:
            inside = Path(file).resolve().is_relative_to(submission_dir)
        except (OSError, ValueError):
            inside = False
        if inside:
            if function == "<module>":
                return None, int(line), Path(file).name
            return f"{Path(file).stem}.{qualified_name(file, int(line), function)}", int(line), ""
    return None
