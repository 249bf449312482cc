"""The grader's side of the worker: start it, send requests, enforce limits.

``Worker.run(probe, **kwargs)`` runs one probe of ``src/grading/probes`` on the
submission in a separate process and returns its plain-data result.  Anything
the student's code does wrong comes back as a ``StudentCodeError`` (an
``AssertionError``, so the test fails) whose message says what happened:

* the code raised: the exception with the student's own traceback frames;
* it ran past the time limit: the worker is killed and restarted;
* the worker died (``sys.exit``, ``os._exit``, a segfault, the memory limit);
* a module could not be imported: every later probe that needs it fails at
  once with the same message, and the other modules are still graded.
"""
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import protocol
from .probes import modules_of

WORKER_SCRIPT = Path(__file__).resolve().with_name("worker.py")
OUTPUT_TAIL_BYTES = 4096
IMPORT_TIMEOUT_S = 30.0


class StudentCodeError(AssertionError):
    """The student's code failed: raised, timed out, crashed or could not be imported."""

    def __init__(self, message, not_implemented=False):
        super().__init__(message)
        self.not_implemented = not_implemented


class _OutputTail:
    """Drains a pipe in a thread and keeps only its last bytes (output spam costs nothing)."""

    def __init__(self, stream):
        self.tail = b""
        self.total = 0
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream):
        for chunk in iter(lambda: stream.read(65536), b""):
            self.total += len(chunk)
            self.tail = (self.tail + chunk)[-OUTPUT_TAIL_BYTES:]

    def text(self):
        return self.tail.decode("utf-8", "replace").strip()


class Worker:
    """One worker process for one submission folder, restarted after a failure."""

    def __init__(self, submission_dir, timeout_s=60.0, launcher=None):
        self.submission_dir = Path(submission_dir).resolve()
        self.timeout_s = timeout_s
        self.launcher = launcher  # sandbox policy (user, limits); see privileges.py
        self._process = None
        self._import_failures = {}
        self._imported = set()

    # -- process management -------------------------------------------------
    def _start(self):
        read_fd, write_fd = os.pipe()
        command = [sys.executable, "-u", str(WORKER_SCRIPT), str(self.submission_dir), str(write_fd)]
        popen_kwargs = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            pass_fds=(write_fd,), start_new_session=True)
        if self.launcher is not None:
            popen_kwargs.update(self.launcher.popen_kwargs())
        self._process = subprocess.Popen(command, **popen_kwargs)
        os.close(write_fd)
        self._responses = os.fdopen(read_fd, "rb")
        self._output = _OutputTail(self._process.stdout)
        self._replies = queue.Queue()
        threading.Thread(target=self._read_replies, args=(self._responses, self._replies), daemon=True).start()
        self._imported = set()

    @staticmethod
    def _read_replies(stream, replies):
        while True:
            try:
                replies.put(protocol.read_message(stream))
            except EOFError:
                replies.put(EOFError())
                return
            except protocol.ProtocolError as error:
                replies.put(error)
                return

    def stop(self):
        """Kill the worker and everything it started."""
        process, self._process = self._process, None
        if process is None:
            return
        if self.launcher is not None:
            self.launcher.kill_all(process)
        else:
            try:
                os.killpg(process.pid, 9)
            except (ProcessLookupError, PermissionError, AttributeError):
                process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, self._responses):
            try:
                stream.close()
            except OSError:
                pass

    # -- requests -----------------------------------------------------------
    def _request(self, message, timeout_s, doing):
        if self._process is None:
            self._start()
        try:
            self._process.stdin.write(protocol.encode(message))
            self._process.stdin.flush()
            reply = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            self.stop()
            raise StudentCodeError(f"{doing}: timed out after {timeout_s:g} s") from None
        except (BrokenPipeError, OSError):
            reply = EOFError()
        if isinstance(reply, EOFError):
            returncode = self._process.wait(timeout=10)
            output = self._output.text()
            self.stop()
            how = f"exit status {returncode}" if returncode >= 0 else f"signal {-returncode}"
            hint = " (memory limit?)" if returncode in (-9, 137) else ""
            raise StudentCodeError(f"{doing}: the worker process running your code ended ({how}{hint})."
                                   + (f"\nLast output:\n{output[-800:]}" if output else ""))
        if isinstance(reply, protocol.ProtocolError):
            self.stop()
            raise StudentCodeError(f"{doing}: the worker sent an invalid reply ({reply})")
        if not reply["ok"]:
            error = reply["error"]
            raise StudentCodeError(f"{doing}: {error['traceback']}", not_implemented=error["not_implemented"])
        return reply["value"]

    def _ensure_imported(self, module):
        if module in self._import_failures:
            raise StudentCodeError(self._import_failures[module])
        if module in self._imported:
            return
        path = self.submission_dir / f"{module}.py"
        if not path.exists():
            message = f"{path.name} is missing from {self.submission_dir}: every question of that file scores 0"
            self._import_failures[module] = message
            raise StudentCodeError(message)
        try:
            self._request({"op": "import", "module": module}, IMPORT_TIMEOUT_S, f"importing {path.name}")
        except StudentCodeError as error:
            self._import_failures[module] = f"{path.name} could not be imported, so its tests score 0: {error}"
            raise StudentCodeError(self._import_failures[module]) from None
        self._imported.add(module)

    def run(self, probe, timeout_s=None, **kwargs):
        """Run ``probe`` (a name such as ``"q2.made_log_prob"``) on the submission; return its result."""
        for module in modules_of(probe):
            self._ensure_imported(module)
        started = time.monotonic()
        value = self._request({"op": "probe", "name": probe, "kwargs": kwargs},
                              timeout_s or self.timeout_s, f"running {probe}")
        self.last_seconds = time.monotonic() - started
        return value
