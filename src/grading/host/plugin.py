"""The grader's pytest plugin (host side): fixtures for tests, and scores from outcomes.

Tests are plain pytest tests decorated with ``graded("2b-0-basic")`` (points,
number and visibility from the manifest, through gradescope-utils'
decorators).  They get two fixtures:

* ``student``: the ``worker_client.Worker`` for the submission being graded;
* ``reference``: ``reference(key, actual) -> expected`` (see reference.py).

The plugin records one ``TestResult`` per graded test; ``grader.py`` prints them
and writes Gradescope's results.json.  With a ``selection`` (test ids or
question ids) it deselects every other test, and tests that are not graded at
all; when a hidden test is present twice, the copy in ``HIDDEN_TEST_DIR`` (beside
its expected values) runs.  Public tests run first, then hidden ones, each in the
manifest's order: what a student sees locally never waits behind a hidden test.
"""
import dataclasses
import time
from pathlib import Path

import pytest

from .. import settings
from ..errors import ExpectedValuesAbsent, GraderError, ProtocolError, StudentCodeError
from ..paths import ROOT
from .judging.subcases import take_parts
from .manifest import is_hidden, is_selected, load_manifest, question_of
from .reference import HIDDEN_FIXTURES, HIDDEN_TEST_DIR, Reference, ReferenceStore
from .worker_client import Worker


@dataclasses.dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    test_id: str
    question: str
    max_score: float
    score: float | None  # None: unknown here (a hidden test without its expected values)
    status: str  # "passed", "failed" or "unknown"
    hidden: bool
    visibility: str
    message: str = ""
    seconds: float = 0.0
    internal: bool = False  # the grader, not the student's code, failed (worker start, test crash, ...)
    kind: str = ""  # StudentCodeError.kind when the student's code failed ("not_implemented", "timeout", ...)
    parts: list = dataclasses.field(default_factory=list)  # SubCases parts: [{"name", "points", "earned"}]
    printed: dict | None = None  # what the student's code printed in this test's calls: {"text", "more_lines"}


def pytest_configure(config):
    if _plugin(config) is None:  # plain `pytest`; grader.py passes its own instance
        config.pluginmanager.register(GraderPlugin(), "ps1-grader")


def pytest_addoption(parser):
    group = parser.getgroup("ps1 grader")
    group.addoption("--submission", default=str(ROOT / "submission"), help="folder with the student's files")
    group.addoption("--record-fixtures", action="store_true", help="record the reference values (run on the reference)")
    group.addoption("--fixtures-out", default=None, help="with --record-fixtures: write the files here, not in place")
    group.addoption("--worker-timeout", type=float, default=settings.CALL_TIMEOUT_S,
                    help="default seconds per call into student code")


def _plugin(config):
    return next((p for p in config.pluginmanager.get_plugins() if isinstance(p, GraderPlugin)), None)


@pytest.fixture(scope="session")
def student(request):
    """The sandboxed worker that runs the submission's code."""
    config = request.config
    plugin = _plugin(config)
    if plugin.worker is None or plugin.worker.display_dir != Path(config.getoption("--submission")).resolve():
        plugin.worker = Worker(config.getoption("--submission"), config.getoption("--worker-timeout"),
                               plugin.launcher, **plugin.worker_options)
    yield plugin.worker
    plugin.worker.stop()
    plugin.worker_stats = list(plugin.worker.stats)


@pytest.fixture(scope="session")
def _reference_store(request):
    plugin = _plugin(request.config)
    plugin.store = ReferenceStore(record=request.config.getoption("--record-fixtures"))
    yield plugin.store
    if plugin.store.record:
        plugin.store.save(request.config.getoption("--fixtures-out"))


@pytest.fixture
def known_problems(request):
    """``known_problems(*questions)``: one line per failed test of those questions that ran before this test in
    this grade (the test id and the first line of its message).  A public test hears only of public tests:
    on Gradescope a hidden test's message stays hidden until the grades are published."""
    plugin = _plugin(request.config)
    hidden = is_hidden(_test_id(request.node) or "")

    def problems(*questions):
        found = []
        for result in plugin.results:
            if result.question in questions and result.status == "failed" and result.message and (
                    hidden or not result.hidden):
                lines = [line.strip() for line in result.message.splitlines() if line.strip()]
                first = f"{lines[0]} {lines[1].lstrip('-* ')}" if lines[0].endswith(":") and len(lines) > 1 \
                    else lines[0]
                found.append(f"{result.test_id}: {first}")
        return found

    return problems


@pytest.fixture
def reference(request, _reference_store):
    """``reference(key, actual) -> expected``: the recorded value of the reference solution."""
    return Reference(_reference_store, _test_id(request.node))


