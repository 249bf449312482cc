"""Judging (host side): checks, partial credit and each question's verdicts on the probes' results."""
