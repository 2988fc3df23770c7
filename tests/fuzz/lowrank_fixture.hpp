// SPDX-License-Identifier: Apache-2.0
#pragma once
// The PowerSGD worker the fuzz_lowrank target feeds: a small layout with one compressed matrix,
// a vector and a matrix too small to compress; two workers of rank 2, layer-wise or entire-model.
// The first input byte picks the case: bit 0 the round whose sum the worker waits for (0: P,
// encode_q; 1: Q, decode), bit 1 entire-model.

#include <gradcomp/gradcomp.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace gradcomp::fuzz {

struct lowrank_case {
  powersgd worker;
  std::vector<std::byte> valid_sum; ///< the sum message the worker waits for
  bool waits_for_q = false;
};

inline lowrank_case make_lowrank_case(std::uint8_t selector) {
  const auto layout = model_layout::from_layers(
      {{"w", 0, 24 * 16, 24}, {"b", 24 * 16, 24, 0}, {"s", 24 * 16 + 24, 6, 3}});
  const powersgd_options opt{.rank = 2, .entire_model = (selector & 2u) != 0, .seed = 9};
  lowrank_case c{powersgd(layout, opt, 0), {}, (selector & 1u) != 0};
  powersgd other(layout, opt, 1);
  std::vector<float> g(layout.total_size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    g[i] = static_cast<float>((i * 37) % 101) * 0.01f - 0.5f;
  }
  std::array<std::vector<std::byte>, 2> m;
  c.worker.encode_p(g, m[0]);
  other.encode_p(std::vector<float>(g.rbegin(), g.rend()), m[1]);
  const std::array<std::span<const std::byte>, 2> views{m[0], m[1]};
  c.worker.sum(lowrank_round::p, views, c.valid_sum);
  if (c.waits_for_q) {
    const std::vector<std::byte> p_sum = c.valid_sum;
    c.worker.encode_q(p_sum, m[0]);
    other.encode_q(p_sum, m[1]);
    const std::array<std::span<const std::byte>, 2> qs{m[0], m[1]};
    c.worker.sum(lowrank_round::q, qs, c.valid_sum);
  }
  return c;
}

} // namespace gradcomp::fuzz
