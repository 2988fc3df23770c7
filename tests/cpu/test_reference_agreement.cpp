// SPDX-License-Identifier: Apache-2.0
// Every operator x granularity x value type agrees bit for bit with the plain reference
// (SPECS.md §2.5 A1): same selected index sets, same values, same random decisions.

#include "../support/generators.hpp"
#include "../support/reference.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <tuple>

using namespace gradcomp;
namespace ref = gradcomp::test::ref;
using test::distribution;

namespace {

template <class C, class E>
std::vector<float> reference_span(const C& c, const E&, const std::vector<float>& x,
                                  std::uint64_t g0, const stream_key& key) {
  const std::size_t n = x.size();
  if constexpr (std::is_same_v<C, topk>) {
    return ref::topk(x, c.count(n));
  } else if constexpr (std::is_same_v<C, random_k>) {
    const std::size_t k = c.count(n);
    std::vector<float> out = ref::keep(x, ref::random_subset(n, k, key, g0, c.shared_seed));
    return out;
  } else if constexpr (std::is_same_v<C, threshold_v>) {
    return ref::threshold(x, c.threshold);
  } else if constexpr (std::is_same_v<C, adaptive_threshold>) {
    return ref::adaptive(x);
  } else if constexpr (std::is_same_v<C, terngrad>) {
    return ref::terngrad(x, ref::terngrad_scale(x, c.clip, c.clip_sigmas), key, g0);
  } else if constexpr (std::is_same_v<C, qsgd>) {
    return ref::qsgd(x, c.levels, c.bucket_size, key, g0);
  } else if constexpr (std::is_same_v<C, sign_sgd>) {
    return ref::sign(x, false);
  } else if constexpr (std::is_same_v<C, scaled_sign>) {
    return ref::sign(x, true);
  } else if constexpr (std::is_same_v<C, natural>) {
    return ref::natural(x, key, g0, E::bits);
  } else if constexpr (std::is_same_v<C, stochastic_rounding<bfloat16>> ||
                       std::is_same_v<C, stochastic_rounding<half>>) {
    std::vector<float> out(n);
    for (std::size_t i = 0; i < n; ++i)
      out[i] = ref::sr_one<typename C::target_type>(x[i], ref::rnd32(key, g0 + i));
    return out;
  } else {
    static_assert(std::is_same_v<C, identity>);
    std::vector<float> out(n);
    for (std::size_t i = 0; i < n; ++i)
      out[i] = to_float(from_float<typename E::value_type>(x[i]));
    return out;
  }
}

// The reference result of every span, as floats (before rounding to the output type).
template <class Scheme>
std::vector<std::vector<float>> reference_spans(const Scheme& s, const codec<Scheme>& c,
                                                const std::vector<float>& xf,
                                                const stream_key& key) {
  using E = typename Scheme::encoding_type;
  std::vector<std::vector<float>> wants;
  for (std::size_t si = 0; si < c.spans().size(); ++si) {
    const span_desc& sp = c.spans()[si];
    std::vector<float> want(xf.begin() + static_cast<std::ptrdiff_t>(sp.begin),
                            xf.begin() + static_cast<std::ptrdiff_t>(sp.begin + sp.size));
    if (sp.compressed) {
      want = reference_span(c.span_compressor(si), s.encoding, want, sp.begin, key);
      if constexpr (Scheme::is_sparse) {
        float scale = 1.0f;
        if constexpr (std::is_same_v<typename Scheme::compressor_type, random_k>) {
          const std::size_t k = c.span_compressor(si).count(sp.size);
          scale = c.span_compressor(si).value_scale(sp.size, k);
        }
        for (float& w : want)
          w = to_float(from_float<typename E::value_type>(w)) * scale;
      }
    }
    wants.push_back(std::move(want));
  }
  return wants;
}

// True when a finite reference value does not fit the output type T (the decoder must refuse).
template <class T>
bool overflows_output(const std::vector<std::vector<float>>& wants) {
  for (const auto& want : wants)
    for (float w : want)
      if (std::isfinite(w) && !std::isfinite(to_float(from_float<T>(w))))
        return true;
  return false;
}

template <class Scheme, class T>
void check_scheme(const Scheme& s, const model_layout& layout, distribution d, std::uint64_t seed) {
  using E = typename Scheme::encoding_type;
  codec<Scheme> c(s, layout);
  const std::vector<T> xt = test::convert<T>(test::make_input(layout.total_size(), d, seed));
  std::vector<float> xf(xt.size());
  for (std::size_t i = 0; i < xt.size(); ++i)
    xf[i] = to_float(xt[i]);
  const stream_key key{seed, seed % 97, static_cast<std::uint32_t>(seed % 5), role::worker};
  const std::vector<std::vector<float>> wants = reference_spans(s, c, xf, key);
  std::vector<T> out(xt.size());
  if (overflows_output<T>(wants)) {
    // e.g. unbiased random-k's n/k scale on a large value: a 16-bit output cannot hold it
    const std::vector<T> before = out;
    errc got = errc::corrupt_payload;
    try {
      c.apply(cpu, std::span<const T>(xt), std::span<T>(out), key);
      FAIL("a result beyond the output type decoded without an error");
    } catch (const gradcomp::error& e) {
      got = e.code();
    }
    REQUIRE(got == errc::value_out_of_range);
    REQUIRE(std::memcmp(before.data(), out.data(), out.size() * sizeof(T)) == 0);
    return;
  }
  c.apply(cpu, std::span<const T>(xt), std::span<T>(out), key);

  for (std::size_t si = 0; si < c.spans().size(); ++si) {
    const span_desc& sp = c.spans()[si];
    const std::vector<float>& want = wants[si];
    for (std::size_t i = 0; i < sp.size; ++i) {
      const T got = out[sp.begin + i];
      const T exp = from_float<T>(want[i]);
      if (detail::bit_cast<std::uint32_t>(to_float(got)) !=
          detail::bit_cast<std::uint32_t>(to_float(exp))) {
        CAPTURE(Scheme::compressor_type::name, Scheme::granularity_type::name, E::name,
                value_traits<T>::name, test::to_string(d), seed, si, sp.size, i, xf[sp.begin + i],
                to_float(got), to_float(exp));
        FAIL("mismatch against the reference");
      }
    }
  }
  SUCCEED();
}

template <class C, class E = default_encoding_t<C>>
void check_all(const C& comp) {
  const model_layout layout = test::odd_layout();
  for (std::uint64_t seed : test::seeds(2)) {
    for (distribution d : test::all_distributions) {
      check_scheme<scheme<C, layer_span, E>, float>({comp}, layout, d, seed);
      check_scheme<scheme<C, flat_span, E>, float>({comp}, layout, d, seed);
      check_scheme<scheme<C, bucket_span, E>, float>({comp, {1000}}, layout, d, seed);
      check_scheme<scheme<C, layer_span, E>, half>({comp}, layout, d, seed);
      check_scheme<scheme<C, flat_span, E>, bfloat16>({comp}, layout, d, seed);
    }
  }
}

} // namespace

