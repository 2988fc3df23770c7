// SPDX-License-Identifier: Apache-2.0
// The paper's theory, checked: elementwise operators give identical results layer-wise and
// entire-model (bitwise), and Lemma 1 holds: E|Q(x)|^2 <= sum_j (1+Omega_j)|x_j|^2
// <= max_j (1+Omega_j) |x|^2 for layer-wise QSGD, TernGrad, natural and unbiased random-k.

#include "../support/generators.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <cmath>

using namespace gradcomp;

namespace {
template <class C, class E = default_encoding_t<C>>
void check_identical(C comp) {
  const model_layout l = test::odd_layout();
  for (std::uint64_t seed : test::seeds()) {
    for (auto d : test::all_distributions) {
      const auto x = test::make_input(l.total_size(), d, seed);
      std::vector<float> a(x.size()), b(x.size()), c(x.size());
      const stream_key key{seed, 11};
      codec<scheme<C, layer_span, E>>({comp}, l).apply(cpu, std::span<const float>(x),
                                                       std::span<float>(a), key);
      codec<scheme<C, flat_span, E>>({comp}, l).apply(cpu, std::span<const float>(x),
                                                      std::span<float>(b), key);
      codec<scheme<C, bucket_span, E>>({comp, {100}}, l)
          .apply(cpu, std::span<const float>(x), std::span<float>(c), key);
      CAPTURE(C::name, test::to_string(d));
      REQUIRE(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
      REQUIRE(std::memcmp(a.data(), c.data(), a.size() * 4) == 0);
    }
  }
}

// layers of very different sizes and gradient scales
model_layout lemma_layout() {
  return model_layout::from_sizes({20, 300, 3000, 64});
}
std::vector<float> lemma_input() {
  auto x = test::make_input(3384, test::distribution::normal, 21);
  for (std::size_t i = 0; i < 20; ++i)
    x[i] *= 100.0f;
  for (std::size_t i = 3320; i < 3384; ++i)
    x[i] *= 0.01f;
  return x;
}

template <class S>
void check_lemma1(S s) {
  const model_layout l = lemma_layout();
  const auto x = lemma_input();
  codec c(s, l);
  double bound_sum = 0, max_factor = 0, norm2 = 0;
  for (std::size_t j = 0; j < l.num_layers(); ++j) {
    double xj2 = 0;
    for (std::size_t i = l[j].offset; i < l[j].offset + l[j].size; ++i)
      xj2 += static_cast<double>(x[i]) * x[i];
    const double factor = 1.0 + c.span_compressor(j).omega(l[j].size).value();
    bound_sum += factor * xj2;
    max_factor = std::max(max_factor, factor);
    norm2 += xj2;
  }
  const std::size_t N = 4000;
  double mean_q2 = 0, max_q2 = 0;
  std::vector<float> q(x.size());
  for (std::size_t step = 0; step < N; ++step) {
    c.apply(cpu, std::span<const float>(x), std::span<float>(q), stream_key{3, step});
    double q2 = 0;
    for (float v : q)
      q2 += static_cast<double>(v) * v;
    mean_q2 += q2 / N;
    max_q2 = std::max(max_q2, q2);
  }
  // Hoeffding over the observed range of |Q|^2 (a conservative, data-free bound would be wider)
  const double tol = max_q2 * std::sqrt(std::log(2.0 / 1e-9) / (2.0 * N));
  CAPTURE(S::compressor_type::name, mean_q2 / norm2, bound_sum / norm2, max_factor);
  REQUIRE(mean_q2 <= bound_sum + tol);
  REQUIRE(bound_sum <= max_factor * norm2 * (1 + 1e-12));
}
} // namespace

TEST_CASE("elementwise operators: layer-wise == entire-model == bucketed, bit for bit",
          "[theory][elementwise]") {
  check_identical(threshold_v{0.2});
  check_identical(sign_sgd{});
  check_identical<natural, natural_codes<9>>(natural{});
  check_identical<natural, natural_codes<8>>(natural{});
  check_identical(stochastic_rounding<bfloat16>{});
  check_identical(stochastic_rounding<half>{});
  check_identical<identity, dense<half>>(identity{});
}

TEST_CASE("Lemma 1 holds empirically for layer-wise unbiased operators", "[theory][lemma1]") {
  check_lemma1(scheme<qsgd, layer_span>{{4}});
  check_lemma1(scheme<qsgd, layer_span>{{4, 16}});
  check_lemma1(scheme<terngrad, layer_span>{});
  check_lemma1(scheme<natural, layer_span>{});
  check_lemma1(scheme<random_k, layer_span>{{0.2, true}});
}

TEST_CASE("layer-wise QSGD and TernGrad have lower error than entire-model on mixed scales",
          "[theory][direction]") {
  // The mechanism behind the paper's findings: per-layer scales are finer.
  const model_layout l = lemma_layout();
  const auto x = lemma_input();
  auto err = [&](auto s) {
    codec c(s, l);
    std::vector<float> q(x.size());
    double e = 0;
    for (std::size_t step = 0; step < 200; ++step) {
      c.apply(cpu, std::span<const float>(x), std::span<float>(q), stream_key{8, step});
      for (std::size_t i = 0; i < x.size(); ++i)
        e += (q[i] - static_cast<double>(x[i])) * (q[i] - static_cast<double>(x[i]));
    }
    return e;
  };
  REQUIRE(err(scheme<qsgd, layer_span>{{15}}) < err(scheme<qsgd, flat_span>{{15}}));
  REQUIRE(err(scheme<terngrad, layer_span>{}) < err(scheme<terngrad, flat_span>{}));
}
