// SPDX-License-Identifier: Apache-2.0
// Built against an installed gradcomp by the package test; returns 0 when a round trip works.
#include <gradcomp/gradcomp.hpp>

#include <vector>

int main() {
  using namespace gradcomp;
  codec c(scheme<topk, layer_span>{{0.5}}, model_layout::from_sizes({4, 2}));
  std::vector<float> g{1.f, -4.f, 2.f, 0.5f, 3.f, -1.f}, q(6);
  c.apply(cpu, std::span<const float>(g), std::span<float>(q), stream_key{});
  const std::vector<float> want{0.f, -4.f, 2.f, 0.f, 3.f, 0.f};
  return q == want ? 0 : 1;
}
