// SPDX-License-Identifier: Apache-2.0
// The multi-threaded CPU policy (cpu_threads(n)) on every registered scheme
// (runtime::example_specs(), through any_codec): layer-wise on several input distributions,
// entire-model and bucketed, fp32, fp16 and bf16 gradients: messages are byte for byte those of
// the single-threaded policy, and decode and decode_add bit for bit equal. Sizes are large enough
// that every pass really splits (parts of >= 2^15 elements); the 37-element layer stays on the
// calling thread.

#include "../support/generators.hpp"
#include "../support/specs.hpp"
#include "../support/thread_invariance.hpp"

#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/any_codec.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace gradcomp;

namespace {

template <class T = float>
void check_threads(const std::string& spec, test::distribution d, std::uint64_t seed) {
  CAPTURE(spec, test::to_string(d), seed, value_traits<T>::name);
  test::check_thread_invariance<T>([&] { return any_codec(spec, test::threads_layout()); }, d,
                                   seed);
}

} // namespace

TEST_CASE("threads: every registered scheme, layer-wise, gives the single-threaded bytes",
          "[threads][registry]") {
  for (const std::string& spec : runtime::example_specs()) {
    for (const test::distribution d :
         {test::distribution::normal, test::distribution::ties, test::distribution::mostly_zero}) {
      check_threads(test::with_granularity(spec, "layer"), d, test::seeds(1)[0]);
    }
  }
}

TEST_CASE("threads: every registered scheme, entire-model and bucketed, in every value type",
          "[threads][registry]") {
  const std::uint64_t seed = test::seeds(2)[1];
  for (const std::string& spec : runtime::example_specs()) {
    check_threads(spec, test::distribution::mixed_scale, seed);
    check_threads(test::with_granularity(spec, "bucket:250000"), test::distribution::normal, seed);
    check_threads<half>(test::with_granularity(spec, "layer"), test::distribution::normal, seed);
    check_threads<bfloat16>(spec, test::distribution::tiny, seed);
  }
}
