"""The worker client (host side): starts the worker, sends it requests, enforces the time limits.

``Worker.run(probe, timeout_s=None, **kwargs)`` runs one probe on the submission in the worker process and
returns its plain-data result; whatever the student's code does wrong comes back as a ``StudentCodeError``
whose ``failure`` (``failures.py``) says what happened.  README's "Time limits" and "Map of the grader" tell the rules.
"""
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from .. import printed, protocol, settings
from ..errors import GraderError, ProtocolError, StudentCodeError
from ..paths import GRADING
from ..worker.probes import index as probe_index
from . import failures, hang_diagnosis, launchers
from .memory_watch import MemoryWatch
from .messages import describe_call, start_failure
from .time_budget import TimeBudget
from .worker_pipes import Channels, OutputTail, rss_kb

WORKER_SCRIPT = GRADING / "worker" / "start.py"
WAIT_NOTICE_S = 15.0  # a call that runs this long (or half its limit) makes the grader say what it waits for


class Worker:
    """One worker process for one submission folder, restarted after a failure."""

    def __init__(self, submission_dir, timeout_s=settings.CALL_TIMEOUT_S, launcher=None, *,
                 import_timeout_s=settings.IMPORT_TIMEOUT_S, start_timeout_s=settings.START_TIMEOUT_S, time_budget_s=None,
                 collect_stats=False, trace_calls=False, on_wait=None):
        self.launcher = launcher if launcher is not None else launchers.Launcher()
        self.display_dir = Path(submission_dir).resolve()  # what messages show
        self.submission_dir = self.launcher.prepare_submission(self.display_dir)  # what the worker imports
        self.timeout_s = timeout_s
        self.import_timeout_s = import_timeout_s
        self.start_timeout_s = start_timeout_s
        self.budget = TimeBudget(time_budget_s)
        self.collect_stats = collect_stats
        self.trace_calls = trace_calls  # --trace-calls: record which student functions each test entered
        self.on_wait = on_wait  # on_wait(text): a call runs long (WAIT_NOTICE_S); text says what it waits for
        self.memory_mb = self.launcher.limits.memory_mb
        self.stats = []  # one entry per worker process: pid, seconds, peak resident size, modules
        self.calls = []  # with collect_stats: each probe call, its seconds and the worker's peak size after it
        self.last_seconds = 0.0
        self.hung = {}  # "pixelcnn.PixelCNN.forward" -> message: timed out once, not called again
        self.entered = {}  # with trace_calls: test id -> set of student functions its probes entered
        self.current_test = None  # set by the plugin: the test whose calls run now
        self.printed = {}  # test id -> the captures of what the student's code printed in its calls
        self._process = None
        self._hello = None
        self._memory = MemoryWatch(self.memory_mb, self.launcher.kill_all)
        self._import_failures = {}
        self._imported = set()
        self._seq = 0

    # -- process management -------------------------------------------------
    def start(self, wait=True):
        """Start the worker process (importing torch takes a while: ``wait=False`` lets it happen meanwhile)."""
        if self._process is None:
            self._launch()
        if wait and self._hello is None:
            self._await_hello()

    def _launch(self):
        channels = Channels()
        command = [sys.executable, "-u", str(WORKER_SCRIPT), str(self.submission_dir), *channels.specs,
                   self.launcher.limits.as_argument()]
        kwargs = dict(stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        kwargs.update(self.launcher.popen_kwargs())
        kwargs.update(channels.popen_kwargs)
        try:
            process = subprocess.Popen(command, **kwargs)
        except OSError as error:
            channels.close_all()
            raise GraderError(f"could not start the worker process: {error}") from None
        channels.close_child_ends()
        self._process = process
        self._hello = None
        self._requests, self._responses = channels.parent_ends()
        self._output = OutputTail(process.stdout)
        self._replies = queue.Queue()
        self._started_at = time.monotonic()
        self._memory = MemoryWatch(self.memory_mb, self.launcher.kill_all)
        self._imported = set()
        threading.Thread(target=self._read_replies, args=(self._responses, self._replies), daemon=True).start()

    def _await_hello(self):
        process = self._process
        try:
            hello = self._replies.get(timeout=max(self.start_timeout_s - (time.monotonic() - self._started_at), 1.0))
        except queue.Empty:
            hello = None
        if not (isinstance(hello, dict) and isinstance(hello.get("hello"), dict)):
            seconds = time.monotonic() - self._started_at
            try:
                returncode = process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                returncode = None
            output = self._output.text()
            self.stop()
            raise GraderError(start_failure(hello, returncode, seconds, self.start_timeout_s, output))
        self._hello = hello["hello"]
        baseline = self._hello.get("memory", {}).get("rss_kb")
        self._memory.start(process, baseline)

    @staticmethod
    def _read_replies(stream, replies):
        """Reads the worker's replies until the pipe ends; this thread owns the pipe and closes it."""
        try:
            while True:
                try:
                    replies.put(protocol.read_message(stream))
                except EOFError:
                    replies.put(EOFError())
                    return
                except (ProtocolError, OSError, ValueError) as error:
                    replies.put(ProtocolError(str(error)))
                    return
        finally:
            try:
                stream.close()
            except (OSError, ValueError):
                pass

    def stop(self):
        """Kill the worker and everything it started (every process of the sandbox user, as root)."""
        process, self._process = self._process, None
        if process is None:
            return
        entry = {"pid": process.pid, "seconds": round(time.monotonic() - self._started_at, 3)}
        if self.collect_stats and process.poll() is None and self._hello is not None:
            entry.update(self._final_stats(process))
        _rss, peak = rss_kb(process.pid)
        peaks = [p for p in (peak, self._memory.peak_kb, entry.pop("peak_rss_kb", None)) if p]
        entry["peak_rss_kb"] = max(peaks) if peaks else None
        self.launcher.kill_all(process)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            self._requests.close()  # the reading threads close the other two pipes when they end
        except OSError:
            pass
        self.stats.append(entry)

    def _final_stats(self, process):
        """Ask a healthy worker which modules it loaded and its peak memory (for grader.py's statistics)."""
        self._seq += 1
        try:
            if not self._send({"op": "stats", "seq": self._seq}, 10):
                return {}
            reply = self._replies.get(timeout=10)
        except (OSError, queue.Empty):
            return {}
        if isinstance(reply, dict) and reply.get("ok") and isinstance(reply.get("value"), dict):
            value = reply["value"]
            return {"modules": [str(m) for m in value.get("modules", [])][:2000],
                    "peak_rss_kb": value.get("peak_rss_kb")}
        return {}

    # -- requests -----------------------------------------------------------
    def _shown(self, text):
        """Student-facing text: the sandbox copy's path replaced by the submission's own."""
        text = str(text)
        if self.submission_dir != self.display_dir:
            text = text.replace(str(self.submission_dir), str(self.display_dir))
        return text

    def _request(self, message, timeout_s, doing, timeout_reason=""):
        self.start()
        self._seq += 1
        message = {**message, "seq": self._seq}
        started = time.monotonic()
        note = None
        try:
            if not self._send(message, timeout_s):
                raise queue.Empty
            noticed, notice_at = self.on_wait is None, min(WAIT_NOTICE_S, timeout_s / 2)
            while True:  # the reply, or notes from the worker's StackWatch meanwhile
                elapsed = time.monotonic() - started
                if elapsed >= timeout_s:
                    raise queue.Empty
                if not noticed and elapsed >= notice_at:
                    noticed = True
                    self.on_wait(hang_diagnosis.waiting_for(note, doing, elapsed, timeout_s, self._shown))
                until = timeout_s if noticed else notice_at
                try:
                    reply = self._replies.get(timeout=max(until - elapsed, 0.01))
                except queue.Empty:
                    continue
                if isinstance(reply, dict) and "note" in reply:
                    note = reply["note"] if reply.get("seq") == self._seq else note
                    continue
                break
        except queue.Empty:
            hung = hang_diagnosis.hung_function(note, self.display_dir)
            where = None if hung else hang_diagnosis.where_now(self._process, self._output, self.submission_dir)
            self.stop()
            if hung:
                name, _line, arguments = hung
                self.hung[name] = failures.not_called_again(name, timeout_s, timeout_reason, arguments,
                                                            self.current_test)
            raise failures.error(failures.timed_out(doing, timeout_s, timeout_reason, hung, where)) from None
        except (BrokenPipeError, OSError):
            reply = EOFError()
        if isinstance(reply, EOFError):
            self._died(doing)
        if isinstance(reply, ProtocolError) or not (
                isinstance(reply, dict) and reply.get("seq") == self._seq and isinstance(reply.get("ok"), bool)):
            self.stop()
            raise failures.error(failures.invalid_reply(doing, reply))
        if "output" in reply:
            self.printed.setdefault(self.current_test, []).append(reply["output"])
        if not reply["ok"]:
            raise failures.error(failures.raised(reply.get("error"), doing, self.memory_mb, self.hung, self._shown))
        if self.trace_calls and isinstance(reply.get("entered"), list):
            self.entered.setdefault(self.current_test, set()).update(str(name) for name in reply["entered"])
        return reply.get("value")

    def take_printed(self, test_id):
        """What the student's code printed during ``test_id``'s calls, ``{"text", "more_lines"}`` capped
        (``printed.merge``), or None; forgotten once taken."""
        return printed.merge(self.printed.pop(test_id, []))

    def _send(self, message, timeout_s):
        """Write a request within ``timeout_s`` (a worker that stops reading cannot block the grader);
        False if it did not go through in time.  A broken pipe raises OSError."""
        data = protocol.encode(message)
        failure = []

        def write():
            try:
                view = memoryview(data)
                while view:
                    view = view[self._requests.write(view) or 0:]
            except (OSError, ValueError) as error:
                failure.append(error)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(timeout_s)
        if failure:
            raise failure[0] if isinstance(failure[0], OSError) else OSError(str(failure[0]))
        return not writer.is_alive()

    def _died(self, doing):
        process = self._process
        try:
            returncode = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            returncode = None
        raw = self._output.text()
        where = hang_diagnosis.student_frame(raw, self.submission_dir)
        memory = self._memory.killed
        self.stop()
        raise failures.error(failures.died(doing, returncode, where, self._shown(raw), memory, self.memory_mb))

    def _ensure_imported(self, module):
        if module in self._import_failures:
            raise failures.error(self._import_failures[module])
        if module in self._imported and self._process is not None:
            return
        file = f"{module}.py"
        if not (self.submission_dir / file).is_file():
            self._import_failures[module] = failures.missing(file, self.display_dir)
            raise failures.error(self._import_failures[module])
        doing = f"importing {file}"
        timeout, reason = self.budget.allowance(self.import_timeout_s, doing)
        self.start()  # start-up (importing torch) is not the student's time
        started = time.monotonic()
        try:
            self._request({"op": "import", "module": module}, timeout, doing, reason)
        except StudentCodeError as error:
            self._import_failures[module] = failures.not_imported(file, doing, error.failure)
            raise failures.error(self._import_failures[module]) from None
        finally:
            self.budget.used_s += time.monotonic() - started
        self._imported.add(module)

    def run(self, probe, timeout_s=None, **kwargs):
        """Run ``probe`` (a name such as ``"q2.made_log_prob"``) on the submission; return its result."""
        info = probe_index.get(probe)
        modules = list(info.student_modules)
        doing = describe_call(probe, kwargs)
        if info.fresh_process:
            self.stop()
        for module in modules:
            self._ensure_imported(module)
        timeout, reason = self.budget.allowance(timeout_s or self.timeout_s, doing)
        started = time.monotonic()
        try:
            return self._request({"op": "probe", "name": probe, "module": info.module, "kwargs": kwargs,
                                  "hung": dict(self.hung), "trace": self.trace_calls}, timeout, doing, reason)
        finally:
            self.last_seconds = time.monotonic() - started
            self.budget.used_s += self.last_seconds
            if self.collect_stats and self._process is not None:
                _rss, peak = rss_kb(self._process.pid)
                self.calls.append({"probe": probe, "seconds": round(self.last_seconds, 3), "peak_rss_kb": peak})
