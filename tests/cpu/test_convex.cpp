// SPDX-License-Identifier: Apache-2.0
// The convex sanity suite (SPECS.md §2.5 F5, issue: Algorithm 1): least squares and l2-regularised
// logistic regression over 4 simulated workers (in_process_cluster), full-batch gradients on each
// worker's shard, every operator with and without error feedback; and the signSGD counter-example
// of Karimireddy et al. 2019, where plain signSGD cannot converge and EF-signSGD does.
//
// Pass criterion: the excess loss f(x_T) - f* after T steps is at most `margin` times the initial
// excess f(x_0) - f*, with f* from uncompressed gradient descent run to convergence. The margins
// are stated per case below. GRADCOMP_CONVEX_TABLE=1 prints the table of results.

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace gradcomp;

namespace {

/// Four workers' shards of a convex problem on a two-layer parameter vector.
struct problem {
  enum class kind { least_squares, logistic } type = kind::least_squares;
  std::size_t d = 0;
  std::vector<std::vector<float>> a; // per worker: rows x d
  std::vector<std::vector<float>> b; // per worker: targets (least squares) or labels +-1
  std::size_t rows = 0;
  double l2 = 0;

  static problem make(kind type, std::uint64_t seed) {
    problem p;
    p.type = type;
    p.d = 24;
    p.rows = 40;
    p.l2 = type == kind::logistic ? 1e-2 : 0.0;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> n01(0.0f, 1.0f);
    std::vector<float> truth(p.d);
    for (auto& v : truth)
      v = n01(rng);
    for (int w = 0; w < 4; ++w) {
      std::vector<float> a(p.rows * p.d), b(p.rows);
      for (std::size_t r = 0; r < p.rows; ++r) {
        double dot = 0;
        for (std::size_t j = 0; j < p.d; ++j) {
          // feature scales differ by layer, as gradients of real layers do
          a[r * p.d + j] = n01(rng) * (j < 16 ? 1.0f : 0.3f);
          dot += a[r * p.d + j] * truth[j];
        }
        b[r] = type == kind::least_squares ? static_cast<float>(dot) + 0.1f * n01(rng)
                                           : (dot + 0.5 * n01(rng) > 0 ? 1.0f : -1.0f);
      }
      p.a.push_back(std::move(a));
      p.b.push_back(std::move(b));
    }
    return p;
  }
  /// The worker's full-batch gradient at x, and its loss.
  double gradient(std::size_t w, const std::vector<float>& x, std::vector<float>& g) const {
    g.assign(d, 0.0f);
    std::vector<double> acc(d, 0.0);
    double loss = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      double z = 0;
      for (std::size_t j = 0; j < d; ++j)
        z += static_cast<double>(a[w][r * d + j]) * x[j];
      double coef;
      if (type == kind::least_squares) {
        const double res = z - b[w][r];
        loss += 0.5 * res * res;
        coef = res;
      } else {
        const double m = b[w][r] * z;
        loss += m > 0 ? std::log1p(std::exp(-m)) : -m + std::log1p(std::exp(m));
        coef = -b[w][r] / (1.0 + std::exp(m));
      }
      for (std::size_t j = 0; j < d; ++j)
        acc[j] += coef * a[w][r * d + j];
    }
    for (std::size_t j = 0; j < d; ++j) {
      acc[j] = acc[j] / static_cast<double>(rows) + l2 * x[j];
      g[j] = static_cast<float>(acc[j]);
      loss += 0.0; // the l2 term is added once, in loss()
    }
    return loss / static_cast<double>(rows);
  }
  double loss(const std::vector<float>& x) const {
    std::vector<float> g;
    double f = 0;
    for (std::size_t w = 0; w < 4; ++w)
      f += gradient(w, x, g) / 4.0;
    double sq = 0;
    for (float v : x)
      sq += static_cast<double>(v) * v;
    return f + 0.5 * l2 * sq;
  }
};

const model_layout two_layers = model_layout::from_sizes({16, 8}, {"weight", "bias"});

struct run_result {
  double excess = 0; ///< (f(x_T) - f*) / (f(x_0) - f*)
};

