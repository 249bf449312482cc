"""The report (host side): what ``grader.py`` prints, and Gradescope's results.json.

``summarize`` makes one entry per selected coding test of the manifest (one that did not run scores 0, with
the reason), ``format_report`` prints a table per question and the totals, ``results_json`` and
``fallback_results`` build the results file (valid against Gradescope's schema,
``../shared/gradescope-results.schema.json`` beside the clone; a partial-credit test's parts go into its
``extra_data``).  Written questions are listed as "graded by hand" and never scored.
"""
import dataclasses
import json
import os
import tempfile
import textwrap
from pathlib import Path

from .manifest import is_hidden, is_selected, visibility_of

UNKNOWN = "?"  # the points of a hidden test whose expected values are not in this copy
UNKNOWN_MEANS = "ran without crashing; scored on Gradescope"
NOT_IMPLEMENTED = "not implemented yet"
WIDTH = 100  # report lines are wrapped to this many columns


@dataclasses.dataclass
class Entry:
    test_id: str
    question: str
    title: str
    points: float
    score: float | None  # None: unknown (hidden test, expected values absent)
    status: str  # "passed", "failed", "unknown", "not run"
    hidden: bool
    extra_credit: bool
    message: str = ""
    seconds: float = 0.0
    internal: bool = False
    kind: str = ""  # StudentCodeError.kind of the failure, if the student's code failed
    parts: list = dataclasses.field(default_factory=list)  # SubCases parts: [{"name", "points", "earned"}]
    printed: dict | None = None  # what the student's code printed in this test: {"text", "more_lines"}


@dataclasses.dataclass
class Summary:
    assignment: str
    submission: str
    entries: list
    written: list  # (question id, title, points)
    selected_questions: list
    problems: list  # grader problems (not the student's)
    warnings: list
    hidden_values_present: bool

    def total(self, *, hidden=None, extra_credit=None):
        chosen = [e for e in self.entries if (hidden is None or e.hidden == hidden)
                  and (extra_credit is None or e.extra_credit == extra_credit)]
        earned = sum(e.score for e in chosen if e.score is not None)
        unknown = any(e.score is None for e in chosen)
        return earned, sum(e.points for e in chosen), unknown

    @property
    def score(self):
        """The autograded score: every coding test, extra credit included, written parts not."""
        return round(sum(e.score for e in self.entries if e.score is not None), 4)

    @property
    def grader_failed(self):
        return bool(self.problems) or any(e.internal for e in self.entries)


def summarize(manifest, results, *, submission, selection=None, collected=(), problems=(), warnings=(),
              hidden_values_present=True, not_run_reason=None):
    """One entry per selected coding test of the manifest, in manifest order."""
    questions = manifest["questions"]
    by_id = {}
    for result in results:
        by_id.setdefault(result.test_id, result)
    entries, warnings, missing = [], list(warnings), []
    for test_id, test in manifest["tests"].items():
        if test["type"] != "coding" or not is_selected(test_id, selection):
            continue
        question = test["question"]
        common = dict(test_id=test_id, question=question, title=questions[question]["title"],
                      points=float(test["points"]), hidden=is_hidden(test_id),
                      extra_credit=bool(test.get("extra_credit")))
        result = by_id.get(test_id)
        if result is not None:
            score = None if result.score is None else round(min(max(float(result.score), 0.0), common["points"]), 4)
            entries.append(Entry(**common, score=score, status=result.status, message=result.message,
                                 seconds=result.seconds, internal=result.internal, parts=result.parts,
                                 kind=getattr(result, "kind", ""), printed=getattr(result, "printed", None)))
            continue
        if not_run_reason:
            message, internal = not_run_reason, True
        elif test_id in collected:
            message, internal = "did not run (the grader stopped before it)", True
        else:
            message, internal = "no test implements this id in this copy of the grader", False
            missing.append(test_id)
        entries.append(Entry(**common, score=0.0, status="not run", message=message, internal=internal))
    if missing:
        warnings.append(f"{len(missing)} test id(s) of the manifest have no test here and score 0: {', '.join(missing)}")
    written = [(q, info["title"], sum(float(t["points"]) for t in manifest["tests"].values() if t["question"] == q))
               for q, info in questions.items() if info["type"] == "written" and (not selection or q in selection)]
    chosen_questions = [q for q in questions if any(e.question == q for e in entries)
                        or any(w[0] == q for w in written)]
    return Summary(assignment=manifest.get("assignment", ""), submission=str(submission), entries=entries,
                   written=written, selected_questions=chosen_questions, problems=list(problems),
                   warnings=warnings, hidden_values_present=hidden_values_present)


