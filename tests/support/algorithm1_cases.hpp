// SPDX-License-Identifier: Apache-2.0
// Algorithm 1 (workers with Q_W and error feedback, a master with Q_M and its own error
// feedback) written once for every backend: run_algorithm1 takes a backend fixture and returns
// what it produced as host data. The CPU suite checks the CPU run against a direct computation
// from codec calls (check_against_reference); the CUDA suite checks the device run against the
// CPU run, bit for bit. run_cluster does the same through in_process_cluster.
//
// A fixture has: `using backend_tag`, `exec` (its policy), `buffer<T>(n)` (zero-filled, in the
// backend's memory), `upload(host vector)` -> buffer, and `download(span)` -> host vector.
#pragma once

#include <gradcomp/gradcomp.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace gradcomp::test {

/// Everything one run produced, on the host.
struct algorithm1_record {
  std::vector<std::vector<float>> grads;               ///< [step * workers + r]
  std::vector<std::vector<std::byte>> worker_messages; ///< [step * workers + r]
  std::vector<std::vector<std::byte>> broadcasts;      ///< [step]
  std::vector<std::vector<float>> updates;             ///< [step]: worker 0's decode
  std::vector<std::vector<float>> worker_residuals;    ///< [r], after the last step
  std::vector<float> master_residual;                  ///< after the last step
};

struct algorithm1_setup {
  std::size_t workers = 3;
  std::uint64_t steps = 3;
  std::uint64_t seed = 11;
  float lr = 0.125f; ///< error feedback on updates: p = lr * g + e
  aggregation rule = aggregation::mean;
  bool share_scales = false; ///< run_cluster only: TernGrad's scaler sharing
};

/// A deterministic gradient of dyadic values with a few large entries (selection has ties to
/// break and levels to round).
inline std::vector<float> algorithm1_gradient(std::size_t n, std::uint64_t salt) {
  std::vector<float> g(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t h = (i + 1) * 0x9e3779b97f4a7c15ull ^ (salt * 0xbf58476d1ce4e5b9ull);
    g[i] = static_cast<float>(static_cast<std::int64_t>(h >> 52) - 2048) / 256.0f;
  }
  return g;
}

template <class Fixture, class W, class M>
algorithm1_record run_algorithm1(Fixture& fx, const W& q_w, const M& q_m,
                                 const model_layout& layout, const algorithm1_setup& setup) {
  using B = typename Fixture::backend_tag;
  const std::size_t n = layout.total_size();
  std::vector<worker<W, M, B>> workers;
  workers.reserve(setup.workers);
  for (std::size_t r = 0; r < setup.workers; ++r) {
    workers.emplace_back(q_w, q_m, layout, static_cast<std::uint32_t>(r),
                         typename worker<W, M, B>::options{setup.seed, true});
  }
  master<W, M, B> m(q_w, q_m, layout, setup.workers,
                    typename master<W, M, B>::options{setup.seed, setup.rule, true});
  auto update = fx.template buffer<float>(n);
  algorithm1_record rec;
  for (std::uint64_t step = 0; step < setup.steps; ++step) {
    m.begin(step);
    for (std::size_t r = 0; r < setup.workers; ++r) {
      rec.grads.push_back(algorithm1_gradient(n, step * 131 + r));
      const auto grad = fx.upload(rec.grads.back());
      const std::span<const std::byte> msg =
          workers[r].compress(fx.exec, std::span<const float>(grad.data(), n), step, setup.lr);
      rec.worker_messages.push_back(fx.download(msg));
      m.receive(fx.exec, msg);
    }
    const std::span<const std::byte> bc = m.broadcast(fx.exec);
    rec.broadcasts.push_back(fx.download(bc));
    for (auto& w : workers) {
      w.decompress(fx.exec, bc, step, std::span<float>(update.data(), n));
    }
    rec.updates.push_back(fx.download(std::span<const float>(update.data(), n)));
  }
  for (auto& w : workers) {
    rec.worker_residuals.push_back(fx.download(w.memory().residual()));
  }
  rec.master_residual = fx.download(m.memory().residual());
  return rec;
}

/// What an in-process cluster's run produced, on the host.
struct cluster_record {
  std::vector<std::vector<float>> updates; ///< [step]
  std::vector<step_stats> stats;           ///< [step]
};

/// The same run through in_process_cluster<W, M, backend> (error feedback on both sides, errors
/// measured): its updates must equal run_algorithm1's.
template <class Fixture, class W, class M>
cluster_record run_cluster(Fixture& fx, const W& q_w, const M& q_m, const model_layout& layout,
                           const algorithm1_setup& setup) {
  using B = typename Fixture::backend_tag;
  const std::size_t n = layout.total_size();
  typename in_process_cluster<W, M, B>::options opt;
  opt.seed = setup.seed;
  opt.rule = setup.rule;
  opt.worker_feedback = true;
  opt.master_feedback = true;
  opt.share_scales = setup.share_scales;
  in_process_cluster<W, M, B> cluster(q_w, q_m, layout, setup.workers, opt);
  auto update = fx.template buffer<float>(n);
  cluster_record rec;
  for (std::uint64_t step = 0; step < setup.steps; ++step) {
    std::vector<decltype(fx.upload(std::vector<float>{}))> grads;
    std::vector<std::span<const float>> views;
    grads.reserve(setup.workers);
    for (std::size_t r = 0; r < setup.workers; ++r) {
      grads.push_back(fx.upload(algorithm1_gradient(n, step * 131 + r)));
      views.emplace_back(grads.back().data(), n);
    }
    rec.stats.push_back(cluster.step(fx.exec, std::span<const std::span<const float>>(views), step,
                                     setup.lr, std::span<float>(update.data(), n)));
    rec.updates.push_back(fx.download(std::span<const float>(update.data(), n)));
  }
  return rec;
}

/// The host fixture: std::vector buffers, `cpu` policy.
struct cpu_fixture {
  using backend_tag = cpu_tag;
  cpu_policy exec = cpu;
  template <class T>
  std::vector<T> buffer(std::size_t n) const {
    return std::vector<T>(n);
  }
  template <class T>
  std::vector<T> upload(const std::vector<T>& v) const {
    return v;
  }
  template <class T>
  std::vector<std::remove_const_t<T>> download(std::span<T> s) const {
    return {s.begin(), s.end()};
  }
};

} // namespace gradcomp::test
