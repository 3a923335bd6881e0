#!/usr/bin/env bash
# On a CUDA machine, after scripts/pack-gpu-data.sh here and with .gpu-data carried there:
#   bash bench/gpu_benchmarks.sh [OUT_DIR]
# Uses the machine's own torch (PYTHONPATH=src: no install); writes one Markdown file per benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-results}}"
mkdir -p "$out"
export PYTHONPATH=src DIGITLAB_HOME=.gpu-data/home DIGITLAB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
common=(--device cuda --test-set .gpu-data/mnist-test)
# the CUDA-graph tests first (seconds): does the real capture train as the eager step here?
if python3 -c "import pytest" 2>/dev/null; then
  python3 -m pytest -q -p no:cacheprovider -m cuda tests/train/test_cuda_graph.py 2>&1 | tee "$out/cuda_tests.txt" || true
else
  echo "pytest is not installed here: the cuda tests did not run" | tee "$out/cuda_tests.txt"
fi
# the GPU issue's figures first (start-up, images/s, time to 0.990/0.995 over 5 seeds, the anchors)
python3 bench/bench_gpu.py "${common[@]}" --anchors .gpu-data/gpu-anchors --out "$out/bench_gpu.md"
python3 bench/bench_levers.py "${common[@]}" --rounds 3 | tee "$out/levers.md"
python3 bench/bench_levers.py "${common[@]}" --rounds 3 --bs 512 | tee "$out/levers_bs512.md"
python3 bench/bench_time_to_accuracy.py "${common[@]}" --task 10 --target 0.990 --epochs 6,8,10 \
  | tee "$out/tta10_fp32.md"
python3 bench/bench_time_to_accuracy.py "${common[@]}" --task 10 --target 0.990 --epochs 6,8,10 \
  --precision bf16 --bs 512 --lr 1.6 | tee "$out/tta10_bf16_bs512.md"
