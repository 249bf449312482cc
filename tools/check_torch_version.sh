#!/usr/bin/env bash
# Check one torch version against requirements.txt's range (README, "On a GPU machine or Colab"):
# the reference must get full marks (30.0 with the extra credit) and the stubs zero; where torch
# sees a GPU, also a short --device cuda training of MADE and PixelCNN.
#   bash tools/check_torch_version.sh [PYTHON]      (default: python3; a venv with that torch)
# Prints one line per check and exits non-zero at the first that fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${1:-python3}"
OUT="$(mktemp -d /tmp/ps1-torch-check.XXXXXX)"
chmod 755 "$OUT"
"$PY" -c 'import torch; print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")'
score() {  # submission folder -> "autograded extra" points
    "$PY" grader.py --submission "$1" --results "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || true
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["score"])' "$OUT/$1.json"
}
reference="$(score solution)"; stubs="$(score submission)"
echo "reference ${reference} (expected 30.0), stubs ${stubs} (expected 0)"
"$PY" -c 'import sys; sys.exit(float(sys.argv[1]) != 30.0 or float(sys.argv[2]) != 0.0)' "$reference" "$stubs"
if "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    for model in made pixelcnn; do
        "$PY" -m src train "$model" --impl solution --device cuda --epochs 1 --train-limit 2000 --valid-limit 500 \
            --test-limit 500 --n-samples 4 --out "$OUT/$model" --no-progress | tail -3
    done
else
    echo "no GPU: --device cuda not checked"
fi
echo "ok; logs in $OUT"
