#!/usr/bin/env bash
# The GPU comparison of issue 16 (item 5) in one prepared command, for a session with a device:
# 2 datasets x 3 modes x 2 seeds = 12 runs of 300 s at once on one GPU (float16 autocast and
# loss scaling: zcproxies.train), each run a fresh `zcp autodl run --device cuda` process on
# its own cores; about 6-7 minutes. Datasets that need no shared data and no sktime (the
# device machine may have neither): scikit-learn's digits (image) and breast_cancer (tabular).
#
# Here, first:   pip download crc32c --only-binary=:all: --python-version 3.12 \
#                    --platform manylinux2014_x86_64 -d wheels      # (and 3.11, 3.13)
# Then:          run(command="bash benchmarks/gpu_comparison.sh", carry=["wheels"], timeout_s=600)
# The JSON and the card's name come back under $OUT; copy the JSON to benchmarks/results/.
set -euo pipefail
OUT="${OUT:-benchmarks/results}"
python -c "import crc32c" 2>/dev/null || pip install --no-index --find-links wheels crc32c
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
PYTHONPATH="$PWD" python benchmarks/autodl_compare.py --budget 300 --device cuda --parallel 12 \
    --datasets digits breast_cancer --seeds 0 1 --out "$OUT/autodl_compare_300s_cuda.json"
