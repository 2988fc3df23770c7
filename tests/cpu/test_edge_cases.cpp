// SPDX-License-Identifier: Apache-2.0
// Edge cases and bad parameters with their documented policy (SPECS.md §2.3, §2.5 C, §2.6):
// empty models and layers, k bounds, all-zero spans, NaN/Inf/-0/denormals, ties at the threshold
// and at the k-th magnitude, the exact k rule, and the reference code's known bugs as regressions.

#include "../support/generators.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>
#include <limits>

using namespace gradcomp;

namespace {

template <class S>
std::vector<float> apply(S s, const model_layout& l, const std::vector<float>& x,
                         stream_key key = {}) {
  codec c(s, l);
  std::vector<float> q(x.size());
  c.apply(cpu, std::span<const float>(x), std::span<float>(q), key);
  return q;
}
template <class S>
std::vector<float> apply1(S s, const std::vector<float>& x, stream_key key = {}) {
  return apply(s, model_layout::from_sizes({x.size()}), x, key);
}
template <class S>
errc error_of(S s, const std::vector<float>& x) {
  try {
    (void)apply1(s, x);
  } catch (const gradcomp::error& e) {
    return e.code();
  }
  return errc::corrupt_payload; // a code no encode-side check uses: "no error"
}

// Runs f on every compressor with a default parameter, flat and layer-wise.
template <class F>
void for_each_operator(F&& f) {
  f(scheme<identity, layer_span>{});
  f(scheme<topk, layer_span>{{0.3}});
  f(scheme<random_k, layer_span>{{0.3}});
  f(scheme<random_k, layer_span>{{0.3, true, true}});
  f(scheme<threshold_v, layer_span>{{0.1}});
  f(scheme<adaptive_threshold, layer_span>{});
  f(scheme<terngrad, layer_span>{});
  f(scheme<terngrad, layer_span>{{true}});
  f(scheme<qsgd, layer_span>{{15}});
  f(scheme<qsgd, layer_span>{{15, 4}});
  f(scheme<sign_sgd, layer_span>{});
  f(scheme<scaled_sign, layer_span>{});
  f(scheme<natural, layer_span>{});
  f(scheme<natural, layer_span, natural_codes<8>>{});
  f(scheme<stochastic_rounding<bfloat16>, layer_span>{});
  f(scheme<stochastic_rounding<half>, layer_span>{});
  f(scheme<identity, flat_span, dense<half>>{});
  f(scheme<topk, flat_span, sparse_coo<bfloat16>>{{0.3}});
  f(scheme<qsgd, bucket_span>{{3}, {5}});
}

} // namespace

TEST_CASE("empty models, empty layers and all-zero spans", "[edge]") {
  for_each_operator([](auto s) {
    CAPTURE(decltype(s)::compressor_type::name);
    // d = 0: a header-only message that decodes to nothing
    codec c0(s, model_layout{});
    std::vector<std::byte> m(c0.template max_encoded_bytes<float>());
    const std::size_t empty_span_bytes = decltype(s)::is_sparse ? 16 : 0;
    REQUIRE(c0.encode(cpu, std::span<const float>(), std::span<std::byte>(m), {}) ==
            wire_header_bytes +
                c0.spans().size() * (wire_directory_entry_bytes + empty_span_bytes));
    c0.decode(cpu, std::span<const std::byte>(m), std::span<float>());
    // empty layers between non-empty ones, and all-zero input: exact zeros, no NaN (the paper's
    // QSGD gives 0/0 = NaN here)
    const model_layout l = model_layout::from_sizes({0, 7, 0, 0, 9, 0});
    const std::vector<float> zeros(16, 0.0f);
    const std::vector<float> q = apply(s, l, zeros);
    using C = typename decltype(s)::compressor_type;
    for (float v : q) {
      if constexpr (std::is_same_v<C, sign_sgd>) {
        REQUIRE(v == 1.0f); // sign(0) = +1 (documented), as GRACE
      } else {
        REQUIRE(v == 0.0f);
        REQUIRE_FALSE(std::signbit(v));
      }
    }
  });
}

TEST_CASE("non-finite gradients are rejected by every operator", "[edge][nonfinite]") {
  for_each_operator([](auto s) {
    CAPTURE(decltype(s)::compressor_type::name);
    for (float bad : {NAN, INFINITY, -INFINITY, -NAN}) {
      std::vector<float> x(16, 0.5f);
      x[11] = bad;
      try {
        (void)apply(s, model_layout::from_sizes({7, 9}), x);
        FAIL("accepted a non-finite value");
      } catch (const gradcomp::error& e) {
        REQUIRE(e.code() == errc::non_finite_input);
        REQUIRE(std::string(e.what()).find("global index 11") != std::string::npos);
      }
    }
  });
  // an l2 norm beyond fp32 is rejected too (QSGD), while max-based scales are fine
  REQUIRE(error_of(scheme<qsgd>{{15}}, {3e38f, 3e38f}) == errc::value_out_of_range);
  REQUIRE(apply1(scheme<terngrad>{}, {3e38f, 3e38f})[0] == 3e38f);
}

