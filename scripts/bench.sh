#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the benchmarks in Release (-march=native), runs a subset, and renders the results:
#   docs/bench/results.json         Google Benchmark JSON (g++ build)
#   docs/bench/torch_topk_cpu.jsonl torch.topk(x.abs(), k) on one CPU thread, same buffer size
#   docs/bench/resnet50.md          tables (scripts/bench_table.py): one thread, two threads, and
#                                   every speed target of the benchmark issue as a measured ratio
#   docs/bench/throughput.png       plot: throughput vs size per operator, LW vs EM, 2 threads
#
#   scripts/bench.sh [FILTER] [MIN_TIME]
# FILTER defaults to the subset below; pass '.' for everything (long). MIN_TIME is Google
# Benchmark's --benchmark_min_time (0.1). BENCH_COMPILERS="g++ clang++" also builds with clang++,
# runs the one-thread ResNet-50 entire-model benchmarks, and adds the compiler comparison.
# BENCH_OUT changes the output folder (docs/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
compilers=${BENCH_COMPILERS:-g++}
packages=(cmake ninja-build g++ libbenchmark-dev catch2 python3-matplotlib python3-torch)
[[ " $compilers " == *" clang++ "* ]] && packages+=(clang)
ensure_packages "${packages[@]}" || exit 1

# (Google Benchmark matches the filter against names that end in /real_time)
# default: every spec but the compositions on ResNet-50, entire-model and layer-wise, encode and
# decode with one thread and encode with two; the compositions entire-model encode; the main
# operators on the flat sizes; the baselines
filter=${1:-'^(baseline/(memcpy|sum)/[0-9]+/|baseline/(memcpy_t2|nth_element_topk_1pct|nth_element_topk_10pct|partial_sort_topk_1pct)/25557032/|[a-z0-9_]+(:[a-z0-9_.,=-]+)?/(flat|layer)/[a-z0-9-]+/cpu/resnet50/(encode|decode)|[a-z0-9_]+(:[a-z0-9_.,=-]+)?/(flat|layer)/[a-z0-9-]+/cpu_t2/resnet50/encode|compose\([^/]+/flat/codes/cpu/resnet50/encode|(identity|sign|terngrad|qsgd:15|natural|topk:0\.01)/flat/(f32|signbits|ternary2|levels|nat9|coo-f32)/cpu/flat2\^(16|18|20|22|24)/encode)'}
min_time=${2:-0.1}
out=${BENCH_OUT:-docs/bench}
mkdir -p "$out"
start=$SECONDS

run_bench() { # compiler build-dir filter json
  cmake -S . -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADCOMP_NATIVE=ON \
    -DCMAKE_CXX_COMPILER="$1" -DGRADCOMP_BUILD_TESTS=OFF -DGRADCOMP_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$2" --target bench_compressors
  "./$2/bench/bench_compressors" --benchmark_filter="$3" \
    --benchmark_min_time="$min_time" --benchmark_format=console \
    --benchmark_out="$4" --benchmark_out_format=json
}

run_bench g++ build/bench "$filter" "$out/results.json"
# torch.topk on one CPU thread, the same buffer size (Debian's python3-torch; /usr/bin/python3,
# not a pyenv or venv interpreter that lacks it)
/usr/bin/python3 bench/torch_topk_cpu.py | tee "$out/torch_topk_cpu.jsonl"
tables=("$out/results.json" resnet50 "$out/torch_topk_cpu.jsonl")
for cxx in $compilers; do
  [[ $cxx == g++ ]] && continue
  run_bench "$cxx" "build/bench-$cxx" \
    '^(baseline/memcpy/25557032/|([a-z0-9_]+(:[a-z0-9_.,=-]+)?|compose\([^/]+)/flat/[a-z0-9-]+/cpu/resnet50/encode)' \
    "$out/results-$cxx.json"
  tables+=("$out/results-$cxx.json")
done
/usr/bin/python3 scripts/bench_table.py "${tables[@]}" | tee "$out/resnet50.md"
/usr/bin/python3 scripts/bench_plot.py "$out/results.json" "$out/throughput.png"
echo "bench: wrote $out/results.json, $out/resnet50.md, $out/throughput.png in $((SECONDS - start)) s"
