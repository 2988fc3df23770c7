#!/usr/bin/env bash
# The paper's experiment on a real trainer: layer-wise vs entire-model compression for Random-k,
# Top-k, Threshold-v, TernGrad, Adaptive Threshold and QSGD, several seeds each, on a small CNN
# and Fashion-MNIST (examples/torch_train.cpp, libtorch), then one figure per method and a
# summary table (scripts/reproduce_plot.py) and the no-training compression-error proxy.
#
#   scripts/reproduce.sh [short|full|resnet|powersgd|demo] [OUT_DIR]
#
#   demo   top-k 1 % and TernGrad, layer-wise vs entire-model, 3 seeds, 2 epochs on 12,000 images
#          (the README's first command runs this; a few minutes)
#   short  the six methods, 3 seeds, 6 epochs on 30,000 images, vanilla SGD (about 10 minutes on
#          2 cores)
#   full   every operator of the paper at its ratios and levels (top-k and random-k at 0.1, 1 and
#          10 %, threshold-v, adaptive threshold, TernGrad, QSGD s = 15 and 255) and, beyond the
#          paper, sign, scaled sign, natural compression and stochastic rounding to bf16; each with
#          vanilla SGD and with Nesterov momentum 0.9; the biased ones at 1 % also with error
#          feedback (vanilla SGD); 3 seeds, 6 epochs on 30,000 images: 216 runs (about 50 minutes on
#          2 cores). Every run also writes the compression probe (theory.csv: per-layer and
#          whole-model second moments and errors of the layer-wise and entire-model operators on
#          worker 0's gradient, at the first step and at the end of every epoch).
#   resnet the rows whose direction the paper finds to depend on the model (top-k 0.1 % and 1 %,
#          vanilla SGD and Nesterov momentum) on the small ResNet (torch_train --model resnet, 29
#          tensors), 3 seeds, 3 epochs on 8,000 images, with the compression probe: 24 runs.
#   powersgd PowerSGD (Vogels et al. 2019) at ranks 1, 2 and 4 with error feedback, layer-wise vs
#          entire-model (lowrank/matrix_plan.hpp), next to no compression and top-k 5 % with error
#          feedback (about rank 2's bytes layer-wise), 3 seeds, 6 epochs on 30,000 images: 30 runs.
#          EPOCHS=N and LIMIT=N (0: all 60,000 images) change the length of every preset.
#
# Writes OUT_DIR (default build/reproduction/PRESET; docs/reproduction holds the committed
# `short` run, docs/reproduction/full and docs/reproduction/resnet the others): results.csv, one
# PNG per method, summary.md, proxy.md (on the model of the preset), and for `full` and `resnet`
# theory.csv, theory.md and theory.png. Runs two trainings at a time (one thread each; JOBS=N).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages cmake ninja-build g++ libtorch-dev zlib1g-dev dataset-fashion-mnist \
  python3-matplotlib || exit 1

preset=${1:-short}
out=${2:-build/reproduction/$preset}
build=${BUILD_DIR:-build/reproduce}
jobs=${JOBS:-2}
model=cnn
case "$preset" in
  demo) epochs=2 limit=12000 seeds="1 2 3" ;;
  short) epochs=6 limit=30000 seeds="1 2 3" ;;
  full) epochs=6 limit=30000 seeds="1 2 3" ;;
  resnet) epochs=3 limit=8000 seeds="1 2 3" model=resnet ;;
  powersgd) epochs=6 limit=30000 seeds="1 2 3" ;;
  *) echo "usage: $0 [short|full|resnet|powersgd|demo] [OUT_DIR]"; exit 2 ;;
esac
epochs=${EPOCHS:-$epochs}
limit=${LIMIT:-$limit}

echo "== building the trainer ($build)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADCOMP_BUILD_TESTS=OFF \
  -DGRADCOMP_BUILD_BENCHMARKS=OFF -DGRADCOMP_BUILD_EXAMPLES=ON -DGRADCOMP_ENABLE_TORCH=ON \
  -DGRADCOMP_ENABLE_MPI=OFF >/dev/null
cmake --build "$build" --target torch_train
train="$build/examples/torch_train"