/// T steps of Algorithm 1 with Q_W, Q_M = identity, learning rate lr. With worker error feedback
/// the workers send C(lr g + e) (feedback on updates) and x <- x - update; otherwise x <- x - lr
/// update.
template <class W>
run_result run(const problem& p, W q_w, bool feedback, double f_star, float lr, int steps,
               bool share_scales = false) {
  in_process_cluster<W, scheme<identity, flat_span>> cl(
      q_w, {}, two_layers, 4, {5, aggregation::mean, feedback, false, share_scales, false});
  std::vector<float> x(p.d, 0.0f), update(p.d);
  const double f0 = p.loss(x);
  std::vector<std::vector<float>> g(4);
  for (int t = 0; t < steps; ++t) {
    for (std::size_t w = 0; w < 4; ++w)
      (void)p.gradient(w, x, g[w]);
    const std::vector<std::span<const float>> views(g.begin(), g.end());
    (void)cl.step(cpu, std::span<const std::span<const float>>(views),
                  static_cast<std::uint64_t>(t), feedback ? lr : 1.0f, std::span<float>(update));
    for (std::size_t j = 0; j < p.d; ++j)
      x[j] -= feedback ? update[j] : lr * update[j];
  }
  return {(p.loss(x) - f_star) / (f0 - f_star)};
}

double optimum(const problem& p, float lr) {
  std::vector<float> x(p.d, 0.0f), g;
  for (int t = 0; t < 20000; ++t) {
    std::vector<double> mean(p.d, 0.0);
    for (std::size_t w = 0; w < 4; ++w) {
      (void)p.gradient(w, x, g);
      for (std::size_t j = 0; j < p.d; ++j)
        mean[j] += g[j] / 4.0;
    }
    for (std::size_t j = 0; j < p.d; ++j)
      x[j] -= lr * static_cast<float>(mean[j]);
  }
  return p.loss(x);
}

bool print_table() {
  const char* v = std::getenv("GRADCOMP_CONVEX_TABLE");
  return v != nullptr && std::string(v) == "1";
}

template <class W>
void check(const char* name, const problem& p, double f_star, W q_w, float lr, int steps,
           double margin_plain, double margin_ef, bool share_scales = false) {
  // margin_ef < 0: no EF run (EF needs a contraction; an unbiased operator scaled up is not one)
  const run_result plain = run(p, q_w, false, f_star, lr, steps, share_scales);
  const run_result ef =
      margin_ef >= 0 ? run(p, q_w, true, f_star, lr, steps, share_scales) : run_result{NAN};
  if (print_table())
    std::printf("| %-9s | %-28s | %10.2e | %10.2e |\n",
                p.type == problem::kind::least_squares ? "lsq" : "logistic", name, plain.excess,
                ef.excess);
  CAPTURE(name, plain.excess, ef.excess);
  CHECK(plain.excess <= margin_plain);
  CHECK((margin_ef < 0 || ef.excess <= margin_ef));
}

void suite(const problem& p, float lr, int steps) {
  const double f_star = optimum(p, lr);
  // margins: 1e-3 of the initial excess for exact or contractive operators, 3e-2 where an
  // unbiased quantizer's variance keeps a noise floor at a constant learning rate
  check("identity", p, f_star, scheme<identity, layer_span>{}, lr, steps, 1e-3, 1e-3);
  check("top-k 25%", p, f_star, scheme<topk, layer_span>{{0.25}}, lr, steps, 1e-1, 1e-3);
  check("top-k 25% entire-model", p, f_star, scheme<topk, flat_span>{{0.25}}, lr, steps, 1e-1,
        1e-3);
  check("random-k 25% (biased)", p, f_star, scheme<random_k, layer_span>{{0.25}}, lr, steps, 3e-1,
        1e-3);
  check("random-k 25% unbiased", p, f_star, scheme<random_k, layer_span>{{0.25, true}}, lr / 2,
        steps, 3e-1, -1);
  check("adaptive threshold", p, f_star, scheme<adaptive_threshold, layer_span>{}, lr, steps, 1e-1,
        1e-3);
  check("TernGrad (shared scales)", p, f_star, scheme<terngrad, layer_span>{}, lr, steps, 3e-2,
        3e-2, true);
  check("QSGD s=15", p, f_star, scheme<qsgd, layer_span>{{15}}, lr, steps, 3e-2, 3e-2);
  check("QSGD s=15 entire-model", p, f_star, scheme<qsgd, flat_span>{{15}}, lr, steps, 3e-2, 3e-2);
  check("natural", p, f_star, scheme<natural, layer_span>{}, lr, steps, 3e-2, 3e-2);
  check("scaled sign", p, f_star, scheme<scaled_sign, layer_span>{}, lr, steps, 3e-1, 3e-2);
  check("top-k 25% + TernGrad", p, f_star,
        scheme<compose<topk, terngrad>, layer_span>{{{0.25}, {}}}, lr, steps, 3e-1, 3e-2);
  check("top-k 25% + QSGD s=15", p, f_star, scheme<compose<topk, qsgd>, layer_span>{{{0.25}, {15}}},
        lr, steps, 3e-1, 3e-2);
  check("random-k 25% + natural", p, f_star,
        scheme<compose<random_k, natural>, layer_span>{{{0.25}, {}}}, lr, steps, 3e-1, 3e-2);
  check("SR bf16", p, f_star, scheme<stochastic_rounding<bfloat16>, layer_span>{}, lr, steps, 1e-3,
        1e-3);
}

} // namespace

