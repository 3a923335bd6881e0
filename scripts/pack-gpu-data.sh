#!/usr/bin/env bash
# Put what the GPU benchmarks read into .gpu-data/ (git-ignored, never committed): the offline
# mirror as digitlab caches it, the official test set and the GPU issue's anchor scripts from
# ../shared. The device machine sees only the repository, so a session carries this folder there
# (the device tool's `carry`) and runs bench/gpu_benchmarks.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
home="${DIGITLAB_HOME:-$HOME/.cache/digitlab}"
test_set=../shared/data/mnist-test
[ -d "$test_set" ] || { echo "no $test_set: the GPU benchmarks test on the official test set" >&2; exit 1; }
.venv/bin/digitlab data get mnist >/dev/null  # the mirror in the cache, fetched if need be
rm -rf .gpu-data && mkdir -p .gpu-data/home
cp -r "$home/downloads" "$home/decoded" .gpu-data/home/
cp -r "$test_set" .gpu-data/mnist-test
[ -d ../shared/gpu-anchors ] && cp -r ../shared/gpu-anchors .gpu-data/gpu-anchors  # bench_gpu.py runs them
du -sh .gpu-data
