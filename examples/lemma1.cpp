// SPDX-License-Identifier: Apache-2.0
// The theory of Dutta et al. (AAAI 2020), measured. For a model layout and gradients with
// realistic per-layer scales, prints per operator:
//  - the empirical E|Q(x)|^2 / |x|^2 over R draws, layer-wise, entire-model and bucketed;
//  - Lemma 1's bounds for the layer-wise operator, sum_j (1+W_j)|x_j|^2 / |x|^2 and
//    max_j (1+W_j), and the entire-model bound 1 + W(d) (W = the operator's Omega);
//  - for pairs (Q_W, Q_M), Trace(A) = sum_j (1+W^M_j)(1+W^W_j) against L max_j of the same, and
//    the entire-model L (1+W^M(d))(1+W^W(d)).
//
// usage: lemma1 [resnet50|resnet9|alexnet] [draws]      (defaults: resnet50 10)

#include "support/realistic_gradient.hpp"

#include <gradcomp/gradcomp.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace gradcomp;
using gradcomp::examples::realistic_gradient;

namespace {

struct moment {
  double mean = 0;      ///< empirical E|Q(x)|^2 / |x|^2
  double std_error = 0; ///< its standard error over the draws
};

/// Empirical E|Q(x)|^2 / |x|^2 over `draws` steps of the scheme's randomness.
template <class Scheme>
moment second_moment(const Scheme& s, const model_layout& layout, const std::vector<float>& x,
                     int draws) {
  codec<Scheme> c(s, layout);
  std::vector<float> q(x.size());
  double norm = 0;
  for (float v : x) {
    norm += static_cast<double>(v) * v;
  }
  double sum = 0, sum_sq = 0;
  for (int t = 0; t < draws; ++t) {
    (void)c.apply(cpu, std::span<const float>(x), std::span<float>(q),
                  stream_key{11, static_cast<std::uint64_t>(t)});
    double sq = 0;
    for (float v : q) {
      sq += static_cast<double>(v) * v;
    }
    sum += sq / norm;
    sum_sq += (sq / norm) * (sq / norm);
  }
  const double mean = sum / draws;
  const double var = draws > 1 ? std::max(0.0, (sum_sq - draws * mean * mean) / (draws - 1)) : 0;
  return {mean, std::sqrt(var / draws)};
}

struct bounds {
  double weighted = 0;  ///< sum_j (1 + W_j) |x_j|^2 / |x|^2
  double max_layer = 0; ///< max_j (1 + W_j)
  double entire = 0;    ///< 1 + W(d)
};

template <class C>
bounds lemma1_bounds(const C& comp, const model_layout& layout, const std::vector<float>& x) {
  bounds b;
  double norm = 0;
  for (const layer_info& l : layout.layers()) {
    double nj = 0;
    for (std::size_t i = l.offset; i < l.offset + l.size; ++i) {
      nj += static_cast<double>(x[i]) * x[i];
    }
    const double w = 1.0 + comp.omega(l.size).value_or(0.0);
    b.weighted += w * nj;
    b.max_layer = std::max(b.max_layer, w);
    norm += nj;
  }
  b.weighted /= norm;
  b.entire = 1.0 + comp.omega(layout.total_size()).value_or(0.0);
  return b;
}

template <class C>
void row(const char* name, const C& comp, const model_layout& layout, const std::vector<float>& x,
         int draws, std::size_t bucket) {
  const moment lw = second_moment(scheme<C, layer_span>{comp}, layout, x, draws);
  const moment em = second_moment(scheme<C, flat_span>{comp}, layout, x, draws);
  const moment bk = second_moment(scheme<C, bucket_span>{comp, {bucket}}, layout, x, draws);
  const bounds b = lemma1_bounds(comp, layout, x);
  // Lemma 1 holds when the estimate is within 4 standard errors (and 1e-9 relative) of the bound
  const bool holds = lw.mean <= b.weighted * (1 + 1e-9) + 4 * lw.std_error;
  std::printf("| %-22s | %9.4f ± %.1e | %9.4f | %9.4f | %11.4f | %11.4g | %11.4g | %s |\n", name,
              lw.mean, lw.std_error, em.mean, bk.mean, b.weighted, b.max_layer, b.entire,
              holds ? "yes" : "NO");
  std::fflush(stdout);
}

template <class CW, class CM>
void pair_row(const char* name, const CW& w, const CM& m, const model_layout& layout) {
  double trace = 0, max_term = 0;
  for (const layer_info& l : layout.layers()) {
    const double t = (1.0 + w.omega(l.size).value_or(0.0)) * (1.0 + m.omega(l.size).value_or(0.0));
    trace += t;
    max_term = std::max(max_term, t);
  }
  const double L = static_cast<double>(layout.num_layers());
  const double d_term = (1.0 + w.omega(layout.total_size()).value_or(0.0)) *
                        (1.0 + m.omega(layout.total_size()).value_or(0.0));
  std::printf("| %-26s | %12.5g | %12.5g | %12.5g |\n", name, trace, L * max_term, L * d_term);
}

model_layout pick(const std::string& name) {
  if (name == "alexnet") {
    return models::alexnet_cifar10();
  }
  if (name == "resnet9") {
    return models::resnet9_cifar10();
  }
  if (name != "resnet50") {
    std::fprintf(stderr, "unknown layout '%s' (resnet50, resnet9, alexnet)\n", name.c_str());
    std::exit(2);
  }
  return models::resnet50_imagenet();
}

} // namespace

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "resnet50";
  const int draws = argc > 2 ? std::max(1, std::atoi(argv[2])) : 10;
  const model_layout layout = pick(name);
  const std::vector<float> x = realistic_gradient(layout, 2020);
  const std::size_t bucket = 1 << 16;
  std::printf("Lemma 1 on %s: %zu tensors, %zu parameters, %d draws, buckets of %zu\n\n",
              name.c_str(), layout.num_layers(), layout.total_size(), draws, bucket);
  std::printf("E|Q(x)|^2/|x|^2: layer-wise (LW), entire-model (EM), bucketed (BK); bounds: "
              "sum_j(1+W_j)|x_j|^2/|x|^2, max_j(1+W_j), 1+W(d)\n\n");
  std::printf("| %-22s | %19s | %9s | %9s | %11s | %11s | %11s | %s |\n", "operator", "LW", "EM",
              "BK", "sum bound", "max bound", "EM bound", "LW <= sum");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  row("QSGD s=255", qsgd{255}, layout, x, draws, bucket);
  row("QSGD s=15", qsgd{15}, layout, x, draws, bucket);
  row("QSGD s=1", qsgd{1}, layout, x, draws, bucket);
  row("TernGrad", terngrad{}, layout, x, draws, bucket);
  row("natural", natural{}, layout, x, draws, bucket);
  row("random-k 10% unbiased", random_k{0.1, true}, layout, x, draws, bucket);
  row("SR bf16", stochastic_rounding<bfloat16>{}, layout, x, draws, bucket);
  std::printf("\nNoise of a (Q_W, Q_M) pair: Trace(A) (layer-wise) vs L max_j and the entire-model "
              "L (1+W_M(d))(1+W_W(d))\n\n");
  std::printf("| %-26s | %12s | %12s | %12s |\n", "Q_W, Q_M", "Trace(A)", "L max_j", "L entire");
  std::printf("|---|---|---|---|\n");
  pair_row("QSGD s=15, identity", qsgd{15}, identity{}, layout);
  pair_row("QSGD s=15, QSGD s=15", qsgd{15}, qsgd{15}, layout);
  pair_row("TernGrad, QSGD s=255", terngrad{}, qsgd{255}, layout);
  pair_row("natural, natural", natural{}, natural{}, layout);
  pair_row("random-k 10% unb., QSGD s=15", random_k{0.1, true}, qsgd{15}, layout);
  return 0;
}
