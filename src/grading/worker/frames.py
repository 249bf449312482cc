"""Which frames are the student's, and their names (worker side): ``made.MADE.forward``."""
import traceback
from pathlib import Path

MAX_TEXT = 4000  # the longest message or traceback text the worker sends


def _in_submission(filename, submission_dir):
    try:
        return Path(filename).resolve().is_relative_to(submission_dir)
    except (OSError, ValueError):
        return False


def student_traceback(error, submission_dir):
    """The traceback of ``error`` cut to the frames in the student's files (or the last frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if _in_submission(f.filename, submission_dir)]
    shown = own or frames[-1:]
    lines = traceback.format_list(shown) + traceback.format_exception_only(type(error), error)
    text = "".join(lines).rstrip()
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT // 2] + "\n[...]\n" + text[-MAX_TEXT // 2:]


def function_name(code):
    """``"made.MADE.forward"``: the student file's name and the function's qualified name."""
    return f"{Path(code.co_filename).stem}.{getattr(code, 'co_qualname', code.co_name)}"


def unimplemented_function(error, submission_dir):
    """``"made.MADE.forward"`` when ``error`` is a bare ``NotImplementedError`` raised in a student file."""
    if not isinstance(error, NotImplementedError) or str(error) not in ("", "TODO"):
        return None
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or not _in_submission(tb.tb_frame.f_code.co_filename, submission_dir):
        return None
    return function_name(tb.tb_frame.f_code)


def innermost_student_function(error, submission_dir):
    """``"made.MADE.log_prob"``: the innermost frame of the traceback that is in a student file."""
    found, tb = None, error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if _in_submission(code.co_filename, submission_dir):
            found = function_name(code)
        tb = tb.tb_next
    return found if found and not found.endswith(".<module>") else None


def student_qualname(code, submission_dir, cache):
    """``"made.MADE.forward"`` for a code object of a student file, else None (``cache``: code -> name)."""
    try:
        return cache[code]
    except KeyError:
        pass
    name = cache[code] = function_name(code) if _in_submission(code.co_filename, submission_dir) else None
    return name
