#!/usr/bin/env bash
# The paper's experiment on a real trainer: layer-wise vs entire-model compression for Random-k,
# Top-k, Threshold-v, TernGrad, Adaptive Threshold and QSGD, several seeds each, on a small CNN
# and Fashion-MNIST (examples/torch_train.cpp, libtorch), then one figure per method and a
# summary table (scripts/reproduce_plot.py) and the no-training compression-error proxy.
#
#   scripts/reproduce.sh [short|full|demo] [OUT_DIR]
#
#   demo   top-k 1 % and TernGrad, layer-wise vs entire-model, 3 seeds, 2 epochs on 12,000 images
#          (the README's first command runs this; a few minutes)
#   short  the six methods, 3 seeds, 6 epochs on 30,000 images, vanilla SGD (about 10 minutes on
#          2 cores)
#   full   the six methods at the paper's ratios (top-k and random-k at 0.1, 1 and 10 %), top-k
#          1 % with Nesterov momentum as in the paper's Fig. 7c, 3 seeds, 12 epochs on all 60,000
#          images (several hours on 2 cores; docs/REPRODUCTION.md gives the measured time)
#
# Writes OUT_DIR (default build/reproduction/PRESET; docs/reproduction holds the committed
# `short` run): results.csv, one PNG per method, summary.md, proxy.md. Runs two trainings at a
# time (one thread each; JOBS=N to change).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages cmake ninja-build g++ libtorch-dev zlib1g-dev dataset-fashion-mnist \
  python3-matplotlib || exit 1

preset=${1:-short}
out=${2:-build/reproduction/$preset}
build=${BUILD_DIR:-build/reproduce}
jobs=${JOBS:-2}
case "$preset" in
  demo) epochs=2 limit=12000 seeds="1 2 3" ;;
  short) epochs=6 limit=30000 seeds="1 2 3" ;;
  full) epochs=12 limit=0 seeds="1 2 3" ;;
  *) echo "usage: $0 [short|full|demo] [OUT_DIR]"; exit 2 ;;
esac

echo "== building the trainer ($build)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADCOMP_BUILD_TESTS=OFF \
  -DGRADCOMP_BUILD_BENCHMARKS=OFF -DGRADCOMP_BUILD_EXAMPLES=ON -DGRADCOMP_ENABLE_TORCH=ON \
  -DGRADCOMP_ENABLE_MPI=OFF >/dev/null
cmake --build "$build" --target torch_train
train="$build/examples/torch_train"

# vanilla SGD (momentum 0), as the paper's code; learning rate 0 -> 0.4 -> 0
common="--workers 4 --batch 128 --lr 0.4 --warmup 0.5 --momentum 0 --no-nesterov --epochs $epochs --no-progress"
[ "$limit" != 0 ] && common="$common --train-limit $limit"
methods=()
case "$preset" in
  demo) methods=("topk --ratio 0.01" "terngrad") ;;
  short) methods=("randomk --ratio 0.01" "topk --ratio 0.01" "threshold --threshold 0.01"
                  "terngrad" "adaptive" "qsgd --levels 255") ;;
  full) methods=("randomk --ratio 0.001" "randomk --ratio 0.01" "randomk --ratio 0.1"
                 "topk --ratio 0.001" "topk --ratio 0.01" "topk --ratio 0.1"
                 "topk --ratio 0.01 --momentum 0.9 --nesterov"
                 "threshold --threshold 0.001" "threshold --threshold 0.01"
                 "threshold --threshold 0.05" "terngrad" "adaptive" "qsgd --levels 255"
                 "qsgd --levels 15") ;;
esac

mkdir -p "$out"
csv="$out/results.csv"
rm -f "$csv"
t0=$(date +%s)
runs=()
for m in "${methods[@]}"; do
  for g in layer flat; do
    for s in $seeds; do
      runs+=("--method $m --granularity $g --seed $s")
    done
  done
done
echo "== ${#runs[@]} runs, $jobs at a time, $epochs epochs each"
# each run writes its own CSV (concurrent appends would interleave), merged afterwards
tmp=$(mktemp -d)
run_one() { # N ARGS...: one training run into $tmp/runN.{csv,log}
  local n=$1
  shift
  # shellcheck disable=SC2086
  if "$train" $common "$@" --csv "$tmp/run$n.csv" >"$tmp/run$n.log" 2>&1; then
    echo "run $n: $*: $(grep -E '^epoch' "$tmp/run$n.log" | tail -n 1)"
  else
    echo "run $n FAILED: $*"
    tail -n 5 "$tmp/run$n.log"
  fi
}
export -f run_one
export train common tmp
i=0
for r in "${runs[@]}"; do
  i=$((i + 1))
  echo "$i $r"
done | xargs -P "$jobs" -L 1 bash -c 'run_one "$@"' _
head -n 1 "$(ls "$tmp"/run*.csv | head -n 1)" > "$csv"
for f in "$tmp"/run*.csv; do tail -n +2 "$f" >> "$csv"; done
rm -rf "$tmp"
echo "== training took $(( $(date +%s) - t0 )) s"

echo "== compression-error proxy on a gradient of the trained-for-one-epoch model"
"$train" --method identity --workers 4 --epochs 1 --train-limit 12000 --no-progress --proxy 20 \
  | sed -n '/relative compression error/,$p' > "$out/proxy.md"
cat "$out/proxy.md"

echo "== figures and summary ($out)"
/usr/bin/python3 scripts/reproduce_plot.py "$csv" "$out"
echo "reproduce ($preset): done in $(( $(date +%s) - t0 )) s; see $out/summary.md and $out/*.png"