TEST_CASE("convex suite: least squares over 4 workers", "[convex]") {
  if (print_table())
    std::printf("| problem | operator | excess, no EF | excess, EF |\n|---|---|---|---|\n");
  suite(problem::make(problem::kind::least_squares, 1), 0.1f, 400);
}

TEST_CASE("convex suite: l2-regularised logistic regression over 4 workers", "[convex]") {
  suite(problem::make(problem::kind::logistic, 2), 0.5f, 400);
}

TEST_CASE("signSGD fails on Karimireddy's counter-example; EF-signSGD converges",
          "[convex][sign]") {
  // f(x) = <a1,x>^2 + <a2,x>^2, a stochastic gradient samples one term. sign(a1) = -sign(a2), so
  // signSGD moves along +-(1,-1) only and x1 + x2 never changes: f >= 2 eps^2 forever.
  const float eps = 0.5f;
  const float a[2][2] = {{1.0f, -1.0f + eps}, {-1.0f + eps, 1.0f}};
  const model_layout l = model_layout::from_sizes({2});
  auto f = [&](const std::vector<float>& x) {
    double s = 0;
    for (auto& ai : a) {
      const double z = ai[0] * x[0] + ai[1] * x[1];
      s += z * z;
    }
    return s;
  };
  auto run_sign = [&](auto q_w, bool feedback) {
    using W = decltype(q_w);
    in_process_cluster<W, scheme<identity, flat_span>> cl(q_w, {}, l, 1,
                                                          {3, aggregation::mean, feedback});
    std::mt19937_64 rng(17);
    std::vector<float> x{1.0f, 1.0f}, update(2), g(2);
    for (int t = 0; t < 4000; ++t) {
      const float lr = 0.05f / std::sqrt(1.0f + static_cast<float>(t) / 10.0f);
      const auto& ai = a[rng() % 2];
      const float z = ai[0] * x[0] + ai[1] * x[1];
      g = {2 * z * ai[0], 2 * z * ai[1]};
      const std::span<const float> view(g);
      (void)cl.step(cpu, std::span<const std::span<const float>>(&view, 1),
                    static_cast<std::uint64_t>(t), feedback ? lr : 1.0f, std::span<float>(update));
      for (int j = 0; j < 2; ++j)
        x[j] -= feedback ? update[j] : lr * update[j];
    }
    return f(x);
  };
  const double plain = run_sign(scheme<sign_sgd, flat_span>{}, false);
  const double ef = run_sign(scheme<scaled_sign, flat_span>{}, true);
  if (print_table())
    std::printf("| counter-example | signSGD vs EF-scaled-sign | f = %.3e | f = %.3e |\n", plain,
                ef);
  CAPTURE(plain, ef);
  REQUIRE(plain >= 2.0 * eps * eps * 0.999); // stuck on the line x1 + x2 = 2
  REQUIRE(ef <= 1e-2 * 2.0 * eps * eps);     // EF converges towards 0
}
