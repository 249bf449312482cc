"""The autograder.  ``worker/`` runs beside the student's code, as the sandbox user, and never decides a
grade; ``host/`` is the grader's process (pytest plugin, worker client, judging, report); the modules here
(``protocol``, ``errors``, ``paths``, ``settings``, ``inputs``) are what both sides share.  README's
"Map of the grader" follows one test through them."""