TEST_CASE("top-k agrees with a full sort, ties to the lower index", "[reference][topk]") {
  for (double r : {0.001, 0.01, 0.1, 0.3, 0.5, 1.0})
    check_all(topk{r});
  check_all<topk, sparse_coo<half>>(topk{0.1});
  check_all<topk, sparse_coo<bfloat16>>(topk{0.1});
}
TEST_CASE("random-k agrees with sorting Philox keys", "[reference][random_k]") {
  for (double r : {0.01, 0.1, 0.5, 1.0}) {
    check_all(random_k{r, false, false});
    check_all(random_k{r, true, false});
    check_all(random_k{r, true, true});
    check_all(random_k{r, false, true});
  }
}
TEST_CASE("threshold-v agrees with |x| >= v", "[reference][threshold_v]") {
  for (double v : {0.0, 1e-4, 0.25, 0.3, 2.0})
    check_all(threshold_v{v});
}
TEST_CASE("adaptive threshold agrees with 2|x| >= max|x|", "[reference][adaptive]") {
  check_all(adaptive_threshold{});
}
TEST_CASE("TernGrad agrees with the reference, with and without clipping",
          "[reference][terngrad]") {
  check_all(terngrad{});
  check_all(terngrad{true, 2.5});
}
TEST_CASE("QSGD agrees with the reference for several s and buckets", "[reference][qsgd]") {
  for (std::uint32_t s : {1u, 2u, 15u, 255u, 256u}) {
    check_all(qsgd{s, 0});
    check_all(qsgd{s, 128});
  }
}
TEST_CASE("sign and scaled sign agree with the reference", "[reference][sign]") {
  check_all(sign_sgd{});
  check_all(scaled_sign{});
}
TEST_CASE("natural compression agrees with the frexp reference", "[reference][natural]") {
  check_all<natural, natural_codes<9>>(natural{});
  check_all<natural, natural_codes<8>>(natural{});
}
TEST_CASE("stochastic rounding agrees with neighbour search", "[reference][sr]") {
  check_all(stochastic_rounding<bfloat16>{});
  check_all(stochastic_rounding<half>{});
}
TEST_CASE("identity agrees with round-to-nearest-even casts", "[reference][identity]") {
  check_all<identity, dense<float>>(identity{});
  check_all<identity, dense<half>>(identity{});
  check_all<identity, dense<bfloat16>>(identity{});
}
