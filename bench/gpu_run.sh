#!/usr/bin/env bash
# The GPU benchmarks, in one go, for the device tool: `bash bench/gpu_run.sh` with $OUT set.
# Writes ops_gpu.json / gpu_classification.json (+ logs) under $OUT.
set -u
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/device.txt"
python3 -c "import torch, torchvision, triton, numba; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'triton', triton.__version__, 'numba', numba.__version__)" | tee -a "$OUT/device.txt"
timeout 200 python3 bench/ops.py --device cuda --out "$OUT/ops_gpu.json" 2>&1 | tee "$OUT/ops_gpu.log"
timeout 330 python3 bench/gpu_classification.py --device cuda --out "$OUT/gpu_classification.json" 2>&1 | tee "$OUT/gpu_classification.log"