TEST_CASE("signed zeros, denormals and extreme magnitudes follow the documented policy",
          "[edge][fp]") {
  const std::vector<float> x{-0.0f,   0.0f,     FLT_TRUE_MIN, -FLT_TRUE_MIN, FLT_MIN,
                             FLT_MAX, -FLT_MAX, 1e-30f,       1e30f};
  // sign(-0) = sign(+0) = +1
  const auto s = apply1(scheme<sign_sgd>{}, x);
  REQUIRE(s[0] == 1.0f);
  REQUIRE(s[1] == 1.0f);
  REQUIRE(s[3] == -1.0f);
  // natural: denormals round to 0 or 2^-126, FLT_MAX saturates at 2^127, zeros are +0
  for (std::uint64_t step = 0; step < 50; ++step) {
    const auto n9 = apply1(scheme<natural>{}, x, {1, step});
    REQUIRE((n9[2] == 0.0f || n9[2] == FLT_MIN));
    REQUIRE((n9[3] == 0.0f || n9[3] == -FLT_MIN));
    REQUIRE(n9[4] == FLT_MIN);
    REQUIRE(n9[5] == 0x1p127f);
    REQUIRE(n9[6] == -0x1p127f);
    REQUIRE_FALSE(std::signbit(n9[0]));
    const auto n8 = apply1(scheme<natural, flat_span, natural_codes<8>>{}, x, {1, step});
    REQUIRE((n8[4] == 0.0f || n8[4] == 0x1p-110f)); // below the 8-bit window
    REQUIRE(n8[5] == 0x1p16f);                      // saturates at the top of the window
    REQUIRE(n8[8] == 0x1p16f);
    // SR: FLT_MAX saturates at the largest finite value of the target, never Inf
    const auto b = apply1(scheme<stochastic_rounding<bfloat16>>{}, x, {1, step});
    REQUIRE(b[5] == to_float(bfloat16{0x7f7f}));
    const auto h = apply1(scheme<stochastic_rounding<half>>{}, x, {1, step});
    REQUIRE(h[5] == 65504.0f);
    REQUIRE(h[6] == -65504.0f);
    REQUIRE((h[7] == 0.0f));
  }
  // QSGD over tiny values: double accumulation, no underflow to a zero norm
  const auto q = apply1(scheme<qsgd>{{1}}, {1e-30f, 0.0f});
  REQUIRE(q[0] == 1e-30f);
}

TEST_CASE("ties at the threshold and at the k-th magnitude are exact", "[edge][ties]") {
  // threshold: |x| == v is kept (>=), just below is not; v = 0 keeps all non-zeros
  const std::vector<float> x{0.25f, -0.25f, std::nextafter(0.25f, 0.0f), 0.0f, 1.0f};
  const auto t = apply1(scheme<threshold_v>{{0.25}}, x);
  REQUIRE(t == std::vector<float>{0.25f, -0.25f, 0.0f, 0.0f, 1.0f});
  const auto t0 = apply1(scheme<threshold_v>{{0.0}}, x);
  REQUIRE(t0 == std::vector<float>{0.25f, -0.25f, x[2], 0.0f, 1.0f});
  // a double threshold between two floats: exact comparison against the double
  REQUIRE(apply1(scheme<threshold_v>{{0.25000000000000001}}, {0.25f})[0] == 0.25f);
  REQUIRE(apply1(scheme<threshold_v>{{0.2500001}}, {0.25f})[0] == 0.0f);
  // adaptive: |x| == max/2 kept
  REQUIRE(apply1(scheme<adaptive_threshold>{}, {2.0f, -1.0f, 0.999f}) ==
          std::vector<float>{2.0f, -1.0f, 0.0f});
  // top-k: equal magnitudes at the k-th position go to the lower index, +0 and -0 tie
  const std::vector<float> ties{1.0f, -2.0f, 2.0f, -2.0f, 2.0f, 0.5f};
  REQUIRE(apply1(scheme<topk>{{0.5}}, ties) == std::vector<float>{0, -2.0f, 2.0f, -2.0f, 0, 0});
  REQUIRE(apply1(scheme<topk>{{0.5}}, std::vector<float>{-0.0f, 0.0f, -0.0f, 0.0f}) ==
          std::vector<float>{-0.0f, 0.0f, 0.0f, 0.0f});
  std::vector<float> many(5000, 1.0f);
  const auto m = apply1(scheme<topk>{{0.01}}, many);
  for (std::size_t i = 0; i < many.size(); ++i)
    REQUIRE(m[i] == (i < 50 ? 1.0f : 0.0f));
}

