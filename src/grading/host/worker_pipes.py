"""The worker process's plumbing (host side): its two private pipes, its output's tail, its memory."""
import os
import subprocess
import sys
import threading

from ..proc import memory_kb
from . import launchers

OUTPUT_TAIL_BYTES = 4096  # what is kept of the worker's output (the student's prints): its end


class OutputTail:
    """Drains a pipe in a thread and keeps only its last bytes (output spam costs nothing)."""

    def __init__(self, stream):
        self.tail = b""
        self.total = 0
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream):
        try:
            for chunk in iter(lambda: stream.read1(65536), b""):
                self.total += len(chunk)
                self.tail = (self.tail + chunk)[-OUTPUT_TAIL_BYTES:]
        except (OSError, ValueError):
            pass
        finally:  # this thread owns the pipe: closing it from another thread could block on its lock
            try:
                stream.close()
            except (OSError, ValueError):
                pass

    def text(self):
        self._thread.join(timeout=1.0)
        return self.tail.decode("utf-8", "replace").strip()


class Channels:
    """Two private pipes between grader and worker: requests in, replies out (stdin stays empty)."""

    def __init__(self):
        self.request_read, self.request_write = os.pipe()
        self.response_read, self.response_write = os.pipe()
        if launchers.IS_WINDOWS:  # no pass_fds on Windows: inherit exactly these two handles
            import msvcrt

            handles = [msvcrt.get_osfhandle(self.request_read), msvcrt.get_osfhandle(self.response_write)]
            for handle in handles:
                os.set_handle_inheritable(handle, True)
            info = subprocess.STARTUPINFO()
            info.lpAttributeList = {"handle_list": handles}
            self.specs = [f"handle:{handle}" for handle in handles]
            self.popen_kwargs = {"startupinfo": info, "close_fds": True}
        else:
            self.specs = [f"fd:{self.request_read}", f"fd:{self.response_write}"]
            self.popen_kwargs = {"pass_fds": (self.request_read, self.response_write)}

    def close_child_ends(self):
        _close_quietly(self.request_read, self.response_write)

    def close_all(self):
        self.close_child_ends()
        _close_quietly(self.request_write, self.response_read)

    def parent_ends(self):
        return os.fdopen(self.request_write, "wb", buffering=0), os.fdopen(self.response_read, "rb")


def rss_kb(pid):
    """(resident, peak resident) size of ``pid`` in kB, or (None, None) where it cannot be read."""
    sizes = memory_kb(pid)
    if "rss_kb" in sizes and "peak_rss_kb" in sizes:
        return sizes["rss_kb"], sizes["peak_rss_kb"]
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
            rss = int(out.stdout.strip())
            return rss, None
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    return None, None


def _close_quietly(*fds):
    """Close each file descriptor; one already closed (the worker's end after start-up) is no error."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
