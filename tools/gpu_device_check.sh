#!/usr/bin/env bash
# Issue 16, point 5: device safety measured on a real GPU (an H200 lent through the `run` device tool).
#
# NOT RUN YET: no GPU machine was lent to the task that wrote this script (issue 16's first session);
# a later session with a GPU runs it once, as root, from the repository root, in about 10 minutes:
#
#     OUT=runs/gpu_device bash tools/gpu_device_check.sh        # locally; the device tool sets $OUT itself
#
# What it does, each step cut by `timeout` so that the whole stays under ~10 minutes, each log in $OUT:
#   1. hardware.txt    the GPU, torch and whether CUDA starts;
#   2. patterns.txt    tools/device_patterns.py on cuda:0: does CUDA refuse and allow what the stand-in
#                      device refuses and allows (two rules there are marked "to confirm on a GPU")?
#   3. reference.txt   src.device_check's parts of the reference on cuda:0 (values within float tolerance
#                      of the CPU's) and on the stand-in, with their times;
#   4. mutants.md      tools/device_mutant_table.py --cuda: each device mutant on the stand-in and on
#                      CUDA (a mutant that guesses "cuda" shows as refused on the CPU there instead);
#   5. cli.txt         train/evaluate/sample --device cuda of a copy whose submission/ has two device
#                      mutants: one line each, no traceback (CUDA's own messages, read by explain());
#   6. grade_reference.txt  grader.py as root: the reference (30.0 expected), the stubs (0.0 expected), with
#                      their wall time; with CUDA visible to the worker, every device part also runs on
#                      CUDA: gpu_parts lists each part's notes from results.json (ran_on, cuda: "same
#                      values" expected for the reference, cuda_sampling_ratio);
#   7. mutants_graded  the device mutants graded (tools/mutation_check.py): each must lose points in its
#                      question as on a CPU machine (the stand-in carries the points everywhere).
# summary.txt collects the figures (8 files come back from $OUT, the device tool's limit: these are 8).  Exit status 0
# when steps 2-4 did what is expected; read cli.txt and the grades yourself.
set -u
OUT=${OUT:-runs/gpu_device}; mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
started=$SECONDS
status=0
summary() { echo "$*" | tee -a "$OUT/summary.txt"; }
step() {  # name seconds command...: run with a time limit, log to $OUT/name.txt, note the exit status and time
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  summary "$name: exit $rc after $((SECONDS - t0)) s"
  return $rc
}

# 1. the machine
{ nvidia-smi -L; id; $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'available', torch.cuda.is_available()); torch.zeros(1, device='cuda'); print('CUDA starts')"; } \
    > "$OUT/hardware.txt" 2>&1 || { summary "hardware: CUDA does not start, see hardware.txt"; exit 1; }
summary "hardware: $(head -1 "$OUT/hardware.txt"); $(grep '^torch' "$OUT/hardware.txt")"

# 2. CUDA's rules against the stand-in's
step patterns 60 $PY tools/device_patterns.py cuda:0 || status=1
summary "patterns: $(tail -1 "$OUT/patterns.txt")"
grep '^DIFF' "$OUT/patterns.txt" | sed 's/^/  /' | tee -a "$OUT/summary.txt"

# 3. the reference on CUDA and on the stand-in
step reference 120 $PY - <<'EOF' || status=1
import time
from pathlib import Path
import torch
from src import device_check, standin_device

