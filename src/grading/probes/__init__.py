"""Probes: the functions that the worker runs on a submission for the tests.

A probe lives in ``q1.py`` .. ``q4.py`` beside this file and is registered with
``@probe("made")``, naming the student modules it needs.  It takes the lazy
``submission`` (``submission.made`` is the student's made.py) and plain keyword
arguments (numbers, strings, tensors, lists, dicts), builds its inputs from
fixed seeds in float64, calls the student's code and returns plain data
(tensors, numbers, strings, lists, dicts) for the test to judge in the grader's
own process.  Probes never decide a grade: student code can tamper with
anything in the worker.
"""
import importlib

_REGISTRY = {}
PROBE_MODULES = ("q1", "q2", "q3", "q4")


def probe(*modules, fresh_process=False):
    """Register a probe function under ``"<file>.<function name>"``, needing ``modules``.

    ``fresh_process=True`` runs it in a newly started worker, so that its peak
    memory does not add up with what earlier probes left in the process (the
    learning probes: an optimizer pulls in torch._dynamo).
    """

    def register(func):
        name = f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}"
        func.student_modules = modules
        func.fresh_process = fresh_process
        _REGISTRY[name] = func
        return func

    return register


def _load_all():
    for name in PROBE_MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise


def get(name):
    if name not in _REGISTRY:
        _load_all()
    return _REGISTRY[name]


def modules_of(name):
    """The student modules (``"made"``, ...) that probe ``name`` imports."""
    return get(name).student_modules
