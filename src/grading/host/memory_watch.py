"""The grader's watch on the worker's memory (host side): the resident size's peak for the statistics, and the
limit where the worker's own (RLIMIT_AS) is not enforced (macOS) or not set (CUDA)."""
import os
import sys
import threading
import time

from .worker_pipes import rss_kb


class MemoryWatch:
    """Watches one worker process from a thread: ``peak_kb`` so far; ``killed`` once it was killed for
    growing by more than ``limit_mb`` over its size at hello (``kill(process)`` kills it)."""

    def __init__(self, limit_mb, kill):
        self.limit_mb = limit_mb
        self.kill = kill
        self.killed = False
        self.peak_kb = None

    def start(self, process, baseline_kb):
        threading.Thread(target=self._watch, args=(process, baseline_kb), daemon=True).start()

    def _watch(self, process, baseline_kb):
        interval = 0.1 if os.path.exists("/proc") else 0.5
        while process.poll() is None:
            rss, peak = rss_kb(process.pid)
            if rss is None:
                if not os.path.exists("/proc") and sys.platform != "darwin":
                    return  # nothing to watch with on this platform (Windows)
            else:
                baseline_kb = baseline_kb or rss
                self.peak_kb = max(self.peak_kb or 0, peak or rss)
                if rss > baseline_kb + self.limit_mb * 1024:
                    self.killed = True
                    self.kill(process)
                    return
            time.sleep(interval)
