"""The device and dtype mutants (``staff_tests/mutants/device.json``): what shows each one.

For every mutant: the message of ``src.device_check`` for its question's parts on the stand-in device
(device mutants) or in float64 against the reference (dtype mutants), and with ``--cuda`` also on a
real GPU.  A mutant is "shown" when it keeps the CPU's values in float32 and some part is refused or
differs.  Staff-only; ``staff_tests/test_device_mutants.py`` asserts what this prints.

    python tools/device_mutant_table.py              # markdown table on stdout
    python tools/device_mutant_table.py --cuda       # also on cuda:0 (tools/gpu_device_check.sh)
    python tools/device_mutant_table.py --json FILE  # the rows as JSON too
    python tools/device_mutant_table.py --graded     # what the grader does with each: points lost, message
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from src import device_check  # noqa: E402  (after the path insert above)
from tools import mutation_check  # noqa: E402  (after the path insert above)

CATALOGUE = ROOT / "staff_tests" / "mutants" / "device.json"


def mutated(mutant, folder):
    """The three modules of the reference with ``mutant`` applied, loaded from ``folder``."""
    for name in ("autoregressive", "made", "pixelcnn"):
        shutil.copy(ROOT / "solution" / f"{name}.py", folder / f"{name}.py")
    path = folder / mutant["file"]
    path.write_text(path.read_text().replace(mutant["find"], mutant["replace"]))
    return device_check.load_modules(folder)


def row(mutant, reference, cuda=False):
    """One row: id, question, kind, cpu (None = the CPU's values), shown (the first message), cuda, seconds."""
    start = time.perf_counter()
    parts = [p for p in device_check.PARTS if p.question == mutant["question"]]
    with tempfile.TemporaryDirectory() as folder:
        mods = mutated(mutant, Path(folder))
        cpu = next((problem for part in parts for problem in [device_check.compare(
            device_check.run_part(part, reference), device_check.run_part(part, mods), exact=False)] if problem),
            None)
        if mutant["kind"] == "device":
            shown = device_check.device_findings(mods, parts)
        else:
            shown = device_check.dtype_findings(mods, reference, parts)
        on_cuda = None
        if cuda and mutant["kind"] == "device":
            found = device_check.device_findings(mods, parts, device="cuda")
            # a mutant that guesses "cuda" is refused on the CPU instead, when a GPU is present
            cpu_refused = [r.error for r in (device_check.run_part(p, mods, "cpu") for p in parts) if r.error]
            on_cuda = found[0][1] if found else (f"refused on the CPU: {cpu_refused[0]}" if cpu_refused else None)
    return {"id": mutant["id"], "question": mutant["question"], "kind": mutant["kind"], "cpu": cpu,
            "shown": shown[0][1] if shown else None, "cuda": on_cuda, "seconds": round(time.perf_counter() - start, 2)}


def graded_rows(mutants):
    """Grade each mutant's question (``tools/mutation_check.py``): the points it loses there and the message
    of the first failing part (its first line, as the grader's summary shows it)."""
    rows = []
    for mutant, outcome in zip(mutants, mutation_check.grade_all(mutants)):
        tests = {t: o for t, o in outcome.items() if t.startswith(mutant["question"] + "-")}
        lost = sum(o["max_score"] - o["score"] for o in tests.values())
        failing = [(t, o) for t, o in tests.items() if o["score"] < o["max_score"]]
        message = ""
        if failing:
            test_id, out = failing[0]
            lines = [line.strip() for line in out["output"].splitlines() if line.strip()]
            message = f"{test_id}: " + " ".join(lines[1:2] if lines and lines[0].endswith("failed:") else lines[:1])
        rows.append({"id": mutant["id"], "question": mutant["question"], "lost": round(lost, 4),
                     "message": message})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuda", action="store_true", help="also run every device mutant on cuda:0")
    parser.add_argument("--json", type=Path, help="write the rows to this file too")
    parser.add_argument("--graded", action="store_true", help="grade each mutant instead: points lost, message")
    args = parser.parse_args(argv)
    if args.graded:
        rows = graded_rows(json.loads(CATALOGUE.read_text()))
        print("| mutant | question | points lost | the grader's message |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['id']} | {r['question']} | {r['lost']:g} | {r['message'].replace('|', '/')} |")
        missed = [r["id"] for r in rows if r["lost"] <= 0]
        print(f"\n{len(rows) - len(missed)} of {len(rows)} mutants lose points in their question"
              + (f"; not: {', '.join(missed)}" if missed else ""))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
        return 1 if missed else 0
    reference = device_check.load_modules(ROOT / "solution")
    rows = [row(m, reference, args.cuda) for m in json.loads(CATALOGUE.read_text())]
    header = "| mutant | question | CPU float32 | shown by (stand-in, or float64) |" + (" on CUDA |" if args.cuda else "")
    print(header)
    print("|---|---|---|---|" + ("---|" if args.cuda else ""))
    for r in rows:
        cells = [r["id"], r["question"], "same values" if r["cpu"] is None else f"DIFFERS: {r['cpu']}",
                 r["shown"] or "NOT SHOWN"]
        if args.cuda:
            cells.append(r["cuda"] or ("-" if r["kind"] != "device" else "NOT SHOWN"))
        print("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    missed = [r["id"] for r in rows if r["cpu"] is not None or r["shown"] is None]
    print(f"\n{len(rows) - len(missed)} of {len(rows)} mutants keep the CPU's values and are shown"
          + (f"; not: {', '.join(missed)}" if missed else ""))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
