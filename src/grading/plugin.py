"""The pytest plugin of the grader: fixtures for tests, and scores from outcomes.

Tests are plain pytest tests decorated with ``graded("2b-0-basic")`` (points,
number and visibility from the manifest, through gradescope-utils'
decorators).  They get two fixtures:

* ``student``: the ``sandbox.Worker`` for the submission being graded;
* ``reference``: ``reference(key, actual) -> expected`` (see reference.py).

The plugin records one ``TestResult`` per graded test; ``grader.py`` prints them
and writes Gradescope's results.json.
"""
import dataclasses
from pathlib import Path

import pytest

from .reference import HIDDEN_FIXTURES, ROOT, ExpectedValuesAbsent, Reference, ReferenceStore
from .sandbox import StudentCodeError, Worker


@dataclasses.dataclass
class TestResult:
    test_id: str
    question: str
    max_score: float
    score: float | None  # None: unknown here (a hidden test without its expected values)
    status: str  # "passed", "failed" or "unknown"
    hidden: bool
    visibility: str
    message: str = ""
    seconds: float = 0.0


def pytest_configure(config):
    if _plugin(config) is None:  # plain `pytest`; grader.py passes its own instance
        config.pluginmanager.register(GraderPlugin(), "ps1-grader")


def pytest_addoption(parser):
    group = parser.getgroup("ps1 grader")
    group.addoption("--submission", default=str(ROOT / "submission"), help="folder with the student's files")
    group.addoption("--record-fixtures", action="store_true", help="record the reference values (use with solution/)")
    group.addoption("--fixtures-out", default=None, help="with --record-fixtures: write the files here, not in place")
    group.addoption("--worker-timeout", type=float, default=60.0, help="default seconds per call into student code")


def _plugin(config):
    return next((p for p in config.pluginmanager.get_plugins() if isinstance(p, GraderPlugin)), None)


@pytest.fixture(scope="session")
def student(request):
    """The sandboxed worker that runs the submission's code."""
    config = request.config
    plugin = _plugin(config)
    plugin.worker = Worker(config.getoption("--submission"), config.getoption("--worker-timeout"), plugin.launcher)
    yield plugin.worker
    plugin.worker.stop()


@pytest.fixture(scope="session")
def _reference_store(request):
    plugin = _plugin(request.config)
    plugin.store = ReferenceStore(record=request.config.getoption("--record-fixtures"))
    yield plugin.store
    if plugin.store.record:
        plugin.store.save(request.config.getoption("--fixtures-out"))


@pytest.fixture
def reference(request, _reference_store):
    """``reference(key, actual) -> expected``: the recorded value of the reference solution."""
    return Reference(_reference_store, _test_id(request.node))


class GraderPlugin:
    """Registered once per session; ``results`` holds the graded outcomes."""

    def __init__(self, launcher=None):
        self.launcher = launcher
        self.hidden_values_present = HIDDEN_FIXTURES.exists()
        self.results = []
        self.worker = None
        self.store = None

    # -- outcomes -----------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        test_id = _test_id(item)
        if test_id is None or report.when != "call" and not (report.failed and report.when == "setup"):
            return
        func = getattr(item, "function", None)
        points = float(getattr(func, "__weight__", 0.0))
        hidden = test_id.endswith("-hidden")
        expected_absent = call.excinfo is not None and call.excinfo.errisinstance(ExpectedValuesAbsent)
        student_error = call.excinfo is not None and call.excinfo.errisinstance(StudentCodeError)
        if report.passed:
            score, status = getattr(func, "__score__", points), "passed"
        else:
            score, status = getattr(func, "__score__", 0.0), "failed"
        message = _first_lines(call.excinfo) if call.excinfo is not None and not expected_absent else ""
        recording = self.store is not None and self.store.record
        if hidden and not (self.hidden_values_present or recording) and not student_error:
            # A student's copy: the hidden verdict is unknown, and its assertion text is not shown.
            score, status, message = None, "unknown", ""
        if expected_absent:
            # never fail pytest for this: the outcome is simply unknown here
            report.outcome, report.longrepr = "passed", None
        self.results.append(TestResult(
            test_id=test_id, question=test_id.split("-")[0], max_score=points, score=score, status=status,
            hidden=hidden, visibility=getattr(func, "__visibility__", "visible"), message=message,
            seconds=report.duration))


def _test_id(item):
    func = getattr(item, "function", None)
    return getattr(func, "__test_id__", None)


def _first_lines(excinfo, limit=2000):
    error = excinfo.value
    text = str(error) if isinstance(error, AssertionError) and str(error) else excinfo.exconly()
    return text.strip()[:limit]
