#!/usr/bin/env bash
# PyTorch DDP with gradcomp's comm hook (examples/ddp_train.py, 2 gloo processes) against the C++
# simulator of the same recipe (examples/torch_train, 2 simulated workers): same CNN, data split,
# schedule and scheme, several seeds; writes docs/ddp/results.csv and prints the table of
# docs/PYTHON.md (mean and min-max of the final test accuracy, bytes per step per worker).
#
#   scripts/ddp_vs_simulator.sh [OUT_DIR] [SEEDS] [EPOCHS] [TRAIN_LIMIT]
#
# Needs a build with examples, torch and Python (BUILD_DIR, default build/dev).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/ddp}
seeds=${2:-3}
epochs=${3:-2}
limit=${4:-30000}
build=${BUILD_DIR:-build/dev}
source scripts/deps.sh
ensure_packages cmake ninja-build g++ libtorch-dev zlib1g-dev dataset-fashion-mnist python3-torch \
  pybind11-dev python3-dev
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADCOMP_BUILD_TESTS=OFF \
    -DGRADCOMP_BUILD_BENCHMARKS=OFF -DGRADCOMP_ENABLE_TORCH=ON -DGRADCOMP_ENABLE_PYTHON=ON
fi
cmake --build "$build" --target torch_train gradcomp_python
mkdir -p "$out"
csv="$out/results.csv"
echo "runner,scheme,seed,test_accuracy,bytes_per_step_per_worker,dense_bytes_per_step_per_worker" >"$csv"
common=(--workers 2 --epochs "$epochs" --train-limit "$limit" --batch 128)
for scheme in identity/flat topk:0.01/layer 'compose(topk:0.05,qsgd:15)/layer' terngrad:clip/layer; do
  for seed in $(seq 1 "$seeds"); do
    if [ "$scheme" = identity/flat ]; then
      hook=(--dense)
    else
      hook=(--scheme "$scheme")
    fi
    PYTHONPATH="$build/python" /usr/bin/python3 examples/ddp_train.py "${common[@]}" --seed "$seed" \
      "${hook[@]}" --json "$out/ddp.json" >/dev/null
    /usr/bin/python3 - "$out/ddp.json" "$scheme" "$seed" >>"$csv" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["identical"], "the DDP ranks ended with different parameters"
e = r["epochs"][-1]
print(f'ddp,"{sys.argv[2]}",{sys.argv[3]},{e["test_accuracy"]},{e["bytes_per_step"]},{e["dense_bytes_per_step"]}')
EOF
    rm -f "$out/sim.csv"
    "$build/examples/torch_train" "${common[@]}" --seed "$seed" --scheme "$scheme" \
      $([ "$scheme" = identity/flat ] || echo --feedback) --no-progress --csv "$out/sim.csv" >/dev/null
    tail -n 1 "$out/sim.csv" | awk -F, -v s="$scheme" -v seed="$seed" \
      '{ printf "simulator,\"%s\",%s,%s,%s,%s\n", s, seed, $(NF-3), $(NF-2) / 2, $NF / 2 }' >>"$csv"
    echo "done: $scheme seed $seed" >&2
  done
done
rm -f "$out/ddp.json" "$out/sim.csv"
/usr/bin/python3 - "$csv" <<'EOF'
import csv, sys
from collections import defaultdict
rows = defaultdict(list)
for r in csv.DictReader(open(sys.argv[1])):
    rows[(r["scheme"], r["runner"])].append(r)
print("| scheme | DDP accuracy (mean, min-max) | C++ simulator | DDP bytes/step/rank | simulator bytes/step/worker | of dense |")
print("|---|---|---|---|---|---|")
for scheme in dict.fromkeys(k[0] for k in rows):
    cell = {}
    for runner in ("ddp", "simulator"):
        a = [float(r["test_accuracy"]) for r in rows[(scheme, runner)]]
        cell[runner] = f"{sum(a) / len(a):.3f} ({min(a):.3f}-{max(a):.3f})"
    d = rows[(scheme, "ddp")][0]
    s = rows[(scheme, "simulator")][0]
    b, bs, dense = float(d["bytes_per_step_per_worker"]), float(s["bytes_per_step_per_worker"]), float(s["dense_bytes_per_step_per_worker"])
    print(f"| `{scheme}` | {cell['ddp']} | {cell['simulator']} | {b:.0f} | {bs:.0f} | {bs / dense:.4f} |")
EOF
