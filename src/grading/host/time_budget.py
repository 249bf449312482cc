"""The session's time budget for the student's code (host side): the backstop beside each call's own limit
(``grader.py --time-budget``; README's "Time limits")."""
from . import failures


class TimeBudget:
    """``total_s`` seconds (None: no budget) for all the calls of one grading; ``used_s`` so far."""

    def __init__(self, total_s):
        self.total_s = total_s
        self.used_s = 0.0

    def allowance(self, wanted_s, doing):
        """``(seconds, reason)``: the time the call ``doing`` may take, and why when the budget cut it; raises
        a ``StudentCodeError`` (kind ``"budget"``) once the budget is used up."""
        allowed, reason = wanted_s, ""
        if self.total_s is not None:
            left = self.total_s - self.used_s
            if left <= 0:
                raise failures.error(failures.not_run(doing, self.total_s))
            if left < allowed:
                allowed, reason = left, f" (what was left of the session's {self.total_s:g} s budget)"
        return allowed, reason
