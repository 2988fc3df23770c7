#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script):
#   1. g++ Release, warnings as errors: unit tests, header test, compile-fail pairs, package test,
#      examples; MPI tests under mpiexec (2-4 ranks), fault jobs, the MPI trainer against its
#      in-process simulation; the libtorch trainer for a few steps and its compression proxy; the
#      benchmark binary builds and a short benchmark smoke run passes; the Python package
#      (pytest: bytes against the C++ library, errors, a 2-process DDP run on gloo);
#   2. clang++ Release, warnings as errors: the same typed tests (not the numeric suites:
#      statistics, convex runs, Lemma 1, nor the thread-count suite, which g++ and ASan run),
#      MPI tests (not the examples, which the g++ stage builds and runs), the package test with
#      -O2 and the direct -ffp-contract=fast build; without the registry library and what links
#      it (registry suites, trainers, Python): the g++ stage runs those, and stage 5 compiles the
#      registry with clang++, warnings as errors;
#   3. g++ with AddressSanitizer + UndefinedBehaviorSanitizer (-fno-sanitize-recover=all), one seed,
#      the suites that drive encode/decode with hostile inputs (not the numeric ones or the
#      per-element math, nor the examples, nor the registry library, which the two builds above
#      test; without MPI, libtorch and Python: their allocations would trip LeakSanitizer);
#   4. the CUDA build (nvcc, sm_90 + PTX): every kernel compiles, a consumer of the installed
#      `cuda` package component builds; its tests run where a GPU is present and skip where not;
#   5. libFuzzer targets (clang, ASan + UBSan, built at -O0 here): corpora replayed and 10 s of
#      fuzzing each (scripts/fuzz.sh; run it with more seconds for a nightly campaign);
#   6. clang-format check of every source file.
# Compiles go through ccache (scripts/deps.sh: use_ccache), so a rerun rebuilds what changed only.
# Optimization levels are chosen for build time on CI's 2 cores: the g++ and clang++ stages build
# at -O2 (g++'s -O3 doubles the time of the template-heavy tests; the package test builds its
# consumers at -O3 -march=native), the sanitizer stage at -O0 (ASan's most faithful level), and
# the CUDA stage compiles host code at -O0 where no GPU can run its tests (device code is
# optimized whatever the host level).
# Ends with one summary line "summary: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages cmake ninja-build g++ clang clang-format catch2 libbenchmark-dev libclang-rt-14-dev \
  libopenmpi-dev openmpi-bin zlib1g-dev dataset-fashion-mnist libtorch-dev python3-torch \
  pybind11-dev python3-dev python3-pytest ccache || exit 1
use_ccache

ROOT=${BUILD_ROOT:-build/test}
passed=0
failed=0
failures=()
t_start=$(date +%s)

