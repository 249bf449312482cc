"""Probes (worker side): the functions that the worker runs on a submission for the tests.

A probe lives in ``q1.py`` .. ``q4.py`` and is registered with ``@probe("made")`` (``registry.py``), naming
the student modules it needs.  It takes the lazy ``submission`` (``submission.made`` is the student's made.py)
and plain keyword arguments, builds its inputs from fixed seeds, calls the student's code and returns plain
data for the test to judge in the grader's process.  Probes never decide a grade: student code can tamper
with anything in the worker.  The grader knows the probes only from ``index.py``, which reads these files
without running them.
"""
