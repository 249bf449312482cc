"""The limits' defaults (both sides; the standard library only): what ``grader.py``'s options, the pytest
plugin, the worker client and the launchers start from.  README's "Time limits" says why these values."""

CALL_TIMEOUT_S = 60.0  # one call into the student's code; a test may give one call its own timeout_s
IMPORT_TIMEOUT_S = 30.0  # importing one of the student's files
START_TIMEOUT_S = 180.0  # the worker's start-up (importing torch): about 2 s on Gradescope, more on a loaded laptop
TIME_BUDGET_S = 420.0  # all calls of a grade together: a backstop against code that is slow everywhere
MEMORY_MB = 1024  # what the worker may use on top of Python and torch
GPU_MEMORY_MB = 4096  # what the worker may allocate on a GPU, where it has one (torch's caching allocator)
FILE_SIZE_MB = 512  # the largest file the worker may write
PROCESSES = 64  # RLIMIT_NPROC of a sandbox user of its own (it counts all of that user's processes)
THREADS = 1  # torch's threads in the worker: reproducible sums, one core
