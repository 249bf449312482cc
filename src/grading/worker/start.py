"""The worker's entry point (worker side), run as a script by the grader's worker client::

    python -u start.py SUBMISSION_DIR REQUESTS RESPONSES LIMITS_JSON

``REQUESTS`` and ``RESPONSES`` name the two private pipes to the grader (``fd:N`` on POSIX, ``handle:N`` on
Windows); stdin is empty, and stdout and stderr (whatever the student prints) go to a pipe that the grader
drains and truncates.  ``LIMITS_JSON``: ``launchers.Limits``, which the worker sets on itself (``main.py``).

Only the standard library is imported before ``sys.path`` starts with this checkout: Python puts this
script's folder first, which is not for student code.
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def _own_path():
    """This checkout first, and not this folder."""
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if not p or Path(p).resolve() != HERE]


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    limits = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}  # a bad argument fails at once, before torch loads
    _own_path()
    from src.grading.paths import modules_from_elsewhere
    from src.grading.worker.main import main

    if modules_from_elsewhere(ROOT):  # this checkout's code only (another one may be mid-edit)
        sys.exit(f"the worker of {ROOT} imported another checkout's code: {modules_from_elsewhere(ROOT)[:3]}")
    sys.exit(main(sys.argv, limits))
