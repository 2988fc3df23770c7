// SPDX-License-Identifier: Apache-2.0
// gradcomp demo: every registered scheme (runtime::example_specs(): each operator's example
// settings and encodings, and the compositions) on the ResNet-50 layout (161 tensors, 25.6M
// parameters) with realistic per-layer gradient scales, layer-wise vs entire-model: bits per
// element, compression ratio, relative error |Q(x) - x|^2 / |x|^2, and single-thread CPU
// throughput of compress+encode (GB/s of fp32 input).
//
//   demo              every example spec
//   demo topk qsgd    the example specs containing "topk" or "qsgd"

#include "support/realistic_gradient.hpp"

#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/any_codec.hpp>

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

result measure(const std::string& spec, const model_layout& layout, const std::vector<float>& x) {
  any_codec c(spec, layout);
  std::vector<std::byte> msg(c.max_encoded_bytes<float>());
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

/// One row: `spec` (an example spec, "/flat/" in it) layer-wise and entire-model.
void row(std::string spec, const model_layout& layout, const std::vector<float>& x) {
  const result em = measure(spec, layout, x);
  const std::size_t at = spec.find("/flat/");
  const result lw = measure(std::string(spec).replace(at, 6, "/layer/"), layout, x);
  const std::string name = spec.erase(at, 5);
  std::printf("| %-40s | %8.3f | %8.3f | %7.1fx | %10.3e | %10.3e | %6.2f | %6.2f |\n",
              name.c_str(), lw.bits_per_elem, em.bits_per_elem, 32.0 / lw.bits_per_elem,
              lw.rel_error, em.rel_error, lw.gbps, em.gbps);
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

/// Whether `spec` contains one of the filters (all specs when none is given).
bool chosen(const std::string& spec, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (spec.find(argv[i]) != std::string::npos) {
      return true;
    }
  }
  return argc < 2;
}

} // namespace

int main(int argc, char** argv) {
  const model_layout layout = models::resnet50_imagenet();
  const std::vector<float> x = realistic_gradient(layout, 2020);
  std::printf("gradcomp %d.%d.%d demo: ResNet-50 layout, %zu tensors, %zu parameters\n",
              version_major, version_minor, version_patch, layout.num_layers(),
              layout.total_size());
  std::printf("layer-wise (LW) vs entire-model (EM); rel. error = |Q(x)-x|^2/|x|^2; GB/s = fp32 "
              "input rate of compress+encode, one thread (memcpy here: %.1f GB/s)\n\n",
              memcpy_gbps(x));
  std::printf("| %-40s | %8s | %8s | %8s | %10s | %10s | %6s | %6s |\n",
              "spec (granularity /layer or /flat)", "bits LW", "bits EM", "ratio LW", "error LW",
              "error EM", "GB/s LW", "GB/s EM");
  std::printf(
      "|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(42, '-').c_str(), std::string(10, '-').c_str(),
      std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(12, '-').c_str(),
      std::string(12, '-').c_str(), std::string(8, '-').c_str(), std::string(8, '-').c_str());
  for (const std::string& spec : runtime::example_specs()) {
    if (chosen(spec, argc, argv)) {
      row(spec, layout, x);
    }
  }
  std::printf("\nLayer-wise scales are finer: TernGrad and QSGD lose less layer-wise; elementwise "
              "operators (threshold, sign, natural, SR) are identical both ways.\n");
  return 0;
}
