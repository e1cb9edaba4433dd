#!/usr/bin/env bash
# The GPU figures issues 3 and 5 ask for, in one call of a lent accelerator (about 10 minutes on an H100):
# pretraining throughput + GPU utilisation for merit (vit1d_small) and esi (convnext1d_tiny) in bf16, and
# online rendering speed at the training resolution. Writes one JSON per benchmark into ${OUT:-runs/gpu}.
#   bash benchmarks/gpu_suite.sh            (from the repository root, with the package installed)
set -euo pipefail
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" || true
$PY benchmarks/bench_render.py --device cuda --batches 256 1024 --repeats 5 > "$OUT/render_gpu.json"
$PY benchmarks/bench_pretrain_throughput.py --recipes merit,esi --steps 300 --batch-size 256 \
    --precision bf16-mixed --workers 8 > "$OUT/pretrain_throughput.json"
echo "wrote $(ls "$OUT")"
