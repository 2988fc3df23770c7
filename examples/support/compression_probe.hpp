// SPDX-License-Identifier: Apache-2.0
// The theory of Dutta et al. (AAAI 2020) measured on a training gradient: for one operator
// applied layer-wise and entire-model, per layer j and for the whole model, the second moment
// E|Q(x)_j|^2 (Assumption 5: 1 + Omega_j = E|Q(x_j)|^2 / |x_j|^2 as measured) and the
// compression error E|Q(x)_j - x_j|^2 (1 - delta_j as measured), over draws of the operator's
// randomness. Lemma 1's layer-wise bound sum_j (1 + Omega_j)|x_j|^2 / |x|^2 and max_j (1 +
// Omega_j) follow from the per-layer rows; the trainers write them to a CSV that
// scripts/reproduce_theory.py sets against the accuracy gap between the two granularities. The
// probe applies the operator to the gradient it is given: with error feedback the trainer's
// operator sees gradient + residual instead.
#pragma once

#include <gradcomp/runtime/any_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace gradcomp::examples {

/// Moments of one operator's output on one span of the gradient.
struct span_moments {
  double norm2 = 0;  ///< |x_j|^2
  double second = 0; ///< E|Q(x)_j|^2
  double error = 0;  ///< E|Q(x)_j - x_j|^2
};

/// The moments of `spec` applied to x over `draws` keys: one entry per layer of `layout`, then
/// one for the whole model (the sums). Deterministic operators give the same value every draw.
inline std::vector<span_moments> compression_moments(const std::string& spec,
                                                     const model_layout& layout,
                                                     std::span<const float> x, std::size_t draws,
                                                     std::uint64_t seed) {
  any_codec c(spec, layout);
  std::vector<float> q(x.size());
  std::vector<span_moments> m(layout.num_layers() + 1);
  for (std::size_t k = 0; k < draws; ++k) {
    c.apply(cpu, x, std::span<float>(q), stream_key{seed, k, 0});
    for (std::size_t j = 0; j < layout.num_layers(); ++j) {
      const layer_info& l = layout.layers()[j];
      for (std::size_t i = l.offset; i < l.offset + l.size; ++i) {
        const double v = x[i], e = static_cast<double>(q[i]) - v;
        m[j].second += static_cast<double>(q[i]) * q[i] / static_cast<double>(draws);
        m[j].error += e * e / static_cast<double>(draws);
        if (k == 0) {
          m[j].norm2 += v * v;
        }
      }
    }
  }
  span_moments& total = m.back();
  for (std::size_t j = 0; j < layout.num_layers(); ++j) {
    total.norm2 += m[j].norm2;
    total.second += m[j].second;
    total.error += m[j].error;
  }
  return m;
}

/// Appends probe rows to a CSV: per probed step, one row per layer and one for the model
/// ("model"), the layer-wise operator's moments beside the entire-model operator's. Each row
/// starts with the run's own columns (`run_header` names them), so rows join with the
/// trainer's per-epoch CSV.
class compression_probe {
public:
  compression_probe(const std::string& path, const std::string& run_header) {
    const bool fresh = !std::ifstream(path).good();
    csv_.open(path, std::ios::app);
    if (!csv_) {
      throw std::runtime_error("cannot open the probe CSV '" + path + "'");
    }
    if (fresh) {
      csv_ << run_header << ",epoch,step,layer,size,norm2,lw_second,lw_error,em_second,em_error\n";
    }
  }

  /// Probes x (a worker's gradient before compression) with the operator's layer-wise and
  /// entire-model specs.
  void record(const std::string& run_columns, std::size_t epoch, std::uint64_t step,
              const std::string& lw_spec, const std::string& em_spec, const model_layout& layout,
              std::span<const float> x, std::size_t draws) {
    const auto lw = compression_moments(lw_spec, layout, x, draws, 101 + step);
    const auto em = compression_moments(em_spec, layout, x, draws, 101 + step);
    for (std::size_t j = 0; j < lw.size(); ++j) {
      const bool model = j == layout.num_layers();
      csv_ << run_columns << ',' << epoch << ',' << step << ','
           << (model ? std::string("model") : layout.layers()[j].name) << ','
           << (model ? layout.total_size() : layout.layers()[j].size) << ',' << lw[j].norm2 << ','
           << lw[j].second << ',' << lw[j].error << ',' << em[j].second << ',' << em[j].error
           << '\n';
    }
    csv_.flush();
  }

private:
  std::ofstream csv_;
};

} // namespace gradcomp::examples
