"""The grader's side: its process, which decides every grade from plain data."""
