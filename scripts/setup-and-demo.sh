#!/usr/bin/env bash
# One command from a fresh Debian machine: install what is missing, build gradcomp's examples in
# Release, run the quickstart and the ResNet-50 demo (every registered scheme, layer-wise vs
# entire-model: bits, error, speed), install the Python package (pip install . into build/venv)
# and run a 2-process PyTorch DDP job with its comm hook, then the paper's question on a real
# trainer in a few minutes: a libtorch CNN on Fashion-MNIST, 4 simulated workers, top-k 1 % and
# TernGrad, layer-wise vs entire-model, 3 seeds (scripts/reproduce.sh demo; `scripts/reproduce.sh
# short` runs all six methods).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages cmake ninja-build g++ ccache python3-torch pybind11-dev python3-dev python3-venv \
  python3-setuptools python3-wheel python3-pip dataset-fashion-mnist
BUILD=${BUILD:-build/demo}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADCOMP_NATIVE=ON \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DGRADCOMP_BUILD_TESTS=OFF \
  -DGRADCOMP_BUILD_BENCHMARKS=OFF -DGRADCOMP_BUILD_EXAMPLES=ON -DGRADCOMP_ENABLE_MPI=OFF \
  -DGRADCOMP_ENABLE_TORCH=OFF -DGRADCOMP_ENABLE_PYTHON=ON -DPYTHON_EXECUTABLE=/usr/bin/python3 \
  >/dev/null
cmake --build "$BUILD" --target quickstart demo gradcomp_python
"$BUILD/examples/quickstart"
"$BUILD/examples/demo"
echo
echo "== the Python package: pip install . into build/venv (over Debian's torch), a DDP run"
[ -x build/venv/bin/python ] || /usr/bin/python3 -m venv --system-site-packages build/venv
GRADCOMP_BUILD_DIR="$BUILD" build/venv/bin/python -m pip install -q --no-build-isolation .
(cd build && venv/bin/python -c "import gradcomp; print(gradcomp.Codec('topk:0.01/layer', [1000, 10]))")
build/venv/bin/python examples/ddp_train.py --scheme topk:0.01/layer --workers 2 --epochs 1 \
  --train-limit 16384
echo
echo "== layer-wise vs entire-model on a real trainer (libtorch, Fashion-MNIST)"
BUILD_DIR="$BUILD/torch" ./scripts/reproduce.sh demo "$BUILD/reproduction"
