"""Mutation check: grade the catalogued student bugs and say which tests and parts catch each.

The catalogue lives in ``staff_tests/mutants/*.json``: each mutant is one exact
text edit (``find`` -> ``replace``) of a file of ``solution/`` and names the
question that must lose points.  Each mutant is graded like a submission
(``grader.py <question> --submission <mutated copy> --results ...``, two grades
at once), and the parts of partial-credit tests (``cases.case(points, name)``,
written by the plugin into each test's ``extra_data``) say what caught it.

    python tools/mutation_check.py                 # every mutant (about 5 minutes on 2 cores)
    python tools/mutation_check.py 1b 2a           # the mutants of these questions
    python tools/mutation_check.py bern-mean-over-dims
    python tools/mutation_check.py 1b --json       # the same, for machines

It prints, per mutant, the tests and the parts that lost points; then, per
part (a whole test for tests without parts), the mutants that only it catches:
a part that catches nothing unique repeats what others catch (worth a look).
Exit status 1 when a mutant loses no points in its question.
``staff_tests/test_mutants.py`` runs the same code, one test per question.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = sorted((ROOT / "staff_tests" / "mutants").glob("*.json"))
JOBS = 2  # each grade is a pytest process plus a worker: two fill two cores


def load_catalogue(selection=()):
    """The mutants (dicts with ``id``, ``file``, ``question``, ``description``, ``find``, ``replace``,
    ``catalogue``), all of them or those of the selected questions and mutant ids."""
    mutants = [{**mutant, "catalogue": path.name} for path in CATALOGUE for mutant in json.loads(path.read_text())]
    if not selection:
        return mutants
    known = {m["id"] for m in mutants} | {m["question"] for m in mutants}
    unknown = [s for s in selection if s not in known]
    if unknown:
        raise ValueError(f"no mutant or question with mutants is called {', '.join(unknown)}")
    return [m for m in mutants if m["id"] in selection or m["question"] in selection]


def make_mutant(mutant, folder):
    """Copy solution/ into ``folder`` with the mutant's edit applied."""
    shutil.copytree(ROOT / "solution", folder, ignore=shutil.ignore_patterns("__pycache__"))
    target = folder / mutant["file"]
    source = target.read_text()
    count = source.count(mutant["find"])
    if count != 1:
        raise ValueError(f"mutant {mutant['id']}: 'find' occurs {count} times in solution/{mutant['file']}")
    target.write_text(source.replace(mutant["find"], mutant["replace"]))


def grade_folder(folder, results, *selection, timeout=600):
    """Grade the submission in ``folder`` with ``grader.py [selection...]``, writing ``results``:
    ``{test id: {"score", "max_score", "output", "parts": [{"name", "points", "earned"}]}}``."""
    command = [sys.executable, "grader.py", *selection, "--submission", str(folder), "--results", str(results)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
    if completed.returncode != 0 or not Path(results).exists():
        raise RuntimeError(f"grader failed on {folder}:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    return {test["number"]: {"score": test["score"], "max_score": test["max_score"], "output": test.get("output", ""),
                             "parts": test.get("extra_data", {}).get("parts", [])}
            for test in json.loads(Path(results).read_text())["tests"]}


def grade(mutant, workdir):
    """Grade the mutant's question (see :func:`grade_folder`)."""
    folder = Path(workdir) / mutant["id"]
    make_mutant(mutant, folder / "submission")
    return grade_folder(folder / "submission", folder / "results.json", mutant["question"])


def grade_all(mutants, jobs=JOBS):
    """Grade every mutant, ``jobs`` at a time; returns the outcomes in the mutants' order."""
    with tempfile.TemporaryDirectory(prefix="ps1-mutants-") as workdir, ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda mutant: grade(mutant, workdir), mutants))


def attribute(mutants, outcomes):
    """What caught what.

    A *unit* is a part of a partial-credit test (``"2a-1-hidden: made_masks"``) or a
    whole test without parts (``"1b-0-basic"``); a unit catches a mutant when it
    earns less than its points.  Returns ``{"mutants": [...], "units": [...]}``:
    per mutant its tests and units that lost points (of its own question), whether
    a public test caught it and whether anything did; per unit the mutants it
    catches and those that only it catches.
    """
    rows, catches = [], {}
    for mutant, tests in zip(mutants, outcomes):
        lost_tests, units = [], []
        for test_id, test in sorted(tests.items()):
            if not test_id.startswith(mutant["question"] + "-"):
                continue
            lost = test["score"] < test["max_score"] - 1e-9
            lost_tests += [test_id] if lost else []
            if test["parts"]:
                for part in test["parts"]:
                    unit = f"{test_id}: {part['name']}"
                    catches.setdefault(unit, [])
                    if part["earned"] is not None and part["earned"] < part["points"] - 1e-9:
                        units.append(unit)
            else:
                catches.setdefault(test_id, [])
                units += [test_id] if lost else []
            if lost and test["parts"] and not any(u.startswith(test_id + ": ") for u in units):
                units.append(f"{test_id} (outside its parts)")
        for unit in units:
            catches.setdefault(unit, []).append(mutant["id"])
        rows.append({"id": mutant["id"], "question": mutant["question"], "description": mutant["description"],
                     "caught": bool(lost_tests), "public": any(t.endswith("-basic") for t in lost_tests),
                     "tests": lost_tests, "units": units})
    caught_by = {row["id"]: row["units"] for row in rows}
    units = [{"unit": unit, "catches": caught, "only_here": [m for m in caught if caught_by[m] == [unit]]}
             for unit, caught in sorted(catches.items())]
    return {"mutants": rows, "units": units}


def format_text(report):
    """The report for a person: per mutant what caught it, per unit its unique catches, a summary line."""
    rows, lines = report["mutants"], ["Mutants (+: a public test catches it):"]
    for row in rows:
        mark = "MISSED" if not row["caught"] else ("+" if row["public"] else " ")
        lines.append(f"  {mark:>6} {row['question']:<3} {row['id']}")
        lines.extend(f"           {unit}" for unit in row["units"])
    lines.append("\nParts (a whole test where it has no parts): mutants caught / only here")
    for unit in report["units"]:
        only = ", ".join(unit["only_here"]) if unit["only_here"] else \
            ("nothing unique (worth a look)" if unit["catches"] else "catches nothing (worth a look)")
        lines.append(f"  {len(unit['catches']):>3} / {len(unit['only_here']):<3} {unit['unit']}: {only}")
    missed = [row["id"] for row in rows if not row["caught"]]
    lines.append(f"\n{len(rows) - len(missed)}/{len(rows)} mutants lose points in their question; "
                 f"{sum(row['public'] for row in rows)} of them are caught by the public tests alone"
                 + (f"; MISSED: {', '.join(missed)}" if missed else ""))
    return "\n".join(lines)


def check(selection=(), jobs=JOBS):
    """Grade the selected mutants and attribute them (see :func:`attribute`)."""
    mutants = load_catalogue(selection)
    return attribute(mutants, grade_all(mutants, jobs))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("select", nargs="*", metavar="QUESTION_OR_MUTANT", help="default: every mutant")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"grades at once (default {JOBS})")
    args = parser.parse_args(argv)
    try:
        report = check(args.select, args.jobs)
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps(report, indent=2) if args.json else format_text(report))
    return 0 if all(row["caught"] for row in report["mutants"]) else 1


if __name__ == "__main__":
    sys.exit(main())
