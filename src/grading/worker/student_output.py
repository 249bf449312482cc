"""What the student's code prints (worker side): captured per request, capped, sent back with the reply.

While a request runs, ``sys.stdout`` and ``sys.stderr`` are one ``CappedOutput``: it keeps the first
``MAX_CHARS`` characters of what is written (``printed.capped`` keeps at most 40 lines of them) (stdout and stderr interleaved, as a
terminal shows them) and only counts the lines after that, so printing 200 MB costs a count, never memory.
Everything written still goes on to the worker's own output pipe as before (the grader drains and truncates
it: the last lines of a worker that crashed, and the stack dumps of ``faulthandler``, come from there).
The grader shows the capture, labelled as the student's own output, under the test that made the call
(``host/report.py``); nothing of it reaches the grader's own output or results.json otherwise.
"""
import io
import sys

from ..printed import MAX_CHARS, capped


class CappedOutput(io.TextIOBase):
    """A text stream that keeps the start of what is written to it and counts the rest, passing it all on."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, passes_to):
        super().__init__()
        self.passes_to = passes_to
        self.head = ""  # at most MAX_CHARS characters
        self.line_ends = 0
        self.ends_open = False  # the last character written was not a newline

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            if len(self.head) < MAX_CHARS:
                self.head += text[:MAX_CHARS - len(self.head)]
            self.line_ends += text.count("\n")
            self.ends_open = not text.endswith("\n")
            try:
                self.passes_to.write(text)
            except (OSError, ValueError):
                pass
        return len(text)

    def flush(self):
        try:
            self.passes_to.flush()
        except (OSError, ValueError):
            pass

    def captured(self):
        """``{"text": the first lines, "more_lines": how many lines were not kept}``, or None if nothing was
        written."""
        total = self.line_ends + (1 if self.ends_open else 0)
        if not total:
            return None
        return capped(self.head, max(total - len(self.head.splitlines()), 0))


class Capture:
    """``with Capture() as capture: ...`` routes ``sys.stdout`` and ``sys.stderr`` into one ``CappedOutput``
    and puts the streams back afterwards, also when the student's code replaced them meanwhile."""

    output = None

    def __enter__(self):
        self.saved = sys.stdout, sys.stderr
        self.output = CappedOutput(sys.__stdout__ or sys.stdout)
        sys.stdout = sys.stderr = self.output
        return self

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self.saved
        return False

    def captured(self):
        return self.output.captured() if self.output is not None else None
