"""The grader's exceptions, raised on the host side (both sides may import this module: no torch)."""


class GraderError(RuntimeError):
    """The grader itself could not do its job (not the student's fault)."""


class ProtocolError(Exception):
    """The other side of the worker's pipe sent something that is not a valid message."""


class ExpectedValuesAbsent(Exception):
    """The hidden expected values are not in this copy of the grader."""


KINDS = ("error", "not_implemented", "timeout", "memory", "crash", "import", "budget")  # of StudentCodeError


class StudentCodeError(AssertionError):
    """The student's code failed: raised, timed out, crashed or could not be imported.

    ``kind`` (one of ``KINDS``) says how; the report reads it (a stub's ``NotImplementedError`` is
    ``"not_implemented"``), never the message's words.  ``not_implemented=True`` is short for that kind.
    """

    def __init__(self, message, not_implemented=False, kind=None):
        super().__init__(message)
        self.kind = kind or ("not_implemented" if not_implemented else "error")
        assert self.kind in KINDS, self.kind

    @property
    def not_implemented(self):
        return self.kind == "not_implemented"
