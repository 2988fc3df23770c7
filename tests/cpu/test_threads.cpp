// SPDX-License-Identifier: Apache-2.0
// The multi-threaded CPU policy (cpu_threads(n)) on typed codecs: one scheme per kernel family
// on entire-model and bucketed spans and fp16/bf16 gradients gives the single-threaded bytes and
// decodes (also under the sanitizers, which do not build the registry), and a hostile message is
// refused with the same error whichever part of the buffer the damage is in. Every registered
// scheme is checked the same way in tests/runtime/test_registry_threads.cpp. Sizes are large
// enough that every pass really splits (parts of >= 2^15 elements).

#include "../support/generators.hpp"
#include "../support/thread_invariance.hpp"

#include <gradcomp/backend/cpu/parallel.hpp>
#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

using namespace gradcomp;

namespace {

template <class Scheme, class T = float>
void check_threads(const Scheme& s, test::distribution d, std::uint64_t seed) {
  CAPTURE(std::string(Scheme::compressor_type::name), std::string(Scheme::granularity_type::name),
          test::to_string(d), seed);
  test::check_thread_invariance<T>([&] { return codec<Scheme>(s, test::threads_layout()); }, d,
                                   seed);
}

} // namespace

TEST_CASE("threads: entire-model and bucketed spans", "[threads]") {
  const std::uint64_t seed = test::seeds(1)[0];
  check_threads(scheme<terngrad, flat_span>{}, test::distribution::mixed_scale, seed);
  check_threads(scheme<topk, flat_span>{{0.01}}, test::distribution::ties, seed);
  check_threads(scheme<adaptive_threshold, flat_span>{}, test::distribution::normal, seed);
  check_threads(scheme<qsgd, bucket_span>{{7, 128}, {250000}}, test::distribution::normal, seed);
  check_threads(scheme<compose<random_k, terngrad>, layer_span>{{{0.02, true}, {}}},
                test::distribution::mostly_zero, seed);
}

TEST_CASE("threads: fp16 and bf16 gradients", "[threads]") {
  const std::uint64_t seed = test::seeds(1)[0];
  check_threads<scheme<terngrad, layer_span>, half>({}, test::distribution::normal, seed);
  check_threads<scheme<qsgd, flat_span>, bfloat16>({{15}}, test::distribution::normal, seed);
  check_threads<scheme<topk, flat_span>, half>({{0.01}}, test::distribution::normal, seed);
  check_threads<scheme<natural, bucket_span>, bfloat16>({{}, {250000}}, test::distribution::tiny,
                                                        seed);
}

TEST_CASE("threads: a bad code in any part is found, the lowest first", "[threads]") {
  const model_layout flat = model_layout::from_sizes({1000000});
  codec c(scheme<qsgd, flat_span>{{2}}, flat);
  const std::vector<float> x = test::make_input(flat.total_size(), test::distribution::normal, 1);
  std::vector<std::byte> msg(c.max_encoded_bytes<float>());
  msg.resize(c.encode(cpu, std::span<const float>(x), std::span<std::byte>(msg), {1, 0}));
  // s = 2 levels use 2 magnitude bits: level 3 is out of range. Damage the magnitude stream near
  // the end (the last thread's part), then also near the start, and re-seal the checksum.
  const std::size_t payload = msg.size() - 1000000 / 8 - 250000; // start of the magnitude stream
  for (const std::size_t byte : {payload + 240000, payload + 10}) {
    msg[byte] = std::byte{0xff};
    detail::seal_message(msg);
    std::vector<float> out(x.size(), 7.0f);
    for (const cpu_policy& exec : {cpu, cpu_threads(2), cpu_threads(4)}) {
      CAPTURE(exec.threads, byte);
      std::string what;
      try {
        c.decode(exec, std::span<const std::byte>(msg), std::span<float>(out));
      } catch (const error& e) {
        REQUIRE(e.code() == errc::corrupt_payload);
        what = e.what();
      }
      REQUIRE_FALSE(what.empty());
      const std::size_t element = (byte - payload) * 4; // four 2-bit codes per byte
      REQUIRE_THAT(what, Catch::Contains("element " + std::to_string(element)));
      REQUIRE(out == std::vector<float>(x.size(), 7.0f));
    }
  }
}

TEST_CASE("parallel_parts: covers every item once and rethrows a part's exception", "[threads]") {
  for (const unsigned threads : {1u, 2u, 5u}) {
    for (const std::size_t count :
         {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{1001}}) {
      std::vector<std::atomic<int>> seen(count);
      std::atomic<std::size_t> parts{0};
      detail::parallel_parts(cpu_threads(threads), count, 100,
                             [&](std::size_t b, std::size_t e, std::size_t) {
                               ++parts;
                               for (std::size_t i = b; i < e; ++i)
                                 ++seen[i];
                             });
      for (std::size_t i = 0; i < count; ++i)
        REQUIRE(seen[i] == 1);
      REQUIRE(parts == detail::part_count(cpu_threads(threads), count, 100));
    }
  }
  // back-to-back jobs with different part counts: a worker that sits one out must run the next
  // one's part exactly once
  for (int round = 0; round < 3000; ++round) {
    const std::size_t count = round % 3 == 0 ? 250 : 500; // 2 or 5 parts
    std::vector<std::atomic<int>> seen(count);
    detail::parallel_parts(cpu_threads(5), count, 100,
                           [&](std::size_t b, std::size_t e, std::size_t) {
                             for (std::size_t i = b; i < e; ++i)
                               ++seen[i];
                           });
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < count; ++i)
      wrong += seen[i] != 1 ? 1 : 0;
    REQUIRE(wrong == 0);
  }
  REQUIRE_THROWS_WITH(detail::parallel_parts(cpu_threads(4), 400, 100,
                                             [](std::size_t b, std::size_t, std::size_t) {
                                               if (b >= 200)
                                                 throw std::runtime_error("part " +
                                                                          std::to_string(b));
                                             }),
                      "part 200");
}
