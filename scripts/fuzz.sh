#!/usr/bin/env bash
# Builds the libFuzzer targets (clang++, ASan + UBSan), writes the seed corpora, replays them, and
# fuzzes every target for SECONDS (default 30; nightly: 600 or more). Corpora grow under
# $FUZZ_DIR/corpus/<target> (default build/fuzz); a crash stops the run with its input saved there.
# Prints one line per target (executions, corpus size, result) and "fuzz summary: N passed, M failed".
#   usage: [FUZZ_OPT=-O0] scripts/fuzz.sh [SECONDS]
# FUZZ_OPT is the build's optimization level (default -O1; scripts/test.sh's 10-second runs use
# -O0, a build three times faster).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages cmake ninja-build clang libclang-rt-14-dev ccache || exit 1
use_ccache
SECONDS_PER_TARGET=${1:-30}
DIR=${FUZZ_DIR:-build/fuzz}
mkdir -p "$DIR"
if ! cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DGRADCOMP_BUILD_FUZZERS=ON -DGRADCOMP_BUILD_TESTS=OFF -DGRADCOMP_BUILD_BENCHMARKS=OFF \
  -DGRADCOMP_BUILD_EXAMPLES=OFF -DGRADCOMP_ENABLE_PYTHON=OFF -DGRADCOMP_WERROR=ON \
  -DGRADCOMP_FUZZ_OPT="${FUZZ_OPT:--O1}" \
  >"$DIR.configure.log" 2>&1 ||
  ! cmake --build "$DIR" >"$DIR.build.log" 2>&1; then
  tail -n 40 "$DIR.configure.log" "$DIR.build.log"
  echo "fuzz summary: 0 passed, 1 failed"
  exit 1
fi
"$DIR/tests/fuzz/fuzz_seeds" "$DIR/seeds" || exit 1
passed=0
failed=0
for t in decode header roundtrip lowrank; do
  corpus="$DIR/corpus/$t"
  mkdir -p "$corpus" "$DIR/crashes"
  log="$DIR/$t.log"
  # replay the grown corpus, the seeds and the checked-in reproducers of fixed crashes, then fuzz
  regressions=()
  [ -d "tests/fuzz/regressions/$t" ] && regressions=("tests/fuzz/regressions/$t")
  if "$DIR/tests/fuzz/fuzz_$t" "$corpus" "$DIR/seeds/$t" "${regressions[@]+"${regressions[@]}"}" \
    -max_total_time="$SECONDS_PER_TARGET" \
    -artifact_prefix="$DIR/crashes/$t-" -print_final_stats=1 >"$log" 2>&1; then
    passed=$((passed + 1))
    result=ok
  else
    failed=$((failed + 1))
    result="FAILED (see $log)"
    grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -n 5
  fi
  execs=$(grep -E "stat::number_of_executed_units" "$log" | awk '{print $2}')
  files=$(find "$corpus" -type f | wc -l)
  printf "fuzz_%-17s %8s execs in %ss, corpus %5s inputs: %s\n" "$t" "${execs:-?}" \
    "$SECONDS_PER_TARGET" "$files" "$result"
done
echo "fuzz summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