ref = device_check.load_modules(Path("solution"))
bad = 0
for device in ("cuda", None):
    for part in device_check.PARTS:
        start = time.perf_counter()
        found = device_check.device_findings(ref, [part], device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        bad += bool(found)
        print(f"{device or 'stand-in':8s} {part.question} {part.label:50s} {seconds:6.2f} s  "
              f"{found[0][1] if found else 'same values as the CPU'}")
print(f"{bad} parts of the reference differ or are refused")
raise SystemExit(1 if bad else 0)
EOF
summary "reference: $(tail -1 "$OUT/reference.txt")"

# 4. the device mutants on CUDA
step mutants 240 $PY tools/device_mutant_table.py --cuda || status=1
mv "$OUT/mutants.txt" "$OUT/mutants.md"
summary "mutants: $(tail -1 "$OUT/mutants.md")"
grep -c 'NOT SHOWN' "$OUT/mutants.md" | sed 's/^/  rows with NOT SHOWN: /' | tee -a "$OUT/summary.txt"

# 5. the library's one-line errors with CUDA's own messages
COPY=$(mktemp -d /tmp/ps1-gpu-cli.XXXXXX)
cp -r src "$COPY/src" && ln -s "$PWD/data" "$COPY/data" && cp -r solution "$COPY/submission"
$PY - "$COPY" <<'EOF'
import json, sys
from pathlib import Path
copy = Path(sys.argv[1])
catalogue = {m["id"]: m for m in json.loads(Path("staff_tests/mutants/device.json").read_text())}
for name in ("dev-made-sample-canvas-cpu", "dev-evaluate-batches-not-moved"):
    m = catalogue[name]
    path = copy / "submission" / m["file"]
    path.write_text(path.read_text().replace(m["find"], m["replace"]))
EOF
step cli 180 bash -c 'cd "$1" && PY=$2 && {
  echo "== train"; $PY -m src train made --device cuda --max-steps 2 --epochs 1 --train-limit 100 --valid-limit 100 \
      --test-limit 100 --hidden 20 --no-progress --out runs/made; echo "exit $?"
  echo "== evaluate"; $PY -m src evaluate made --checkpoint runs/made/best.pt --device cuda --limit 100 --no-progress
  echo "exit $?"
  echo "== sample"; $PY -m src sample made --checkpoint runs/made/best.pt --device cuda --n 2 --no-progress
  echo "exit $?"
  echo "== check"; $PY -m src check made --out runs/check; echo "exit $?"; }' _ "$COPY" "$PY"
rm -rf "$COPY"
summary "cli: $(grep -c '^exit 2' "$OUT/cli.txt") of 3 commands stopped with exit 2 (check: $(grep '^exit' "$OUT/cli.txt" | tail -1)); tracebacks: $(grep -c Traceback "$OUT/cli.txt")"
grep -E 'error:|on another device' "$OUT/cli.txt" | sed 's/^/  /' | tee -a "$OUT/summary.txt"

# 6. the grader as root: the reference and the stubs
RESULTS=$(mktemp /tmp/ps1-gpu-results.XXXXXX.json)  # read here, not sent back (8 files come back at most)
step grade_reference 300 $PY grader.py --submission solution --results "$RESULTS" || true
summary "grade_reference: $(grep -iE 'autograded' "$OUT/grade_reference.txt" | tail -1)"
$PY - "$RESULTS" <<'EOF' | tee -a "$OUT/summary.txt"
import json, sys
tests = json.load(open(sys.argv[1]))["tests"]
parts = [(t["number"], p) for t in tests for p in t.get("extra_data", {}).get("parts", []) if "ran_on" in p]
for number, p in parts:
    print(f"  gpu_parts {number}: {p['name']}: earned {p['earned']}/{p['points']}, ran on {', '.join(p['ran_on'])}; "
          f"cuda: {p.get('cuda', 'did not run')}; sampling ratio {p.get('cuda_sampling_ratio', '-')}")
print(f"  gpu_parts: {sum('cuda' in p['ran_on'] for _, p in parts)} of {len(parts)} device parts ran on CUDA")
EOF
step grade_stubs 120 $PY grader.py || true
summary "grade_stubs: $(grep -iE 'autograded' "$OUT/grade_stubs.txt" | tail -1)"
cat "$OUT/grade_stubs.txt" >> "$OUT/grade_reference.txt" && rm "$OUT/grade_stubs.txt" "$RESULTS"
ls -ld hidden_tests solution staff staff_tests .git | sed 's/^/  modes after grading: /' | tee -a "$OUT/summary.txt"

# 7. the device mutants graded on the GPU machine
step mutants_graded 300 $PY tools/mutation_check.py $($PY -c "import json; print(*[m['id'] for m in json.load(open('staff_tests/mutants/device.json'))])") || status=1
summary "mutants_graded: $(tail -1 "$OUT/mutants_graded.txt")"

summary "all steps: $((SECONDS - started)) s, status $status"
exit $status
