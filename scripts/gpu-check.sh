#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The prepared GPU check (one H200, under 8 minutes): builds the CUDA tests and benchmark for
# sm_90 (or uses a build folder given as second argument, e.g. one built on a CPU machine with
# -DGRADCOMP_ENABLE_CUDA=ON and carried over), runs the CUDA tests and the package consumer, a reduced run under
# compute-sanitizer memcheck where the machine supports it, the CUDA benchmark, and the
# torch.topk reference; logs and JSON go to the folder given as first argument.
#
#   scripts/gpu-check.sh OUT_DIR [BUILD_DIR]
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR [BUILD_DIR]}
build=${2:-}
mkdir -p "$out"
cd "$(dirname "$0")/.."
summary=()
step() { # name, timeout seconds, command...
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  local verdict=passed
  [ $rc -eq 77 ] && verdict=skipped
  [ $rc -ne 0 ] && [ $rc -ne 77 ] && verdict="FAILED (rc=$rc)"
  summary+=("$name: $verdict in $((SECONDS - t0)) s")
  echo "== $name: $verdict in $((SECONDS - t0)) s"
  tail -n 25 "$out/$name.log"
}

nvidia-smi >"$out/nvidia-smi.log" 2>&1 || echo "nvidia-smi not available"
if [ -z "$build" ]; then
  build=build-gpu
  step configure 300 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGRADCOMP_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGRADCOMP_BUILD_BENCHMARKS=OFF \
    -DGRADCOMP_BUILD_EXAMPLES=OFF -DGRADCOMP_BUILD_RUNTIME=OFF
  step build 900 cmake --build "$build" --target gradcomp_cuda_checks
fi
bench=$(find "$build" -name bench_device -type f | head -n 1)
tests=$(find "$build" \( -name 'test_device_*' -o -name 'test_nccl_*' \) -type f -perm -u+x | sort)
for t in $tests; do
  step "$(basename "$t")" 150 "$t"
done
if command -v compute-sanitizer >/dev/null; then # reduced runs: robustness and layout cases
  step memcheck_codec 120 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$build/tests/test_device_codec" "[robust],[rules],[launches]"
  step memcheck_sparse 120 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$build/tests/test_device_sparse" "[robust]"
  step memcheck_composite 120 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$build/tests/test_device_composite" "[robust]"
  step memcheck_framework 120 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$build/tests/test_device_framework"
fi
# the installed `cuda` component: a find_package consumer's device message equals the CPU's
step cuda_package 300 ctest --test-dir "$build" -R package.cuda_component --output-on-failure
step bench_device 90 "$bench" --json "$out/bench_device.json"
if python3 -c 'import torch' 2>/dev/null; then
  step torch_topk 60 python3 bench/cuda/torch_topk.py
fi
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
if printf '%s\n' "${summary[@]}" | grep -q FAILED; then
  echo "gpu-check: FAILED"
  exit 1
fi
echo "gpu-check: all steps passed or skipped"
