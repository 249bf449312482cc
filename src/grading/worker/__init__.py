"""The worker side: the sandboxed process that runs the student's code; it never decides a grade."""
