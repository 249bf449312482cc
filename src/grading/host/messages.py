"""The words of the worker client's messages (host side): calls, exits and start-up failures as a TA says them."""
import ast
from pathlib import Path

SIGNAL_NAMES = {4: "SIGILL, illegal instruction", 6: "SIGABRT, aborted", 7: "SIGBUS, bus error",
                8: "SIGFPE, arithmetic error", 9: "SIGKILL, killed", 11: "SIGSEGV, segmentation fault",
                13: "SIGPIPE", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ, file size limit exceeded"}


def qualified_name(path, line, function):
    """``MADE.forward`` for the function ``forward`` at ``line`` of ``path`` (read with ast, never run)."""
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return function
    best = None

    def visit(node, prefix):
        nonlocal best
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                end = getattr(child, "end_lineno", None) or child.lineno
                if child.lineno <= line <= end and not isinstance(child, ast.ClassDef) and child.name == function:
                    best = name
                visit(child, name + ".")

    visit(tree, "")
    return best or function


def short(value, limit=60):
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"tensor{tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe_call(probe, kwargs):
    """``q1.bernoulli_ll(seed=0, shape=[4, 3])``: the input case, never an expected value."""
    text = f"{probe}({', '.join(f'{k}={short(v)}' for k, v in kwargs.items())})"
    return text if len(text) <= 240 else text[:237] + "..."


def ending(returncode):
    """``exit status 1`` or ``signal 11: SIGSEGV, segmentation fault``."""
    if returncode >= 0:
        return f"exit status {returncode}"
    return f"signal {-returncode}" + (f": {SIGNAL_NAMES[-returncode]}" if -returncode in SIGNAL_NAMES else "")


def last_lines(text, lines=15, limit=1200):
    """The end of ``text``: whole lines only, at most ``limit`` characters (the last line may be cut at its
    start, never at its end, where an error message says what happened)."""
    kept = []
    for line in reversed(text.strip().splitlines()):
        if kept and (len(kept) == lines or sum(map(len, kept)) + len(line) > limit):
            break
        kept.append(line if len(line) <= limit else "..." + line[-limit:])
    return "\n".join(reversed(kept))


def start_failure(hello, returncode, seconds, limit_s, output):
    """What went wrong when the worker did not say hello: exited (how, after how long), went silent, or sent
    something else; the first line ends with the worker's last line of output, the lines before it follow."""
    if returncode is not None:
        head = f"the worker exited during start-up after {seconds:.1f} s ({ending(returncode)})"
    elif hello is None:
        head = f"the worker did not start within {seconds:.0f} s (the limit is {limit_s:g} s; a very busy machine?)"
    elif isinstance(hello, BaseException):
        head = f"the worker stopped answering during start-up after {seconds:.1f} s ({type(hello).__name__}: {hello})"
    else:
        head = f"the worker sent {str(hello)[:80]!r} instead of its hello after {seconds:.1f} s"
    tail = last_lines(output)
    if not tail:
        return head + "; it printed nothing"
    last = tail.splitlines()[-1]
    return f"{head}: {last}" + (f"\nits last lines:\n{tail}" if "\n" in tail else "")


PREDICATES = ("raised ", "did not return ")  # details that go on from the function's name without a colon


def located(failure):
    """``made.MADE.forward (line 12)``, ``made.MADE.forward``, ``line 3 of made.py`` (its top level) or None."""
    if failure.function:
        return failure.function + (f" (line {failure.line})" if failure.line is not None else "")
    if failure.line is not None and failure.file:
        return f"line {failure.line} of {failure.file}"
    return None


def render(failure):
    """The message a student reads for a ``Failure``: who (the function and its line, else the call; the file
    for an import), what happened, then the lines below (traceback, last output).  The one place that writes
    a failure out: ``str()`` of every ``StudentCodeError`` that the worker client raises is this."""
    if failure.kind == "import":
        subject, joiner = failure.file, " "
    else:
        subject = located(failure) or failure.call
        joiner = " " if failure.detail.startswith(PREDICATES) else ": "
    head = f"{subject}{joiner}{failure.detail}" if subject else failure.detail
    return head if failure.trace is None else f"{head}\n{failure.trace}"