def _points(value):
    return f"{value:g}"


def _earned(earned, unknown):
    return f"{_points(earned)} + {UNKNOWN}" if unknown else _points(earned)


def _first_line(text):
    """The first line of a message; a line that ends with ':' ("3 of 5 parts failed:") takes the next one along."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if line.endswith(":") and len(lines) > 1:
        line = f"{line} {lines[1].lstrip('-* ')}"
    return line


def _wrapped(text, first_indent, indent):
    """``text`` in full, wrapped to ``WIDTH`` columns (long words such as paths are not broken)."""
    return textwrap.wrap(text, WIDTH, initial_indent=first_indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False) or [first_indent.rstrip()]


PRINTED_LABEL = "what your code printed during this test (its stdout and stderr):"
PRINTED_LINE_CHARS = 500  # a longer printed line is cut where it is shown


def printed_lines(printed):
    """The student's own output, labelled: the label, ``| line`` per kept line (control characters shown as
    ``?``), then ``... N more lines``; [] when nothing was printed."""
    if not printed:
        return []
    lines = [PRINTED_LABEL]
    for line in printed["text"].splitlines():
        line = "".join(c if c == "\t" or (" " <= c != "\x7f") else "?" for c in line)
        lines.append(f"| {line[:PRINTED_LINE_CHARS]}" + (" [... cut]" if len(line) > PRINTED_LINE_CHARS else ""))
    if printed["more_lines"]:
        lines.append(f"| ... {printed['more_lines']} more lines")
    return lines


def shows_printed(entry, verbose=False):
    """Where the student's output is shown: under a failing public test, and with ``verbose`` under every test
    (results.json: failing public tests only; a hidden test's output is never written there)."""
    return bool(entry.printed) and (verbose or (entry.status == "failed" and not entry.hidden))


def _group_points(entries):
    """``earned/possible`` of some tests: ``?/1.5`` when none is known here, ``0.5+?/2`` when some are."""
    earned = sum(e.score for e in entries if e.score is not None)
    possible = _points(sum(e.points for e in entries))
    if all(e.score is None for e in entries):
        return f"{UNKNOWN}/{possible}"
    return f"{_points(earned)}{'+' + UNKNOWN if any(e.score is None for e in entries) else ''}/{possible}"


def nothing_implemented(summary):
    """Whether every graded test failed only because the stubs raise "not implemented yet" (the expected start)."""
    return bool(summary.entries) and all(e.status == "failed" and e.kind == "not_implemented"
                                         for e in summary.entries)


def totals_lines(summary):
    lines = []
    earned, possible, unknown = summary.total(extra_credit=False)
    hidden_earned, hidden_possible, hidden_unknown = summary.total(extra_credit=False, hidden=True)
    lines.append(f"Autograded:          {_earned(earned, unknown)} / {_points(possible)}")
    hidden = [e for e in summary.entries if e.hidden and not e.extra_credit]
    hidden_text = f"{UNKNOWN if all(e.score is None for e in hidden) else _earned(hidden_earned, hidden_unknown)}" \
        f" / {_points(hidden_possible)}" + (f" ({UNKNOWN}: {UNKNOWN_MEANS})" if hidden_unknown else "")
    lines.append(f"  of which hidden:   {hidden_text}")
    ec_earned, ec_possible, ec_unknown = summary.total(extra_credit=True)
    if ec_possible:
        lines.append(f"Extra credit:        {_earned(ec_earned, ec_unknown)} / {_points(ec_possible)}")
    written = sum(points for _q, _t, points in summary.written)
    if summary.written:
        lines.append(f"Written:             {_points(written)} points, graded by hand (not scored here)")
    return lines


def format_report(summary, verbose=False):
    """The table per question (points of the public and hidden tests, each failure's message in full, wrapped),
    the totals and, with ``verbose``, every failure's details."""
    out = [f"{summary.assignment}: {summary.submission}"]
    out.append("")
    by_question = {}
    for entry in summary.entries:
        by_question.setdefault(entry.question, []).append(entry)
    written = {q: (title, points) for q, title, points in summary.written}
    width = 52
    for question in summary.selected_questions:
        if question in written:
            title, points = written[question]
            out.append(f"{question:<4}{title[:width]:<{width}} {'-':>6} / {_points(points):<5} graded by hand")
            continue
        entries = by_question.get(question, [])
        title = entries[0].title + (" (extra credit)" if entries[0].extra_credit and "xtra" not in entries[0].title
                                    else "")
        earned = sum(e.score for e in entries if e.score is not None)
        unknown = any(e.score is None for e in entries)
        possible = sum(e.points for e in entries)
        groups = []
        for kind, hidden in (("public", False), ("hidden", True)):
            group = [e for e in entries if e.hidden == hidden]
            if group:
                groups.append(f"{kind} {_group_points(group)}")
        score_text = (f"{_points(earned)}+{UNKNOWN}" if unknown else _points(earned))
        out.append(f"{question:<4}{title[:width]:<{width}} {score_text:>6} / {_points(possible):<5} "
                   + ", ".join(groups))
        for entry in entries:
            if entry.status == "passed" and not entry.message and not shows_printed(entry, verbose):
                continue
            mark = {"passed": "ok", "unknown": UNKNOWN}.get(entry.status, "x")
            line = UNKNOWN_MEANS if entry.status == "unknown" else (_first_line(entry.message) or entry.status)
            out.extend(_wrapped(f"{entry.test_id}: {line}", f"      {mark:>3} ", " " * 12))
            if verbose and entry.status != "unknown" and entry.message.count("\n"):
                for text in entry.message.splitlines()[1:40]:
                    out.extend(_wrapped(text.strip(), " " * 12, " " * 16))
            if shows_printed(entry, verbose):
                out.extend(" " * 12 + text for text in printed_lines(entry.printed))
    out.append("")
    out.extend(totals_lines(summary))
    if nothing_implemented(summary):
        out.extend(_wrapped(f"Every test failed with \"{NOT_IMPLEMENTED}\": that is the expected start. Write your "
                            "code between the START/END CODE HERE lines of the files in submission/ and grade "
                            "again.", "", ""))
    elif not verbose and any(e.message.count("\n") for e in summary.entries if e.status != "unknown"):
        out.append("(python grader.py -v ... shows each failure in full)")
    for warning in summary.warnings:
        out.append(f"warning: {warning}")
    for problem in summary.problems:
        out.extend(_wrapped(f"GRADER PROBLEM (not your code): {_first_line(problem)}", "", "    "))
    return "\n".join(out)


def results_json(summary, execution_time):
    """Gradescope's results.json for this grade."""
    tests = []
    for entry in summary.entries:
        test = {"name": f"{entry.test_id} {entry.title}", "number": entry.test_id,
                "score": 0.0 if entry.score is None else entry.score, "max_score": entry.points,
                "visibility": visibility_of(entry.test_id)}
        if entry.status in ("passed", "failed"):
            test["status"] = entry.status
        message = entry.message
        if entry.status == "unknown":
            message = "hidden test: its expected values are not in this copy of the grader"
        elif entry.status == "not run":
            test["status"] = "failed"
        if entry.status == "failed" and shows_printed(entry):
            message = "\n".join([message, "", *printed_lines(entry.printed)]).strip()
        if message:
            test["output"] = message
        if entry.parts:
            test["extra_data"] = {"parts": entry.parts}
        tests.append(test)
    output = "\n".join(totals_lines(summary) + [f"GRADER PROBLEM: {_first_line(p)[:400]}" for p in summary.problems])
    return {"score": summary.score, "execution_time": round(max(execution_time, 0.0), 3), "output": output,
            "tests": tests}


def fallback_results(manifest, error_text, execution_time=0.0, selection=None):
    """results.json when the grader itself failed: every selected coding test scores 0, and the output says why."""
    tests = []
    questions = (manifest or {}).get("questions", {})
    for test_id, test in (manifest or {}).get("tests", {}).items():
        if test.get("type") != "coding" or not is_selected(test_id, selection):
            continue
        title = questions.get(test.get("question"), {}).get("title", "")
        tests.append({"name": f"{test_id} {title}".strip(), "number": test_id, "score": 0.0,
                      "max_score": float(test.get("points", 0.0)), "status": "failed",
                      "visibility": visibility_of(test_id),
                      "output": "not graded: the autograder itself failed (not your code); please tell your TAs"})
    return {"score": 0.0, "execution_time": round(max(execution_time, 0.0), 3),
            "output": "The autograder itself failed (not your code), so nothing was graded; please tell your TAs.\n"
                      + str(error_text)[-3000:], "tests": tests}


def write_results(path, data):
    """Write results.json atomically (a temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
