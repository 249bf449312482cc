"""The grader's exceptions, raised on the host side (both sides may import this module: no torch)."""


class GraderError(RuntimeError):
    """The grader itself could not do its job (not the student's fault)."""


class ProtocolError(Exception):
    """The other side of the worker's pipe sent something that is not a valid message."""


class ExpectedValuesAbsent(Exception):
    """The hidden expected values are not in this copy of the grader."""


class StudentCodeError(AssertionError):
    """The student's code failed: raised, timed out, crashed or could not be imported."""

    def __init__(self, message, not_implemented=False, kind="error"):
        super().__init__(message)
        self.not_implemented = not_implemented
        self.kind = kind  # "error", "not_implemented", "timeout", "memory", "crash", "import", "budget"
