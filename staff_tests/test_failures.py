"""Staff tests of the failures' data (host/failures.py) and their one rendering (messages.render): the fields
that the report and judges read, and the words a student reads (the same as those the grading tests check)."""
from src.grading.errors import StudentCodeError
from src.grading.host import failures
from src.grading.host.messages import render

CALL = "q2.made_log_prob(seed=0)"


def _reply(**fields):
    return {"type": "ValueError", "message": "bad value\nsecond line", "traceback": "  File ...\nValueError: bad value",
            "unimplemented": None, "memory": False, "where": None, **fields}


def test_a_raise_names_the_function_then_the_call():
    failure = failures.raised(_reply(where="made.MADE.forward"), CALL, 256, {}, str)
    assert (failure.kind, failure.function, failure.line) == ("error", "made.MADE.forward", None)
    assert failure.detail == f"raised ValueError: bad value (running {CALL})"
    error = failures.error(failure)
    assert isinstance(error, StudentCodeError) and error.kind == "error" and error.failure is failure
    assert str(error) == render(failure) == (f"made.MADE.forward raised ValueError: bad value (running {CALL})\n"
                                             "  File ...\nValueError: bad value")
    assert render(failures.raised(_reply(), CALL, 256, {}, str)).startswith(f"{CALL} raised ValueError: bad value\n")


def test_stub_and_memory_and_stand_in():
    stub = failures.raised(_reply(unimplemented="made.MaskedLinear.__init__"), CALL, 256, {}, str)
    assert (stub.kind, stub.function) == ("not_implemented", "made.MaskedLinear.__init__")
    assert render(stub) == "made.MaskedLinear.__init__: not implemented yet"
    memory = failures.raised(_reply(memory=True, type="MemoryError", where="made.f"), CALL, 256, {}, str)
    assert memory.kind == "memory" and render(memory).startswith(
        f"made.f: memory limit (256 MB) exceeded (MemoryError) while running {CALL}\n")
    said = failures.not_called_again("made.MADE.forward", 6, "", "x: (3,)", "2a-0-basic")
    stand_in = failures.raised(_reply(hung=said, where="made.MADE.log_prob"), CALL, 256,
                               {"made.MADE.forward": said}, str)
    assert (stand_in.kind, stand_in.function) == ("timeout", "made.MADE.forward")
    assert render(stand_in) == ("made.MADE.forward did not return within 6 s on x: (3,) earlier in this grading (test "
                                "2a-0-basic); not called again (reached through made.MADE.log_prob), while running "
                                f"{CALL}")


def test_time_outs_and_crashes_name_the_function_and_its_line():
    hung = failures.timed_out(CALL, 6, "", ("made.MADE.forward", 12, "x: (3,)"), None)
    assert (hung.kind, hung.function, hung.line) == ("timeout", "made.MADE.forward", 12)
    assert render(hung).startswith("made.MADE.forward (line 12) did not return within 6 s on x: (3,); the process "
                                   "running your code was stopped")
    top_level = failures.timed_out("importing made.py", 3, "", None, (None, 2, "made.py"))
    assert (top_level.function, top_level.line, top_level.file) == (None, 2, "made.py")
    assert render(top_level).startswith("line 2 of made.py: timed out after 3 s; ")
    assert render(failures.timed_out(CALL, 3, "", None, None)).startswith("timed out after 3 s; ")
    crash = failures.died(CALL, -11, ("autoregressive.nll_to_bits_per_dim", 22, ""), "boom", False, 256)
    assert (crash.kind, crash.line) == ("crash", 22)
    assert render(crash) == ("autoregressive.nll_to_bits_per_dim (line 22): the process running your code ended "
                             f"(signal 11: SIGSEGV, segmentation fault) while running {CALL}\nLast output:\nboom")
    assert render(failures.died(CALL, 1, None, "", True, 256)) == (
        f"{CALL}: memory limit (256 MB) exceeded; the process running your code was stopped")


def test_import_failures_are_said_of_the_file():
    call = "importing made.py"
    syntax = failures.raised(_reply(type="SyntaxError", message="invalid syntax"), call, 256, {}, str)
    failure = failures.not_imported("made.py", call, syntax)
    assert (failure.kind, failure.file) == ("import", "made.py")
    assert render(failure) == ("made.py could not be imported: SyntaxError: invalid syntax\n(so every test that "
                               "needs made.py scores 0)\n  File ...\nValueError: bad value")
    top_level = failures.not_imported("made.py", call, failures.timed_out(call, 3, "", None, (None, 2, "made.py")))
    assert render(top_level) == ("made.py could not be imported: line 2 of made.py: timed out after 3 s; the process "
                                 "running your code was stopped (an endless loop, or code far too slow?)\n(so every "
                                 "test that needs made.py scores 0)")
    missing = failures.missing("made.py", "/x/submission")
    assert render(missing) == ("made.py is missing from your submission (looked in /x/submission): every test that "
                               "needs it scores 0")
    assert StudentCodeError("judge's words").failure is None
