// SPDX-License-Identifier: Apache-2.0
// The README's usage example: compress a model's gradient layer by layer, send it, decode it.
#include <gradcomp/gradcomp.hpp>

#include <cstdio>
#include <vector>

int main() {
  using namespace gradcomp;
  // 1. The model's layers as they sit in one flat gradient buffer.
  const model_layout layout =
      model_layout::from_sizes({4096, 64, 1000}, {"conv.weight", "conv.bias", "fc.weight"});
  // 2. Compressor, granularity and encoding at compile time; parameters at run time.
  codec c(scheme<topk, layer_span, sparse_coo<half>>{{0.01}}, layout);
  std::vector<float> grad(layout.total_size(), 0.5f);
  grad[7] = -3.0f;
  // 3. Compress + encode into a buffer sized up front; decode on the receiving side.
  std::vector<std::byte> msg(c.max_encoded_bytes<float>());
  const std::size_t bytes = c.encode(cpu, std::span<const float>(grad), std::span<std::byte>(msg),
                                     stream_key{.seed = 42, .step = 0});
  std::vector<float> received(grad.size());
  c.decode(cpu, std::span<const std::byte>(msg.data(), bytes), std::span<float>(received));
  std::printf("%zu floats -> %zu bytes; received[7] = %g\n", grad.size(), bytes, received[7]);
  return received[7] == -3.0f ? 0 : 1;
}
