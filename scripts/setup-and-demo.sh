#!/usr/bin/env bash
# One command from a fresh Debian machine: install what is missing, build gradcomp's examples in
# Release, run the quickstart and the ResNet-50 demo (every operator, layer-wise vs entire-model:
# bits, error, speed), then the paper's question on a real trainer in a few minutes: a libtorch CNN
# on Fashion-MNIST, 4 simulated workers, top-k 1 % and TernGrad, layer-wise vs entire-model,
# 3 seeds (scripts/reproduce.sh demo; `scripts/reproduce.sh short` runs all six methods).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages cmake ninja-build g++
BUILD=${BUILD:-build/demo}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADCOMP_NATIVE=ON \
  -DGRADCOMP_BUILD_TESTS=OFF -DGRADCOMP_BUILD_BENCHMARKS=OFF -DGRADCOMP_BUILD_EXAMPLES=ON \
  -DGRADCOMP_ENABLE_MPI=OFF -DGRADCOMP_ENABLE_TORCH=OFF >/dev/null
cmake --build "$BUILD" --target quickstart demo
"$BUILD/examples/quickstart"
"$BUILD/examples/demo"
echo
echo "== layer-wise vs entire-model on a real trainer (libtorch, Fashion-MNIST)"
BUILD_DIR="$BUILD/torch" ./scripts/reproduce.sh demo "$BUILD/reproduction"
