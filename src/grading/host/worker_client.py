"""The worker client (host side): starts the worker, sends it requests, enforces the time limits.

``Worker.run(probe, timeout_s=None, **kwargs)`` runs one probe on the submission in the worker process and
returns its plain-data result; whatever the student's code does wrong comes back as a ``StudentCodeError``
whose first line says what happened.  README's "Time limits" and "Map of the grader" tell the rules.
"""
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .. import printed, protocol, settings
from ..errors import GraderError, ProtocolError, StudentCodeError
from ..paths import GRADING
from ..worker.probes import index as probe_index
from . import launchers
from .messages import describe_call, ending, qualified_name, short, start_failure
from .worker_pipes import Channels, OutputTail, rss_kb

_FRAME = re.compile(r'File "([^"]+)", line (\d+) in (\S+)')
WORKER_SCRIPT = GRADING / "worker" / "start.py"
WAIT_NOTICE_S = 15.0  # a call that runs this long (or half its limit) makes the grader say what it waits for
_FUNCTION_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


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
        self.time_budget_s = time_budget_s
        self.collect_stats = collect_stats
        self.trace_calls = trace_calls  # --trace-calls: record which student functions each test entered
        self.on_wait = on_wait  # on_wait(text): a call runs long (WAIT_NOTICE_S); text says what it waits for
        self.memory_mb = self.launcher.limits.memory_mb
        self.stats = []  # one entry per worker process: pid, seconds, peak resident size, modules
        self.calls = []  # with collect_stats: each probe call, its seconds and the worker's peak size after it
        self.used_s = 0.0
        self.last_seconds = 0.0
        self.hung = {}  # "pixelcnn.PixelCNN.forward" -> message: timed out once, not called again
        self.entered = {}  # with trace_calls: test id -> set of student functions its probes entered
        self.current_test = None  # set by the plugin: the test whose calls run now
        self.printed = {}  # test id -> the captures of what the student's code printed in its calls
        self._process = None
        self._hello = None
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
        self._memory_killed = False
        self._peak_rss_kb = None
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
        threading.Thread(target=self._watch_memory, args=(process, baseline), daemon=True).start()

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

    def _watch_memory(self, process, baseline_kb):
        """Backstop for platforms where RLIMIT_AS is not enforced (macOS): kill a worker whose resident size
        grows by more than the limit.  Also records the peak resident size for the statistics."""
        interval = 0.1 if os.path.exists("/proc") else 0.5
        while process.poll() is None:
            rss, peak = rss_kb(process.pid)
            if rss is None:
                if not os.path.exists("/proc") and sys.platform != "darwin":
                    return  # nothing to watch with on this platform (Windows)
            else:
                baseline_kb = baseline_kb or rss
                self._peak_rss_kb = max(self._peak_rss_kb or 0, peak or rss)
                if rss > baseline_kb + self.memory_mb * 1024:
                    self._memory_killed = True
                    self.launcher.kill_all(process)
                    return
            time.sleep(interval)

    def stop(self):
        """Kill the worker and everything it started (every process of the sandbox user, as root)."""
        process, self._process = self._process, None
        if process is None:
            return
        entry = {"pid": process.pid, "seconds": round(time.monotonic() - self._started_at, 3)}
        if self.collect_stats and process.poll() is None and self._hello is not None:
            entry.update(self._final_stats(process))
        _rss, peak = rss_kb(process.pid)
        peaks = [p for p in (peak, self._peak_rss_kb, entry.pop("peak_rss_kb", None)) if p]
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
                    self.on_wait(self._waiting_for(note, doing, elapsed, timeout_s))
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
            hung = self._hung_function(note)
            where = None if hung else self._where_now()
            self.stop()
            stopped = (f"the process running your code was stopped (an endless loop, or code far too slow?) while "
                       f"running {doing}")
            if hung:
                name, line, arguments = hung
                within = f"did not return within {timeout_s:g} s{timeout_reason}" + (
                    f" on {arguments}" if arguments else "")
                self.hung[name] = f"{name} {within} earlier in this grading" + (
                    f" (test {self.current_test})" if self.current_test else "") + "; not called again"
                raise StudentCodeError(f"{name} (line {line}) {within}; {stopped}", kind="timeout") from None
            raise StudentCodeError(f"{where + ': ' if where else ''}timed out after {timeout_s:g} s{timeout_reason}; "
                                   f"{stopped}", kind="timeout") from None
        except (BrokenPipeError, OSError):
            reply = EOFError()
        if isinstance(reply, EOFError):
            self._died(doing)
        if isinstance(reply, ProtocolError) or not (
                isinstance(reply, dict) and reply.get("seq") == self._seq and isinstance(reply.get("ok"), bool)):
            self.stop()
            raise StudentCodeError(f"{doing}: the process running your code sent an invalid reply "
                                   f"({short(reply, 120)})", kind="crash")
        if "output" in reply:
            self.printed.setdefault(self.current_test, []).append(reply["output"])
        if not reply["ok"]:
            self._raise_error(reply.get("error"), doing)
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

    def _hung_function(self, note):
        """``(name, line, arguments)`` of the call that hung, from the worker's last note, or None.

        The innermost student call that has been running for at least half of the
        time so far: a function that never returns, not a correct one that a slow
        caller calls many times (each of those calls is short).  Functions that
        cannot be replaced by name (nested ones, lambdas) give way to their caller.
        """
        try:
            elapsed = float(note["elapsed"])
            for frame in note["stack"]:
                name, line = str(frame["function"]), int(frame["line"])
                module, _, function = name.partition(".")
                path = self.display_dir / f"{module}.py"
                if float(frame["seconds"]) >= 0.5 * elapsed and _FUNCTION_NAME.fullmatch(name) and path.is_file():
                    if "." not in function:  # Python < 3.11 names no class: find it in the file
                        name = f"{module}.{qualified_name(path, line, function)}"
                    return name, line, str(frame.get("arguments") or "")[:300]
        except (TypeError, KeyError, ValueError, AttributeError):
            pass
        return None

    def _waiting_for(self, note, doing, elapsed, timeout_s):
        """``still running made.MADE.forward (line 12) after 15 s; time limit 60 s``."""
        try:
            frame = note["stack"][0]
            what = f"{frame['function']} (line {int(frame['line'])})"
        except (TypeError, KeyError, IndexError, ValueError):
            what = doing.split("(", 1)[0]
        return f"(still running {self._shown(what)[:120]} after {elapsed:.0f} s; time limit {timeout_s:g} s)"

    def _where_now(self):
        """Where the worker's main thread is now, in the student's files: asks the worker for a stack dump."""
        process = self._process
        if process is None or process.poll() is not None or not hasattr(signal, "SIGUSR1"):
            return None
        before = self._output.total
        try:
            os.kill(process.pid, signal.SIGUSR1)
        except OSError:
            return None
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and self._output.total == before:
            time.sleep(0.02)
        time.sleep(0.05)
        return self._student_frame(self._output.tail.decode("utf-8", "replace"))

    def _student_frame(self, text):
        """``made.MADE.forward (line 12)``: the innermost student frame of a faulthandler dump in ``text``."""
        dump = text.rsplit("most recent call first", 1)
        if len(dump) < 2:
            return None
        for file, line, function in _FRAME.findall(dump[1]):
            try:
                inside = Path(file).resolve().is_relative_to(self.submission_dir)
            except (OSError, ValueError):
                inside = False
            if inside:
                if function == "<module>":
                    return f"line {line} of {Path(file).name}"
                return f"{Path(file).stem}.{qualified_name(file, int(line), function)} (line {line})"
        return None

    def _died(self, doing):
        process = self._process
        try:
            returncode = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            returncode = None
        raw = self._output.text()
        where = self._student_frame(raw)
        output = self._shown(raw)
        memory = self._memory_killed
        self.stop()
        if memory:
            raise StudentCodeError(f"{doing}: memory limit ({self.memory_mb} MB) exceeded; the process running your "
                                   "code was stopped", kind="memory")
        how = ending(returncode) if returncode is not None else "it closed its channel to the grader"
        hint = f" (over the memory limit of {self.memory_mb} MB?)" if returncode in (-9, 137) else ""
        head = f"{where}: the process running your code ended ({how}){hint} while running {doing}" if where else \
            f"{doing}: the process running your code ended ({how}){hint}"
        raise StudentCodeError(head + (f"\nLast output:\n{output[-800:]}" if output else ""), kind="crash")

    def _raise_error(self, error, doing):
        if not isinstance(error, dict):
            raise StudentCodeError(f"{doing}: your code failed", kind="error")
        if error.get("hung"):  # the stand-in of a function that timed out earlier
            where = error.get("where")
            raise StudentCodeError(self._shown(error["hung"]) + (f" (reached through {where})" if where else "")
                                   + f", while running {doing}", kind="timeout")
        unimplemented = error.get("unimplemented")
        if unimplemented:
            raise StudentCodeError(f"{unimplemented}: not implemented yet", kind="not_implemented")
        trace = self._shown(error.get("traceback", ""))
        kind = str(error.get("type", "Exception"))
        where = error.get("where")
        if error.get("memory"):
            raise StudentCodeError(f"{where or doing}: memory limit ({self.memory_mb} MB) exceeded ({kind})"
                                   + (f" while running {doing}" if where else "") + f"\n{trace}", kind="memory")
        message = str(error.get("message") or "").strip()
        head = f"{where} raised {kind}" if where else f"{doing} raised {kind}"
        if message:
            head += f": {message.splitlines()[0][:300]}"
        if where:
            head += f" (running {doing})"
        raise StudentCodeError(self._shown(head) + (f"\n{trace}" if trace else ""), kind="error")

    # -- the backstop ----------------------------------------------------------
    def _allowance(self, wanted_s, doing):
        """The time this call may take, within the session's budget; raises once it is used up."""
        allowed, reason = wanted_s, ""
        if self.time_budget_s is not None:
            left = self.time_budget_s - self.used_s
            if left <= 0:
                raise StudentCodeError(f"{doing}: not run: the {self.time_budget_s:g} s that this grading session "
                                       "allows for running your code were used up by earlier calls", kind="budget")
            if left < allowed:
                allowed, reason = left, f" (what was left of the session's {self.time_budget_s:g} s budget)"
        return allowed, reason

    def _ensure_imported(self, module):
        if module in self._import_failures:
            raise StudentCodeError(self._import_failures[module], kind="import")
        if module in self._imported and self._process is not None:
            return
        path = self.submission_dir / f"{module}.py"
        shown = self.display_dir / f"{module}.py"
        if not path.is_file():
            message = (f"{shown.name} is missing from your submission (looked in {self.display_dir}): "
                       "every test that needs it scores 0")
            self._import_failures[module] = message
            raise StudentCodeError(message, kind="import")
        timeout, reason = self._allowance(self.import_timeout_s, f"importing {shown.name}")
        self.start()  # start-up (importing torch) is not the student's time
        started = time.monotonic()
        try:
            self._request({"op": "import", "module": module}, timeout, f"importing {shown.name}", reason)
        except StudentCodeError as error:
            lines = str(error).splitlines() or [""]
            reason = lines[0]
            for prefix in (f"importing {shown.name}: ", f"importing {shown.name} raised ", f"importing {shown.name}"):
                if reason.startswith(prefix):
                    reason = reason[len(prefix):]
                    break
            reason = reason.replace(f" while running importing {shown.name}", "")
            self._import_failures[module] = (f"{shown.name} could not be imported: {reason}\n(so every test that "
                                             f"needs {shown.name} scores 0)" + "".join(f"\n{line}" for line in lines[1:]))
            raise StudentCodeError(self._import_failures[module], kind="import") from None
        finally:
            self.used_s += time.monotonic() - started
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
        timeout, reason = self._allowance(timeout_s or self.timeout_s, doing)
        started = time.monotonic()
        try:
            return self._request({"op": "probe", "name": probe, "module": info.module, "kwargs": kwargs,
                                  "hung": dict(self.hung), "trace": self.trace_calls}, timeout, doing, reason)
        finally:
            self.last_seconds = time.monotonic() - started
            self.used_s += self.last_seconds
            if self.collect_stats and self._process is not None:
                _rss, peak = rss_kb(self._process.pid)
                self.calls.append({"probe": probe, "seconds": round(self.last_seconds, 3), "peak_rss_kb": peak})