TEST_CASE("k is ceil(ratio n) computed exactly, k >= n is the identity", "[edge][k]") {
  REQUIRE(topk{0.07}.count(100) == 7); // 0.07 * 100 = 7.000000000000001 in double
  REQUIRE(topk{0.1}.count(30) == 3);
  REQUIRE(topk{0.001}.count(1) == 1); // at least one
  REQUIRE(topk{1.0}.count(12345) == 12345);
  REQUIRE(topk{0.3}.count(0) == 0);
  REQUIRE(topk{1e-9}.count(std::size_t{1} << 40) == 1100); // ceil(1099.51)
  // the paper's rule kthvalue(ceil(d(1-K))) keeps floor(dK)+1 and crashes at K = 1: ours keeps
  // exactly ceil(dK) for every (d, K), including K = 1
  for (std::size_t d : {1ul, 2ul, 3ul, 10ul, 99ul, 1000ul, 4099ul}) {
    for (double r : {0.001, 0.01, 0.1, 0.3, 0.5, 1.0}) {
      const auto x = test::make_input(d, test::distribution::normal, d);
      const auto q = apply1(scheme<topk>{{r}}, x);
      const auto kept = static_cast<std::size_t>(
          std::count_if(q.begin(), q.end(), [](float v) { return v != 0; }));
      const std::size_t want = std::max<std::size_t>(
          1, static_cast<std::size_t>(std::ceil(r * static_cast<double>(d) - 1e-9)));
      CAPTURE(d, r);
      REQUIRE(kept == std::min(d, want));
    }
  }
  const auto x = test::make_input(777, test::distribution::heavy_tailed, 1);
  REQUIRE(apply1(scheme<topk>{{1.0}}, x) == x);
  REQUIRE(apply1(scheme<random_k>{{1.0}}, x) == x);
  REQUIRE(apply1(scheme<random_k>{{1.0, true}}, x) == x); // scale n/k = 1
  REQUIRE(apply1(scheme<identity>{}, x) == x);
}

TEST_CASE("bad parameters are rejected with a named error", "[edge][params]") {
  const model_layout l = model_layout::from_sizes({10});
  auto code = [&](auto s) {
    try {
      codec c(s, l);
    } catch (const gradcomp::error& e) {
      return e.code();
    }
    return errc::corrupt_payload;
  };
  for (double r : {0.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN(), 1e-12}) {
    CAPTURE(r);
    REQUIRE(code(scheme<topk>{{r}}) == errc::invalid_parameter);
    REQUIRE(code(scheme<random_k>{{r}}) == errc::invalid_parameter);
  }
  REQUIRE(code(scheme<qsgd>{{0}}) == errc::invalid_parameter);
  REQUIRE(code(scheme<qsgd>{{1}}) != errc::invalid_parameter); // s = 1 is valid
  REQUIRE(code(scheme<threshold_v>{{-1e-3}}) == errc::invalid_parameter);
  REQUIRE(code(scheme<threshold_v>{{std::numeric_limits<double>::quiet_NaN()}}) ==
          errc::invalid_parameter);
  REQUIRE(code(scheme<threshold_v>{{INFINITY}}) == errc::invalid_parameter);
  REQUIRE(code(scheme<terngrad>{{true, 0.0}}) == errc::invalid_parameter);
  REQUIRE(code(scheme<identity, bucket_span>{{}, {0}}) == errc::invalid_parameter);
  try {
    codec c(scheme<topk>{{1.5}}, l);
  } catch (const gradcomp::error& e) {
    REQUIRE(std::string(e.what()).find("topk.ratio") != std::string::npos);
  }
}

TEST_CASE("same inputs, seed and step give identical messages; steps and ranks differ",
          "[edge][determinism]") {
  const model_layout l = test::odd_layout();
  const auto x = test::make_input(l.total_size(), test::distribution::normal, 4);
  auto msg = [&](auto s, stream_key key) {
    codec c(s, l);
    std::vector<std::byte> m(c.template max_encoded_bytes<float>());
    m.resize(c.encode(cpu, std::span<const float>(x), std::span<std::byte>(m), key));
    return m;
  };
  const auto a = msg(scheme<qsgd, layer_span>{{7}}, {1, 2});
  REQUIRE(a == msg(scheme<qsgd, layer_span>{{7}}, {1, 2}));
  REQUIRE(a != msg(scheme<qsgd, layer_span>{{7}}, {1, 3}));
  REQUIRE(a != msg(scheme<qsgd, layer_span>{{7}}, {1, 2, 1}));
  REQUIRE(a != msg(scheme<qsgd, layer_span>{{7}}, {2, 2}));
}

