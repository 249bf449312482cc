"""The probes by name, read from the probe files' source without running them (no torch): the grader's side
learns from here which student modules a probe needs and where it is defined, never by importing it."""
import ast
import dataclasses
import functools

from ...paths import PROBES_DIR

PACKAGE = __name__.rsplit(".", 1)[0]  # src.grading.worker.probes


@dataclasses.dataclass(frozen=True)
class ProbeInfo:
    name: str  # "q2.made_log_prob"
    module: str  # "src.grading.worker.probes.q2": where the worker finds it
    student_modules: tuple  # ("made",): imported before the probe runs
    fresh_process: bool  # run in a newly started worker


def _decorator(node):
    """The ``@probe(...)`` decorator of a function definition, or None."""
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "probe":
            return decorator
    return None


@functools.lru_cache(maxsize=None)
def probes():
    """``{name: ProbeInfo}`` for every probe defined in a ``.py`` file of this folder."""
    found = {}
    for path in sorted(PROBES_DIR.glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
            call = _decorator(node) if isinstance(node, ast.FunctionDef) else None
            if call is None:
                continue
            fresh = {k.arg: ast.literal_eval(k.value) for k in call.keywords}.get("fresh_process", False)
            name = f"{path.stem}.{node.name}"
            found[name] = ProbeInfo(name, f"{PACKAGE}.{path.stem}", tuple(ast.literal_eval(a) for a in call.args),
                                    bool(fresh))
    return found


def get(name):
    """The ``ProbeInfo`` of probe ``name``; KeyError if there is none."""
    return probes()[name]