# vanilla SGD (momentum 0) as in the paper's code, learning rate 0 -> 0.4 -> 0; Nesterov momentum
# 0.9 at a tenth of it (the same effective step); sign's step is +-lr per element: its own rate
common="--model $model --workers 4 --batch 128 --warmup 0.5 --epochs $epochs --no-progress"
[ "$limit" != 0 ] && common="$common --train-limit $limit"
vanilla="--momentum 0 --no-nesterov"
nesterov="--momentum 0.9 --nesterov"
methods=() # "ARGS|LR"
case "$preset" in
  demo) methods=("topk --ratio 0.01|0.4" "terngrad|0.4") ;;
  short) methods=("randomk --ratio 0.01|0.4" "topk --ratio 0.01|0.4" "threshold --threshold 0.01|0.4"
                  "terngrad|0.4" "adaptive|0.4" "qsgd --levels 255|0.4") ;;
  full) methods=("randomk --ratio 0.001|0.4" "randomk --ratio 0.01|0.4" "randomk --ratio 0.1|0.4"
                 "topk --ratio 0.001|0.4" "topk --ratio 0.01|0.4" "topk --ratio 0.1|0.4"
                 "threshold --threshold 0.01|0.4" "adaptive|0.4" "terngrad|0.4"
                 "qsgd --levels 15|0.4" "qsgd --levels 255|0.4" "sign|0.01" "scaled_sign|0.4"
                 "natural|0.4" "sr_bf16|0.4") ;;
  resnet) methods=("topk --ratio 0.001|0.4" "topk --ratio 0.01|0.4") ;;
  powersgd) methods=("powersgd --rank 1 --feedback|0.4" "powersgd --rank 2 --feedback|0.4"
                     "powersgd --rank 4 --feedback|0.4" "topk --ratio 0.05 --feedback|0.4"
                     "identity|0.4") ;;
esac
optimizers=("$vanilla")
[[ $preset == full || $preset == resnet ]] && optimizers+=("$nesterov")
# the biased operators with error feedback (full; vanilla SGD)
feedback=()
[ "$preset" = full ] && feedback=("randomk --ratio 0.01|0.4" "topk --ratio 0.01|0.4"
  "threshold --threshold 0.01|0.4" "adaptive|0.4" "sign|0.01" "scaled_sign|0.4")

mkdir -p "$out"
csv="$out/results.csv"
rm -f "$csv"
t0=$(date +%s)
runs=()
# seeds outermost: a sweep stopped early still has every setting at the seeds it reached
add_run() { # METHOD_ARGS LR OPTIMIZER EXTRA SEED
  local lr=$2
  [[ $3 == "$nesterov" ]] && lr=$(awk -v x="$2" 'BEGIN { print x / 10 }')
  for g in layer flat; do
    runs+=("--method $1 --lr $lr $3 $4 --granularity $g --seed $5")
  done
}
for s in $seeds; do
  for m in "${methods[@]}"; do
    for o in "${optimizers[@]}"; do
      add_run "${m%|*}" "${m#*|}" "$o" "" "$s"
    done
  done
  for m in "${feedback[@]+"${feedback[@]}"}"; do
    add_run "${m%|*}" "${m#*|}" "$vanilla" --feedback "$s"
  done
done
theory=""
[[ $preset == full || $preset == resnet ]] && theory=1
echo "== ${#runs[@]} runs, $jobs at a time, $epochs epochs each"
# each run writes its own CSV (concurrent appends would interleave), merged afterwards
tmp=$(mktemp -d)
run_one() { # N ARGS...: one training run into $tmp/runN.{csv,log}
  local n=$1
  shift
  # shellcheck disable=SC2086
  local probe=()
  [ -n "$theory" ] && probe=(--theory "$tmp/theory$n.csv")
  if "$train" $common "$@" --csv "$tmp/run$n.csv" "${probe[@]+"${probe[@]}"}" >"$tmp/run$n.log" 2>&1; then
    echo "run $n: $*: $(grep -E '^epoch' "$tmp/run$n.log" | tail -n 1)"
  else
    echo "run $n FAILED: $*"
    tail -n 5 "$tmp/run$n.log"
  fi
}
export -f run_one
export train common tmp theory
i=0
for r in "${runs[@]}"; do
  i=$((i + 1))
  echo "$i $r"
done | xargs -P "$jobs" -L 1 bash -c 'run_one "$@"' _
head -n 1 "$(ls "$tmp"/run*.csv | head -n 1)" > "$csv"
for f in "$tmp"/run*.csv; do tail -n +2 "$f" >> "$csv"; done
if [ -n "$theory" ]; then
  head -n 1 "$(ls "$tmp"/theory*.csv | head -n 1)" > "$out/theory.csv"
  for f in "$tmp"/theory*.csv; do tail -n +2 "$f" >> "$out/theory.csv"; done
fi
rm -rf "$tmp"
echo "== training took $(( $(date +%s) - t0 )) s"

echo "== compression-error proxy on a gradient of the trained-for-one-epoch model"
"$train" --model "$model" --method identity --workers 4 --epochs 1 --train-limit 12000 \
  --no-progress --proxy 20 \
  | sed -n '/relative compression error/,$p' > "$out/proxy.md"
cat "$out/proxy.md"

echo "== figures and summary ($out)"
/usr/bin/python3 scripts/reproduce_plot.py "$csv" "$out"
if [ -n "$theory" ]; then
  /usr/bin/python3 scripts/reproduce_theory.py "$out/theory.csv" "$csv" "$out"
fi
echo "reproduce ($preset): done in $(( $(date +%s) - t0 )) s; see $out/summary.md and $out/*.png"
