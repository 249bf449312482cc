#!/usr/bin/env bash
# Full-data training runs of the reference on a GPU, all at once on one card.
# Writes logs and figures to ${OUT:-runs/gpu}; each run is cut at ${RUN_SECONDS:-540} s and then
# evaluated from its best checkpoint (rerun with --resume to continue a cut run).
#   bash tools/gpu_full_runs.sh                      # the two --full presets
#   bash tools/gpu_full_runs.sh "NAME MODEL --flag value" ...   # other settings, side by side
set -u
OUT=${OUT:-runs/gpu}; mkdir -p "$OUT"
RUN_SECONDS=${RUN_SECONDS:-540}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi -L > "$OUT/hardware.txt" 2>&1; $PY -c "import torch; print('torch', torch.__version__)" >> "$OUT/hardware.txt"

run() {  # name model extra-args...
  local name=$1 model=$2; shift 2
  local start=$SECONDS
  timeout "$RUN_SECONDS" $PY -m src train "$model" --impl solution --full --device cuda --no-progress \
      --out "runs/$name" "$@" > "$OUT/$name.log" 2>&1
  echo "train exit $? after $((SECONDS - start)) s" >> "$OUT/$name.log"
  $PY -m src evaluate "$model" --impl solution --device cuda --checkpoint "runs/$name/best.pt" --split test >> "$OUT/$name.log" 2>&1
  echo "total wall $((SECONDS - start)) s" >> "$OUT/$name.log"
}

if [ $# -gt 0 ]; then  # custom runs: "NAME MODEL [ARGS...]" per argument
  for spec in "$@"; do run $spec & done
else
  run made_full made &
  run pixelcnn_full pixelcnn &
fi
wait
if [ "${COPY_FIGURES:-1}" = 1 ]; then
  for dir in runs/*/; do
    name=$(basename "$dir")
    for f in "$dir"*.png; do [ -e "$f" ] && cp "$f" "$OUT/${name}_$(basename "$f")"; done
  done
fi
ls "$OUT"
