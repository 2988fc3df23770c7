// SPDX-License-Identifier: Apache-2.0
// One bidirectional step of Algorithm 1 with error feedback on both sides (the README example):
// 4 workers send top-k 1% with EF-SGD residuals, the master averages and re-compresses with
// QSGD s=15 and its own residual, every worker decodes the same update.
#include <gradcomp/gradcomp.hpp>

#include <cstdio>
#include <random>
#include <vector>

int main() {
  using namespace gradcomp;
  const model_layout layout = models::resnet9_cifar10();
  using W = scheme<topk, layer_span>; // Q_W: top-k 1% per layer
  using M = scheme<qsgd, layer_span>; // Q_M: QSGD s=15 per layer
  const std::size_t n = 4;
  const std::uint64_t seed = 42, step = 0;
  const float lr = 0.1f;

  std::vector<worker<W, M>> workers;
  for (std::uint32_t r = 0; r < n; ++r)
    workers.emplace_back(W{{0.01}}, M{{15}}, layout, r, worker<W, M>::options{seed, true});
  master<W, M> root(W{{0.01}}, M{{15}}, layout, n, {seed, aggregation::mean, true});

  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, 1e-3f);
  std::vector<float> grad(layout.total_size()), update(layout.total_size());
  std::size_t bytes_up = 0;
  root.begin(step);
  for (auto& w : workers) {
    for (auto& g : grad)
      g = noise(rng);                                                   // this worker's gradient
    auto msg = w.compress(cpu, std::span<const float>(grad), step, lr); // EF on lr * g
    root.receive(cpu, msg); // over the network in a real run
    bytes_up += msg.size();
  }
  auto broadcast = root.broadcast(cpu); // Q_M(mean), with the master's EF
  workers[0].decompress(cpu, broadcast, step, std::span<float>(update));
  // every worker now applies x -= update (EF on updates: the learning rate is already in it)
  std::printf("%zu parameters: %zu bytes up per worker, %zu bytes broadcast\n", layout.total_size(),
              bytes_up / n, broadcast.size());
  return 0;
}
