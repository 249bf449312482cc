"""The probe registry (worker side): ``@probe(...)`` registers a probe, ``get(name)`` finds it."""
import importlib

_REGISTRY = {}


def probe(*modules, fresh_process=False):
    """Register a probe function under ``"<file>.<function name>"``, needing the student ``modules``.

    ``fresh_process=True`` runs it in a newly started worker, so that its peak memory does not add up with
    what earlier probes left in the process (the learning probes, which train a model).
    ``index.py`` reads these two arguments from the source, so they must be literals.
    """

    def register(func):
        name = f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}"
        func.student_modules = modules
        func.fresh_process = fresh_process
        _REGISTRY[name] = func
        return func

    return register


def get(name, module):
    """The probe ``name`` (``"q2.made_log_prob"``), importing ``module``, where it is defined, if needed."""
    if name not in _REGISTRY:
        importlib.import_module(module)
    return _REGISTRY[name]
