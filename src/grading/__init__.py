"""The autograder: a pytest plugin that runs student code in a sandboxed worker process."""
from .manifest import graded  # noqa: F401
