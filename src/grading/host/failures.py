"""How the student's code failed, as ``Failure`` data (host side, in the worker client): made here, from what the
worker reports or what the grader saw, once for each way a call fails; ``messages.render`` writes them out."""
import dataclasses

from ..errors import Failure, StudentCodeError
from .messages import ending, located, render, short

STOPPED = "the process running your code was stopped (an endless loop, or code far too slow?) while running "


def error(failure):
    """The ``StudentCodeError`` to raise for ``failure``: its message is ``render(failure)``."""
    return StudentCodeError(render(failure), failure=failure)


def raised(error_info, call, memory_mb, hung, shown):
    """From the ``error`` dict of the worker's reply (``worker/main.error_reply``): an exception, a stub's
    ``NotImplementedError``, a ``MemoryError`` or a stand-in of a function that timed out earlier (``hung``:
    the messages the grader gave those, by function).  ``shown`` maps sandbox paths to the student's."""
    if not isinstance(error_info, dict):
        return Failure("error", detail="your code failed", call=call)
    where = error_info.get("where")
    if error_info.get("hung"):
        text = error_info["hung"]
        function = next((name for name, message in hung.items() if message == text and text.startswith(name + " ")),
                        None)
        rest = text[len(function) + 1:] if function else text
        through = f" (reached through {where})" if where else ""
        return Failure("timeout", function=function, detail=f"{shown(rest)}{through}, while running {call}")
    if error_info.get("unimplemented"):
        return Failure("not_implemented", function=str(error_info["unimplemented"]), detail="not implemented yet")
    trace = shown(error_info.get("traceback", ""))
    kind = str(error_info.get("type", "Exception"))
    if error_info.get("memory"):
        detail = f"memory limit ({memory_mb} MB) exceeded ({kind})" + (f" while running {call}" if where else "")
        return Failure("memory", function=where or None, call=call, detail=detail, trace=trace)
    message = str(error_info.get("message") or "").strip()
    detail = f"raised {kind}" + (f": {message.splitlines()[0][:300]}" if message else "") + (
        f" (running {call})" if where else "")
    return Failure("error", function=shown(where) if where else None, call=shown(call), detail=shown(detail),
                   trace=trace or None)


def _did_not_return(timeout_s, reason, arguments):
    """``did not return within 60 s on x: tensor(4, 3)``: what a function that timed out did."""
    return f"did not return within {timeout_s:g} s{reason}" + (f" on {arguments}" if arguments else "")


def not_called_again(function, timeout_s, reason, arguments, test):
    """What the stand-in of ``function``, which timed out in ``test``, says when the student's code calls it
    later (``worker/stand_ins.py`` raises it; ``raised`` reads it back)."""
    return f"{function} {_did_not_return(timeout_s, reason, arguments)} earlier in this grading" + (
        f" (test {test})" if test else "") + "; not called again"


def timed_out(call, timeout_s, reason, hung, where):
    """A call that ran past its limit; ``hung``: ``(function, line, arguments)`` of the student call that hung
    (``hang_diagnosis.hung_function``), else ``where``: ``(function, line, file)`` it was running, or None."""
    if hung:
        function, line, arguments = hung
        return Failure("timeout", function=function, line=line,
                       detail=f"{_did_not_return(timeout_s, reason, arguments)}; {STOPPED}{call}")
    function, line, file = where or (None, None, "")
    return Failure("timeout", function=function, line=line, file=file,
                   detail=f"timed out after {timeout_s:g} s{reason}; {STOPPED}{call}")


def died(call, returncode, where, output, memory_killed, memory_mb):
    """The worker ended during a call: the grader's memory watch killed it, or it crashed (``returncode``
    None: it closed its channel); ``where``: ``(function, line, file)`` from its last output, or None."""
    if memory_killed:
        return Failure("memory", call=call,
                       detail=f"memory limit ({memory_mb} MB) exceeded; the process running your code was stopped")
    how = ending(returncode) if returncode is not None else "it closed its channel to the grader"
    hint = f" (over the memory limit of {memory_mb} MB?)" if returncode in (-9, 137) else ""
    function, line, file = where or (None, None, "")
    detail = f"the process running your code ended ({how}){hint}" + (f" while running {call}" if where else "")
    return Failure("crash", function=function, line=line, file=file, call=call, detail=detail,
                   trace=f"Last output:\n{output[-800:]}" if output else None)


def invalid_reply(call, reply):
    return Failure("crash", call=call,
                   detail=f"the process running your code sent an invalid reply ({short(reply, 120)})")


def not_run(call, budget_s):
    return Failure("budget", call=call, detail=f"not run: the {budget_s:g} s that this grading session allows for "
                                              "running your code were used up by earlier calls")


def missing(file, folder):
    return Failure("import", file=file, detail=f"is missing from your submission (looked in {folder}): every test "
                                               "that needs it scores 0")


def not_imported(file, call, failure):
    """``failure`` of ``call``, which imported ``file``, said of the file: ``made.py could not be imported: ...``
    (without the call, which the message's first words then name)."""
    text = render(dataclasses.replace(failure, call=""))
    if not located(failure) and failure.call and text.startswith("raised "):  # "made.py could not be imported:
        text = text[len("raised "):]  # SyntaxError: ..."
    lines = text.splitlines() or [""]
    reason = lines[0].replace(f" while running {call}", "")
    return Failure("import", function=failure.function, line=failure.line if failure.function else None, file=file,
                   detail=f"could not be imported: {reason}",
                   trace=f"(so every test that needs {file} scores 0)" + "".join(f"\n{line}" for line in lines[1:]))
