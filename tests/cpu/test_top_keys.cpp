// SPDX-License-Identifier: Apache-2.0
// The CPU top-keys selection (backend/cpu/select_top_keys.hpp, compress_where.hpp) against plain
// references: the key filter (its vector path where the build has one: CMake builds this file a
// second time with -mavx512f, as test_top_keys_avx512), the radix k-th largest key, the whole
// selection at several sizes, thread counts and tie patterns, the threshold filter, and the
// encode's finiteness check that top-k and threshold-v take from their filter pass.

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace gradcomp;

#if defined(__AVX512F__) && (defined(__GNUC__) || defined(__clang__))
// This build's code needs AVX-512: skip (exit 77) on a CPU without it, before any static
// initializer of this file runs an AVX-512 instruction.
__attribute__((constructor(101), target("arch=x86-64"))) static void require_avx512f() {
  __builtin_cpu_init(); // constructors run before libgcc's own CPU detection
  if (!__builtin_cpu_supports("avx512f")) {
    std::_Exit(77);
  }
}
#endif

namespace {

/// Keys drawn from one of four shapes: full 32- or 64-bit range, a few distinct values (ties),
/// all equal, or float magnitudes' bits of a normal sample.
template <class K>
std::vector<K> draw_keys(std::mt19937_64& rng, std::size_t n, int shape) {
  std::vector<K> keys(n);
  std::normal_distribution<float> nd(0.0f, 1e-3f);
  for (auto& k : keys) {
    switch (shape) {
    case 0:
      k = static_cast<K>(rng());
      break;
    case 1:
      k = static_cast<K>(rng() % 5);
      break;
    case 2:
      k = K{7};
      break;
    default:
      k = static_cast<K>(detail::abs_bits(nd(rng)));
      break;
    }
  }
  return keys;
}

/// The reference: indices of the k largest keys, ties to the lower index, ascending.
template <class K>
std::vector<std::size_t> reference_top(const std::vector<K>& keys, std::size_t k) {
  std::vector<std::size_t> order(keys.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return keys[a] > keys[b]; });
  order.resize(std::min(k, order.size()));
  std::sort(order.begin(), order.end());
  return order;
}

template <class K>
struct key_table {
  const K* keys;
  K operator()(std::size_t i) const noexcept { return keys[i]; }
};

} // namespace

TEMPLATE_TEST_CASE("the key filter keeps keys at or above the threshold, in order", "[top_keys]",
                   std::uint32_t, std::uint64_t) {
  std::mt19937_64 rng(11);
  for (std::size_t len : {0, 1, 15, 16, 17, 31, 64, 100, 1023, 1024}) {
    for (int shape = 0; shape < 4; ++shape) {
      const std::vector<TestType> keys = draw_keys<TestType>(rng, len + 40, shape);
      const std::size_t base = 40 - len % 40; // not at a vector boundary
      for (int trial = 0; trial < 4; ++trial) {
        const TestType t = trial == 0   ? TestType{0}
                           : trial == 1 ? std::numeric_limits<TestType>::max()
                                        : keys[static_cast<std::size_t>(rng() % keys.size())];
        std::vector<TestType> out_keys(len); // exactly len: the vector path stays inside
        std::vector<std::uint32_t> out_pos(len);
        TestType top = 3; // raised, never lowered
        const std::size_t hits = detail::keys_at_least(key_table<TestType>{keys.data()}, base, len,
                                                       t, out_keys.data(), out_pos.data(), top);
        CAPTURE(len, shape, trial);
        std::size_t expect = 0;
        TestType expect_top = 3;
        for (std::size_t j = 0; j < len; ++j) {
          const TestType v = keys[base + j];
          expect_top = std::max(expect_top, v);
          if (v >= t) {
            REQUIRE(expect < hits);
            REQUIRE(out_pos[expect] == j);
            REQUIRE(out_keys[expect] == v);
            ++expect;
          }
        }
        REQUIRE(hits == expect);
        REQUIRE(top == expect_top);
      }
    }
  }
}

TEST_CASE("the radix k-th largest key equals nth_element's", "[top_keys]") {
  std::mt19937_64 rng(12);
  std::vector<std::uint64_t> scratch;
  for (std::size_t size : {1, 2, 3, 17, 2048, 5000, 70000}) {
    for (int shape = 0; shape < 5; ++shape) {
      std::vector<std::uint64_t> keys = shape == 4 ? std::vector<std::uint64_t>(size)
                                                   : draw_keys<std::uint64_t>(rng, size, shape);
      if (shape == 4) { // the two extremes of the key range, and values between
        for (auto& k : keys) {
          const std::uint64_t r = rng() % 3;
          k = r == 0 ? 0 : (r == 1 ? ~std::uint64_t{0} : rng());
        }
      }
      for (std::size_t k : {std::size_t{1}, size / 2 + 1, size, 1 + rng() % size}) {
        std::vector<std::uint64_t> sorted = keys;
        std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k - 1),
                         sorted.end(), std::greater<>());
        CAPTURE(size, shape, k);
        REQUIRE(detail::kth_largest_key(keys, k, scratch) == sorted[k - 1]);
      }
    }
  }
}

