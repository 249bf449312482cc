"""What the student's code printed (shared by both sides): the caps, and one capture made of several.

A capture is ``{"text": str, "more_lines": int}``: the first ``MAX_LINES`` lines (at most ``MAX_CHARS``
characters) of what the code wrote to stdout and stderr, and how many lines were left out.  The worker makes one
per request (``worker/student_output.py``); the grader merges those of one test (``merge``) and shows them
under it (``host/report.py``).
"""
MAX_LINES = 40
MAX_CHARS = 4096


def capped(text, more_lines=0):
    """``{"text", "more_lines"}`` of ``text``: its first ``MAX_LINES`` lines, at most ``MAX_CHARS`` characters
    in all; ``more_lines`` lines left out before are added to those left out here."""
    lines = text.splitlines()
    kept, size = [], 0
    for line in lines:
        if len(kept) == MAX_LINES or size >= MAX_CHARS:
            break
        line = line[:MAX_CHARS - size]
        kept.append(line)
        size += len(line) + 1
    return {"text": "\n".join(kept), "more_lines": more_lines + len(lines) - len(kept)}


def merge(captures):
    """One capture of several (in order), capped again; None when there is none.  Anything that is not a
    capture (the worker is untrusted) is left out."""
    texts, more = [], 0
    for capture in captures:
        if not (isinstance(capture, dict) and isinstance(capture.get("text"), str)
                and type(capture.get("more_lines")) is int):
            continue
        if len("\n".join(texts)) < MAX_CHARS and len(texts) < MAX_LINES:
            texts.append(capture["text"][:MAX_CHARS])
            more += max(capture["more_lines"], 0)
        else:
            more += len(capture["text"].splitlines()) + max(capture["more_lines"], 0)
    if not texts:
        return None
    return capped("\n".join(texts), more)
