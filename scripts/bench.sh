#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the benchmarks in Release (-march=native), runs a subset, and renders the results:
#   docs/bench/results.json   Google Benchmark JSON
#   docs/bench/resnet50.md    markdown table (scripts/bench_table.py)
#   docs/bench/throughput.png plot: throughput vs size per operator, layer-wise vs entire-model
#
#   scripts/bench.sh [FILTER] [MIN_TIME]
# FILTER defaults to a subset that finishes in a few minutes on 2 cores (ResNet-50 entire-model
# and layer-wise for every operator, the flat sizes for the main operators, the baselines);
# pass '.' for everything (long). MIN_TIME is Google Benchmark's --benchmark_min_time (0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages cmake ninja-build g++ libbenchmark-dev catch2 python3-matplotlib || exit 1

filter=${1:-'^(baseline/(memcpy|sum|nth_element_topk_1pct|partial_sort_topk_1pct)/(25557032|[0-9]+)$|[a-z0-9_.]+/(flat|layer)/[a-z0-9_]+/cpu/resnet50/(encode|decode)|(identity|sign|terngrad|qsgd_s15|natural|topk_1.0pct)/flat/[a-z0-9_]+/cpu/flat2\^(16|18|20|22|24)/encode)'}
min_time=${2:-0.1}
out=docs/bench
mkdir -p "$out"
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADCOMP_NATIVE=ON \
  -DGRADCOMP_BUILD_TESTS=OFF -DGRADCOMP_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build/bench --target bench_compressors
./build/bench/bench/bench_compressors --benchmark_filter="$filter" \
  --benchmark_min_time="$min_time" --benchmark_format=console \
  --benchmark_out="$out/results.json" --benchmark_out_format=json
python3 scripts/bench_table.py "$out/results.json" resnet50 | tee "$out/resnet50.md"
/usr/bin/python3 scripts/bench_plot.py "$out/results.json" "$out/throughput.png"
echo "bench: wrote $out/results.json, $out/resnet50.md, $out/throughput.png"