TEMPLATE_TEST_CASE("select_top_keys keeps the k largest keys, ties to the lower index",
                   "[top_keys]", std::uint32_t, std::uint64_t) {
  std::mt19937_64 rng(13);
  detail::cpu_select_scratch ws;
  std::vector<std::size_t> out;
  for (std::size_t n : {1, 5, 1024, 1025, 4099, 40000, 300000}) {
    for (int shape = 0; shape < 4; ++shape) {
      const std::vector<TestType> keys = draw_keys<TestType>(rng, n, shape);
      const TestType max_key = *std::max_element(keys.begin(), keys.end());
      for (std::size_t k :
           {std::size_t{0}, std::size_t{1}, n / 1000 + 1, n / 10 + 1, n - n / 3, n}) {
        const std::vector<std::size_t> expect = reference_top(keys, k);
        for (unsigned threads : {1u, 3u}) {
          CAPTURE(n, shape, k, threads);
          const std::uint64_t top = detail::run<detail::select_top_keys>(
              cpu_threads(threads), n, k, key_table<TestType>{keys.data()}, out, ws);
          REQUIRE(out == expect);
          REQUIRE(top == max_key);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("select_at_least keeps every key at or above the threshold", "[top_keys]",
                   std::uint32_t, std::uint64_t) {
  std::mt19937_64 rng(15);
  detail::cpu_select_scratch ws;
  std::vector<std::size_t> out;
  for (std::size_t n : {1, 17, 1024, 1025, 40000, 300000}) {
    for (int shape = 0; shape < 4; ++shape) {
      const std::vector<TestType> keys = draw_keys<TestType>(rng, n, shape);
      const TestType max_key = *std::max_element(keys.begin(), keys.end());
      for (int trial = 0; trial < 3; ++trial) {
        const TestType t = trial == 0 ? TestType{0} : keys[static_cast<std::size_t>(rng() % n)];
        std::vector<std::size_t> expect;
        for (std::size_t i = 0; i < n; ++i) {
          if (keys[i] >= t) {
            expect.push_back(i);
          }
        }
        for (unsigned threads : {1u, 3u}) {
          CAPTURE(n, shape, trial, threads);
          const std::uint64_t top = detail::run<detail::select_at_least>(
              cpu_threads(threads), n, key_table<TestType>{keys.data()}, std::uint64_t{t}, out, ws);
          REQUIRE(out == expect);
          REQUIRE(top == max_key);
        }
      }
    }
  }
}

TEST_CASE("top-k and threshold-v name the first NaN or Inf of a large span, wherever it lies",
          "[top_keys]") {
  // spans far larger than the threshold sample: the filter pass, not the sample, must see them
  const model_layout layout = model_layout::from_sizes({3000, 200000, 77777});
  std::mt19937_64 rng(14);
  std::normal_distribution<float> nd(0.0f, 1e-3f);
  std::vector<float> x(layout.total_size());
  for (auto& v : x) {
    v = nd(rng);
  }
  codec lw(scheme<topk, layer_span>{{0.01}}, layout);
  codec em(scheme<topk, flat_span>{{0.01}}, layout);
  codec composite(scheme<compose<topk, qsgd>, layer_span>{{{0.01}, {15}}}, layout);
  codec threshold(scheme<threshold_v, layer_span>{{2e-3}}, layout);
  std::vector<std::byte> msg(
      std::max({lw.max_encoded_bytes<float>(), em.max_encoded_bytes<float>(),
                composite.max_encoded_bytes<float>(), threshold.max_encoded_bytes<float>()}));
  for (float bad : {NAN, -NAN, INFINITY, -INFINITY}) {
    for (std::size_t at : {std::size_t{3001}, std::size_t{3000 + 123457}, x.size() - 1}) {
      std::vector<float> y = x;
      y[at] = bad;
      if (at + 1 < y.size()) {
        y.back() = NAN; // a later one is not named
      }
      const auto expect_error = [&](auto& c) {
        try {
          (void)c.encode(cpu, std::span<const float>(y), std::span<std::byte>(msg),
                         stream_key{1, 1});
          FAIL("accepted a non-finite value");
        } catch (const gradcomp::error& e) {
          CAPTURE(e.what());
          REQUIRE(e.code() == errc::non_finite_input);
          REQUIRE(std::string(e.what()).find("(global index " + std::to_string(at) + ")") !=
                  std::string::npos);
        }
      };
      CAPTURE(bad, at);
      expect_error(lw);
      expect_error(em);
      expect_error(composite);
      expect_error(threshold);
    }
  }
}
