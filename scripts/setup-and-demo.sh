#!/usr/bin/env bash
# One command from a fresh Debian machine: install what is missing, build gradcomp's examples in
# Release, run the quickstart and the ResNet-50 demo (every operator, layer-wise vs entire-model).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages cmake ninja-build g++
BUILD=${BUILD:-build/demo}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADCOMP_NATIVE=ON \
  -DGRADCOMP_BUILD_TESTS=OFF -DGRADCOMP_BUILD_BENCHMARKS=OFF -DGRADCOMP_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$BUILD" --target quickstart demo
"$BUILD/examples/quickstart"
"$BUILD/examples/demo"