// Found by fuzz_roundtrip: identity with dense<half> encoded 70000 as fp16 Inf, a message its own
// decoder rejected. Values that would overflow the wire's value type are now refused up front.
TEST_CASE("values beyond fp16/bf16 range are refused, not sent as Inf", "[edge][range]") {
  REQUIRE(error_of(scheme<identity, flat_span, dense<half>>{}, {1.0f, 70000.0f}) ==
          errc::value_out_of_range);
  REQUIRE(error_of(scheme<identity, flat_span, dense<half>>{}, {65520.0f}) ==
          errc::value_out_of_range); // the midpoint rounds (to even) to Inf
  REQUIRE(apply1(scheme<identity, flat_span, dense<half>>{}, {65519.0f})[0] == 65504.0f);
  REQUIRE(error_of(scheme<identity, flat_span, dense<bfloat16>>{}, {3.4e38f}) ==
          errc::value_out_of_range);
  REQUIRE(error_of(scheme<topk, flat_span, sparse_coo<half>>{{0.5}}, {1e5f, 1.0f}) ==
          errc::value_out_of_range);
  REQUIRE(error_of(scheme<topk, flat_span, sparse_coo<half>>{{0.5}}, {1.0f, 1e5f}) ==
          errc::value_out_of_range);
  // unbiased random-k: n/k times a huge kept value would overflow fp32
  REQUIRE(error_of(scheme<random_k, flat_span>{{0.5, true}}, {3e38f, 3e38f}) ==
          errc::value_out_of_range);
  // stochastic rounding saturates instead (documented), and values below the limit pass
  REQUIRE(apply1(scheme<stochastic_rounding<half>, flat_span>{}, {1e5f})[0] == 65504.0f);
  REQUIRE(apply1(scheme<topk, flat_span, sparse_coo<half>>{{1.0}}, {65000.0f})[0] == 64992.0f);
}

// Found by fuzz_roundtrip: QSGD decoded norm * level / s, and norm * level overflowed to Inf for
// norms above FLT_MAX / s although the result (at most the norm) is finite. Now norm * (level / s).
TEST_CASE("QSGD decodes huge but finite norms without overflow", "[edge][range]") {
  for (std::uint64_t step = 0; step < 20; ++step) {
    const auto q = apply1(scheme<qsgd>{{255}}, {1e37f, -2e37f, 3e37f}, {2, step});
    for (float v : q)
      REQUIRE(std::isfinite(v));
    REQUIRE(std::fabs(q[2]) <= 3.8e37f); // at most the norm
  }
}

TEST_CASE("shared scales: a wrong count or a bad scale is refused by name", "[edge][params]") {
  const model_layout l = model_layout::from_sizes({6, 5});
  const std::vector<float> x{1, -2, 3, -4, 5, -6, 0.5f, 0.25f, -1, 2, 7};
  const auto refusal = [&](auto s, std::vector<float> shared) -> std::string {
    codec c(s, l);
    std::vector<std::byte> m(c.max_encoded_bytes());
    try {
      (void)c.encode(cpu, std::span<const float>(x), std::span<std::byte>(m), {},
                     std::span<const float>(shared));
    } catch (const gradcomp::error& e) {
      REQUIRE(e.code() == errc::invalid_parameter);
      return e.what();
    }
    return {};
  };
  const scheme<terngrad, layer_span> tern{};
  codec c(tern, l);
  const std::vector<float> local = c.local_scales(cpu, std::span<const float>(x), {});
  REQUIRE(local == std::vector<float>{6.0f, 7.0f}); // max |x| of each layer
  REQUIRE(refusal(tern, local).empty());
  REQUIRE_THAT(refusal(tern, {6.0f}), Catch::Contains("1 shared scales given, the scheme uses 2"));
  REQUIRE_THAT(refusal(tern, {6.0f, -1.0f}),
               Catch::Contains("shared scale 1 of") && Catch::Contains("negative or not finite"));
  REQUIRE_THAT(refusal(tern, {NAN, 7.0f}), Catch::Contains("shared scale 0 of"));
  // a sparse scheme has no scales to share
  REQUIRE(codec(scheme<topk, layer_span>{{0.5}}, l)
              .local_scales(cpu, std::span<const float>(x), {})
              .empty());
  REQUIRE_THAT(refusal(scheme<topk, layer_span>{{0.5}}, {1.0f}),
               Catch::Contains("1 shared scales given, the scheme uses 0"));
}
