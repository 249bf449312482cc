"""A test file that cannot be loaded: the grader must report a grader problem and still write results.json."""
from src.grading.host.graded import graded

raise RuntimeError("this staff suite file is broken on purpose")


@graded("1a-0-basic")
def test_never_collected(student):
    pass
