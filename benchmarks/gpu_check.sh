#!/usr/bin/env bash
# The GPU engine's checks and timings in one prepared run, for a lent GPU (8 minutes at most):
#
#   MADE_DATA_DIR=path/to/data bash benchmarks/gpu_check.sh OUT_FOLDER      # on a CUDA GPU
#   bash benchmarks/gpu_check.sh --standin OUT_FOLDER                       # without one: the counts
#
# Each step runs under its own deadline and writes what it printed to OUT_FOLDER/<step>.txt; a line
# per step (exit status, seconds) goes to OUT_FOLDER/summary.txt. A step that fails or runs out of
# time does not stop the next. The exit status is the number of steps that failed.
#   standin_counts  launches and copies per step and per evaluation batch (bench.py --gpu-standin)
#   gpu_tests       tests/test_gpu.py: every kernel against its NumPy twin, the fused engine against
#                   the unfused one (MADE_GPU_UNFUSED=1) and against the CPU, on the GPU
#   interleaved     epochs of 784-500-784 in turn: fused, unfused, PyTorch CUDA (benchmarks/interleaved.py)
#   epoch_8000      one epoch of train.py at 784-8000-784 +direct, 32 masks, estimated: fused, then unfused
set -u
cd "$(dirname "$0")/.."
standin=0
if [ "${1:-}" = "--standin" ]; then standin=1; shift; fi
out="${1:?usage: bash benchmarks/gpu_check.sh [--standin] OUT_FOLDER}"
mkdir -p "$out"
: > "$out/summary.txt"  # this run's steps only
failed=0

step() {  # step NAME DEADLINE_SECONDS COMMAND...
    local name=$1 deadline=$2 started=$SECONDS status
    shift 2
    timeout --kill-after=5 "$deadline" "$@" > "$out/$name.txt" 2>&1
    status=$?
    echo "$name: exit $status after $((SECONDS - started)) s (deadline $deadline s)" | tee -a "$out/summary.txt"
    [ "$status" -eq 0 ] || failed=$((failed + 1))
}

step standin_counts 60 python bench.py --gpu-standin
if [ "$standin" -eq 0 ]; then
    step gpu_tests 100 python -m pytest -q tests/test_gpu.py
    step interleaved 170 python benchmarks/interleaved.py --gpu --rounds 3
    step epoch_8000 50 python bench.py --gpu --hidden 8000 --direct --masks 32
    step epoch_8000_unfused 50 env MADE_GPU_UNFUSED=1 python bench.py --gpu --hidden 8000 --direct --masks 32
fi
exit "$failed"
