// SPDX-License-Identifier: Apache-2.0
// gradcomp demo: every operator on the ResNet-50 layout (161 tensors, 25.6M parameters) with
// realistic per-layer gradient scales, layer-wise vs entire-model: bits per element, compression
// ratio, relative error |Q(x) - x|^2 / |x|^2, and single-thread CPU throughput of
// compress+encode (GB/s of fp32 input).

#include "support/realistic_gradient.hpp"

#include <gradcomp/gradcomp.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace gradcomp;
using gradcomp::examples::realistic_gradient;

namespace {

struct result {
  double bits_per_elem = 0, rel_error = 0, gbps = 0;
};

template <class Scheme>
result measure(const Scheme& s, const model_layout& layout, const std::vector<float>& x) {
  codec<Scheme> c(s, layout);
  std::vector<std::byte> msg(c.template max_encoded_bytes<float>());
  std::vector<float> q(x.size());
  result r;
  double best = 1e30;
  std::size_t bytes = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    bytes = c.encode(cpu, std::span<const float>(x), std::span<std::byte>(msg),
                     stream_key{7, static_cast<std::uint64_t>(rep)});
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  c.decode(cpu, std::span<const std::byte>(msg.data(), bytes), std::span<float>(q));
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(q[i]) - x[i];
    err += d * d;
    norm += static_cast<double>(x[i]) * x[i];
  }
  r.bits_per_elem = 8.0 * static_cast<double>(bytes) / static_cast<double>(x.size());
  r.rel_error = err / norm;
  r.gbps = 4.0 * static_cast<double>(x.size()) / best / 1e9;
  return r;
}

template <class C, class E = default_encoding_t<C>>
void row(const char* name, const C& comp, const model_layout& layout, const std::vector<float>& x) {
  const result lw = measure(scheme<C, layer_span, E>{comp}, layout, x);
  const result em = measure(scheme<C, flat_span, E>{comp}, layout, x);
  std::printf("| %-24s | %8.3f | %8.3f | %7.1fx | %10.3e | %10.3e | %6.2f | %6.2f |\n", name,
              lw.bits_per_elem, em.bits_per_elem, 32.0 / lw.bits_per_elem, lw.rel_error,
              em.rel_error, lw.gbps, em.gbps);
  std::fflush(stdout);
}

double memcpy_gbps(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(y.data(), x.data(), x.size() * 4);
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 4.0 * static_cast<double>(x.size()) / best / 1e9 + 0.0 * y[0];
}

} // namespace

int main() {
  const model_layout layout = models::resnet50_imagenet();
  const std::vector<float> x = realistic_gradient(layout, 2020);
  std::printf("gradcomp %d.%d.%d demo: ResNet-50 layout, %zu tensors, %zu parameters\n",
              version_major, version_minor, version_patch, layout.num_layers(),
              layout.total_size());
  std::printf("layer-wise (LW) vs entire-model (EM); rel. error = |Q(x)-x|^2/|x|^2; GB/s = fp32 "
              "input rate of compress+encode, one thread (memcpy here: %.1f GB/s)\n\n",
              memcpy_gbps(x));
  std::printf("| %-24s | %8s | %8s | %8s | %10s | %10s | %6s | %6s |\n", "operator", "bits LW",
              "bits EM", "ratio LW", "error LW", "error EM", "GB/s LW", "GB/s EM");
  std::printf(
      "|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(26, '-').c_str(), std::string(10, '-').c_str(),
      std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(12, '-').c_str(),
      std::string(12, '-').c_str(), std::string(8, '-').c_str(), std::string(8, '-').c_str());
  row("identity (fp32)", identity{}, layout, x);
  row<identity, dense<half>>("identity (fp16)", identity{}, layout, x);
  row("top-k 1%", topk{0.01}, layout, x);
  row("top-k 0.1%", topk{0.001}, layout, x);
  row("random-k 1%", random_k{0.01}, layout, x);
  row("random-k 1% unbiased", random_k{0.01, true}, layout, x);
  row("random-k 1% shared seed", random_k{0.01, false, true}, layout, x);
  row("threshold-v 1e-4", threshold_v{1e-4}, layout, x);
  row("adaptive threshold", adaptive_threshold{}, layout, x);
  row("TernGrad", terngrad{}, layout, x);
  row("TernGrad 2.5 sigma clip", terngrad{true}, layout, x);
  row("QSGD s=255", qsgd{255}, layout, x);
  row("QSGD s=15", qsgd{15}, layout, x);
  row("QSGD s=15 bucket 128", qsgd{15, 128}, layout, x);
  row("signSGD", sign_sgd{}, layout, x);
  row("scaled sign", scaled_sign{}, layout, x);
  row("natural (9 bit)", natural{}, layout, x);
  row<natural, natural_codes<8>>("natural (8 bit)", natural{}, layout, x);
  row("stoch. rounding bf16", stochastic_rounding<bfloat16>{}, layout, x);
  row("stoch. rounding fp16", stochastic_rounding<half>{}, layout, x);
  std::printf("\nLayer-wise scales are finer: TernGrad and QSGD lose less layer-wise; elementwise "
              "operators (threshold, sign, natural, SR) are identical both ways.\n");
  return 0;
}