# run_ctest NAME BUILD_DIR: runs ctest on every core (MPI tests declare their rank counts as
# PROCESSORS, so ctest never oversubscribes beyond them), adds its counts to the totals
run_ctest() {
  local name=$1 dir=$2 log
  log=$(cd "$dir" && ctest -j "$(nproc)" --output-on-failure 2>&1)
  local rc=$?
  echo "$log" | tail -n 30
  local line p f
  line=$(echo "$log" | grep -E "tests passed, [0-9]+ tests failed out of" | tail -n 1)
  if [ -n "$line" ]; then
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
    p=$(( $(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/') - f ))
  else
    p=0
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  [ $rc -ne 0 ] && failures+=("$name")
}
# build NAME DIR CMAKE_ARGS...: configure + build; a failure counts as one failed test
build() {
  local name=$1 dir=$2
  shift 2
  echo "== [$name] configure + build ($dir)"
  if ! cmake -S . -B "$dir" -G Ninja "$@" >"$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"
    failed=$((failed + 1))
    failures+=("$name: configure")
    return 1
  fi
  local t0
  t0=$(date +%s)
  if ! cmake --build "$dir" >"$dir.build.log" 2>&1; then
    grep -E "error|FAILED" -A5 "$dir.build.log" | head -n 80
    failed=$((failed + 1))
    failures+=("$name: build")
    return 1
  fi
  echo "   built in $(( $(date +%s) - t0 )) s"
  return 0
}
mkdir -p "$ROOT"

echo "== gradcomp test suite: $(nproc) cores"
release_flags=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG")
if build gcc-release "$ROOT/gcc-release" "${release_flags[@]}" -DCMAKE_CXX_COMPILER=g++ \
  -DGRADCOMP_WERROR=ON -DGRADCOMP_BUILD_BENCHMARKS=ON -DGRADCOMP_BUILD_EXAMPLES=ON \
  -DGRADCOMP_ENABLE_MPI=ON -DGRADCOMP_ENABLE_TORCH=ON -DGRADCOMP_ENABLE_PYTHON=ON; then
  run_ctest gcc-release "$ROOT/gcc-release"
  echo "== [gcc-release] benchmark smoke run"
  if "$ROOT/gcc-release/bench/bench_compressors" \
    --benchmark_filter='^(sign|topk:0\.01)/flat/(signbits|coo-f32)/cpu/flat2\^24/encode' \
    --benchmark_min_time=0.01 >"$ROOT/bench-smoke.log" 2>&1 &&
    grep -q "vs_memcpy" "$ROOT/bench-smoke.log"; then
    passed=$((passed + 1))
    tail -n 3 "$ROOT/bench-smoke.log"
  else
    failed=$((failed + 1))
    failures+=("benchmark smoke run")
    cat "$ROOT/bench-smoke.log"
  fi
fi

if build clang-release "$ROOT/clang-release" "${release_flags[@]}" -DCMAKE_CXX_COMPILER=clang++ \
  -DGRADCOMP_WERROR=ON -DGRADCOMP_BUILD_BENCHMARKS=OFF -DGRADCOMP_BUILD_EXAMPLES=OFF \
  -DGRADCOMP_ENABLE_MPI=ON -DGRADCOMP_ENABLE_TORCH=OFF -DGRADCOMP_ENABLE_PYTHON=OFF \
  -DGRADCOMP_PACKAGE_FLAG_MATRIX=OFF -DGRADCOMP_BUILD_RUNTIME=OFF \
  "-DGRADCOMP_SKIP_TESTS=test_statistics;test_convex;test_layerwise_theory;test_threads"; then
  run_ctest clang-release "$ROOT/clang-release"
fi

# -O0 -g1 (line tables): the fastest build, and nothing optimized away from ASan's view; the
# header test already ran in the two stages above.
if build sanitize "$ROOT/sanitize" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1" -DGRADCOMP_HEADER_TEST=OFF \
  -DGRADCOMP_SANITIZE=ON -DGRADCOMP_BUILD_BENCHMARKS=OFF -DGRADCOMP_BUILD_EXAMPLES=OFF \
  -DGRADCOMP_ENABLE_MPI=OFF -DGRADCOMP_ENABLE_TORCH=OFF -DGRADCOMP_ENABLE_PYTHON=OFF \
  -DGRADCOMP_BUILD_RUNTIME=OFF; then
  GRADCOMP_SEED_COUNT_OVERRIDE=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_ctest sanitize "$ROOT/sanitize"
fi

echo "== [cuda] CUDA build for sm_90 + PTX (every kernel instantiated); its tests skip without a GPU"
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
if [ -x "$nvcc_bin" ]; then
  t0=$(date +%s)
  cuda_host_flags=()
  if ! nvidia-smi -L >/dev/null 2>&1; then # compile only: host code at -O0 (device code unchanged)
    cuda_host_flags=("-DCMAKE_CUDA_FLAGS_RELEASE=-O0 -DNDEBUG")
  fi
  if cmake -S . -B "$ROOT/cuda" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADCOMP_ENABLE_CUDA=ON \
    "${cuda_host_flags[@]+"${cuda_host_flags[@]}"}" \
    -DCMAKE_CUDA_COMPILER="$nvcc_bin" -DGRADCOMP_BUILD_BENCHMARKS=OFF -DGRADCOMP_BUILD_EXAMPLES=OFF \
    -DGRADCOMP_BUILD_RUNTIME=OFF >"$ROOT/cuda.configure.log" 2>&1 &&
    cmake --build "$ROOT/cuda" --target gradcomp_cuda_checks >"$ROOT/cuda.build.log" 2>&1; then
    echo "   built in $(( $(date +%s) - t0 )) s"
    log=$(cd "$ROOT/cuda" && ctest -L cuda --output-on-failure 2>&1)
    echo "$log" | tail -n 8
    if echo "$log" | grep -qE " 0 tests failed out of"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      failures+=("cuda tests")
    fi
  else
    grep -E "error|FAILED" -A5 "$ROOT/cuda.configure.log" "$ROOT/cuda.build.log" | head -n 60
    failed=$((failed + 1))
    failures+=("cuda build")
  fi
elif [ "${GRADCOMP_REQUIRE_CUDA:-0}" = 1 ]; then
  echo "   nvcc not found, and GRADCOMP_REQUIRE_CUDA=1"
  failed=$((failed + 1))
  failures+=("cuda build: no nvcc")
else
  echo "   skipped: nvcc not found (install the CUDA Toolkit; CI sets GRADCOMP_REQUIRE_CUDA=1)"
fi

echo "== [fuzz] libFuzzer targets: corpora and reproducers replayed, 10 s of fuzzing each"
if FUZZ_DIR="$ROOT/fuzz" FUZZ_OPT=-O0 scripts/fuzz.sh 10 >"$ROOT/fuzz.log" 2>&1; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  failures+=("fuzz")
fi
grep -E "^fuzz_|fuzz summary|ERROR|SUMMARY" "$ROOT/fuzz.log" | head -n 20

echo "== [format] clang-format --dry-run --Werror"
if find include src python tests bench examples \( -name '*.hpp' -o -name '*.cpp' -o -name '*.cuh' -o -name '*.cu' \) \
  -print0 | xargs -0 clang-format --dry-run --Werror; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  failures+=("clang-format")
fi

echo
echo "== gradcomp tests finished in $(( $(date +%s) - t_start )) s"
for f in "${failures[@]+"${failures[@]}"}"; do echo "   failed: $f"; done
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
