"""The grader's exceptions, raised on the host side (both sides may import this module: no torch)."""
from dataclasses import dataclass


class GraderError(RuntimeError):
    """The grader itself could not do its job (not the student's fault)."""


class ProtocolError(Exception):
    """The other side of the worker's pipe sent something that is not a valid message."""


class ExpectedValuesAbsent(Exception):
    """The hidden expected values are not in this copy of the grader."""


KINDS = ("error", "not_implemented", "timeout", "memory", "crash", "import", "budget")  # of StudentCodeError


@dataclass(frozen=True)
class Failure:
    """How the student's code failed, as data: made by the worker client (``host/failures.py``) from what the
    worker reports, written out as the student reads it by ``host/messages.render``."""
    kind: str  # one of KINDS
    function: str | None = None  # the student function at fault, "made.MADE.forward", if known
    line: int | None = None  # the line it was running, if known
    detail: str = ""  # the rest of the first line: what happened ("raised ValueError: bad value")
    call: str = ""  # the grader's call, named first when no function is: "q1.bernoulli_ll(seed=0)"
    file: str = ""  # the student's file: the one that could not be imported, or whose top level ran
    trace: str | None = None  # the lines below the first: the student's traceback, the worker's last output


class StudentCodeError(AssertionError):
    """The student's code failed: raised, timed out, crashed or could not be imported.

    ``kind`` (one of ``KINDS``) says how; the report reads it (a stub's ``NotImplementedError`` is
    ``"not_implemented"``), never the message's words.  ``not_implemented=True`` is short for that kind.
    ``failure``: the ``Failure`` that the message was written from (None for a judge's own message).
    """

    def __init__(self, message, not_implemented=False, kind=None, failure=None):
        super().__init__(message)
        self.failure = failure
        self.kind = kind or (failure.kind if failure else None) or ("not_implemented" if not_implemented else "error")
        assert self.kind in KINDS, self.kind

    @property
    def not_implemented(self):
        return self.kind == "not_implemented"