class GraderPlugin:
    """Registered once per session; ``results`` holds the graded outcomes.

    ``selection``: test ids (``2a-0-basic``) or question ids (``2a``) to run, or
    None for all; ``progress(event, test_id, index, total, result)`` is called
    with ``"start"`` and ``"end"`` around each test, and ``progress.waiting(text)``
    (if it has one) when a call into the student's code runs long; ``worker_options`` are
    keyword arguments of ``worker_client.Worker`` (budgets, time-outs, stats).
    """

    def __init__(self, launcher=None, selection=None, progress=None, worker_options=None):
        self.launcher = launcher
        self.selection = set(selection) if selection else None
        self.progress = progress
        self.worker_options = dict(worker_options or {})
        self.hidden_values_present = _readable(HIDDEN_FIXTURES)
        self.results = []
        self.worker = None
        self.worker_stats = []
        self.store = None
        self.collected = {}  # test id -> node id of the item that runs it
        self.collection_errors = []  # (node id, text)
        self.problems = []  # grader problems that are not tied to one test
        self._order = {}
        self._started = {}
        self._capture = None
        self.interrupted = False

    def pytest_keyboard_interrupt(self, excinfo):
        self.interrupted = True

    # -- collection ---------------------------------------------------------
    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append((report.nodeid, str(report.longrepr)[-3000:]))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        chosen, dropped = {}, []
        for item in items:
            test_id = _test_id(item)
            if test_id is None or not is_selected(test_id, self.selection):
                dropped.append(item)
                continue
            if test_id in chosen:
                keep, other = (item, chosen[test_id]) if _in_hidden_test_dir(item) and not _in_hidden_test_dir(
                    chosen[test_id]) else (chosen[test_id], item)
                if _in_hidden_test_dir(keep) == _in_hidden_test_dir(other):
                    self.problems.append(f"{test_id} is implemented twice: {keep.nodeid} and {other.nodeid}; "
                                         "only the first counts")
                chosen[test_id] = keep
                dropped.append(other)
                continue
            chosen[test_id] = item
        kept = [item for item in items if item not in dropped]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        order = {test_id: index for index, test_id in enumerate(load_manifest()["tests"])}
        items[:] = sorted(kept, key=lambda item: (is_hidden(_test_id(item)), order.get(_test_id(item), len(order))))
        self.collected = {_test_id(item): item.nodeid for item in items}
        self._order = {item.nodeid: index for index, item in enumerate(items, 1)}

    # -- progress -----------------------------------------------------------
    def pytest_runtest_logstart(self, nodeid, location):
        self._started[nodeid] = time.monotonic()
        take_parts()  # forget the parts of an earlier test that stopped before reporting
        if self.progress is not None and nodeid in self._order:
            self.progress("start", self._id_of(nodeid), self._order[nodeid], len(self._order), None)

    def pytest_runtest_logfinish(self, nodeid, location):
        if self.progress is not None and nodeid in self._order:
            test_id = self._id_of(nodeid)
            result = next((r for r in reversed(self.results) if r.test_id == test_id), None)
            self.progress("end", test_id, self._order[nodeid], len(self._order), result)

    def _id_of(self, nodeid):
        return next((test_id for test_id, node in self.collected.items() if node == nodeid), nodeid)

    def pytest_sessionstart(self, session):
        self._capture = session.config.pluginmanager.getplugin("capturemanager")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item):
        if self.worker is not None:
            self.worker.current_test = _test_id(item)  # named in the message of a function that hangs
            self.worker.on_wait = self._waiting

    def _waiting(self, text):
        """A call into the student's code runs long: say for what on the test's progress line (outside pytest's
        output capture)."""
        if self.progress is None or not hasattr(self.progress, "waiting"):
            return
        if self._capture is None:
            self.progress.waiting(text)
            return
        with self._capture.global_and_fixture_disabled():
            self.progress.waiting(text)

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
        hidden = is_hidden(test_id)
        excinfo = call.excinfo
        expected_absent = excinfo is not None and excinfo.errisinstance(ExpectedValuesAbsent)
        student_error = excinfo is not None and excinfo.errisinstance(StudentCodeError)
        internal = excinfo is not None and (report.when == "setup" or excinfo.errisinstance((GraderError,
                                                                                             ProtocolError)))
        if report.passed:
            score, status = getattr(func, "__score__", points), "passed"
        else:
            score, status = getattr(func, "__score__", 0.0), "failed"
        message = _failure_message(excinfo, hidden) if excinfo is not None and not expected_absent else ""
        if internal and not message.startswith("grader problem"):
            message = f"grader problem (not your code): {message}"
        recording = self.store is not None and self.store.record
        parts = take_parts()
        if hidden and not (self.hidden_values_present or recording) and not student_error and not internal:
            # A student's copy: the hidden verdict is unknown, and its assertion text is not shown.
            score, status, message, parts = None, "unknown", "", []
        if expected_absent:
            # never fail pytest for this: the outcome is simply unknown here
            report.outcome, report.longrepr = "passed", None
        started = self._started.get(item.nodeid)
        printed = self.worker.take_printed(test_id) if self.worker is not None else None
        self.results.append(TestResult(
            test_id=test_id, question=question_of(test_id), max_score=points, score=score, status=status,
            hidden=hidden, visibility=getattr(func, "__visibility__", "visible"), message=message,
            seconds=(time.monotonic() - started) if started else report.duration, internal=internal, parts=parts,
            kind=excinfo.value.kind if student_error else "", printed=printed))


def _readable(path):
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def _test_id(item):
    func = getattr(item, "function", None)
    return getattr(func, "__test_id__", None)


def _in_hidden_test_dir(item):
    try:
        return Path(str(item.path)).resolve().is_relative_to(HIDDEN_TEST_DIR)
    except (OSError, ValueError):
        return False


def _strip_rewritten_assert(text):
    """Drop what pytest's assertion rewriting added (``assert a == b`` with values): hidden tests only."""
    kept = []
    for line in text.splitlines():
        if line.startswith("assert ") or line.lstrip().startswith(("+  where", "+    where", "+  and")):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def _failure_message(excinfo, hidden, limit=2000):
    """The text a student sees: the check's message, the student's error, or the test's own crash."""
    error = excinfo.value
    if isinstance(error, StudentCodeError):
        text = str(error)
    elif isinstance(error, (GraderError, ProtocolError)):
        text = f"grader problem (not your code): {error}"
    elif isinstance(error, AssertionError):
        text = _strip_rewritten_assert(str(error)) if hidden else str(error)
        text = text or "a check of this test failed (AssertionError without a message)"
    else:
        text = excinfo.exconly() + "\n(an error in the test itself, not a check of your code: please report it)"
    text = text.strip()
    return text if len(text) <= limit else text[:limit - 20] + "\n[... cut ...]"
