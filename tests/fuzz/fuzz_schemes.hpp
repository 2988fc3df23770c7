// SPDX-License-Identifier: Apache-2.0
// The schemes and the layout the fuzz targets exercise, shared with the seed-corpus generator.
// A target's first input byte picks the scheme (modulo the family's count); the rest is the
// message (decoders) or the material of a gradient (round trip).
#pragma once

#include <gradcomp/gradcomp.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

namespace gradcomp::fuzz {

/// Spans of awkward sizes: empty, tiny, a 64-code block boundary, an odd bucket remainder.
inline model_layout fuzz_layout() {
  return model_layout::from_sizes({3, 0, 64, 65, 1, 130}, {"a", "e", "b", "c", "d", "f"});
}

/// Calls f(scheme) for scheme number `which` of a family.
template <class F>
void with_sparse_scheme(unsigned which, F&& f) {
  switch (which % 5) {
  case 0:
    return f(scheme<topk, layer_span>{{0.25}});
  case 1:
    return f(scheme<topk, flat_span, sparse_coo<half>>{{0.1}});
  case 2:
    return f(scheme<threshold_v, bucket_span>{{0.5}, {50}});
  case 3:
    return f(scheme<random_k, layer_span>{{0.3, false, true}});
  default:
    return f(scheme<adaptive_threshold, layer_span, sparse_coo<bfloat16>>{});
  }
}
template <class F>
void with_code_scheme(unsigned which, F&& f) {
  switch (which % 8) {
  case 0:
    return f(scheme<terngrad, layer_span>{});
  case 1:
    return f(scheme<qsgd, layer_span>{{255}});
  case 2:
    return f(scheme<qsgd, bucket_span>{{5, 16}, {40}});
  case 3:
    return f(scheme<sign_sgd, flat_span>{});
  case 4:
    return f(scheme<scaled_sign, layer_span>{});
  case 5:
    return f(scheme<natural, layer_span>{});
  case 6:
    return f(scheme<natural, flat_span, natural_codes<8>>{});
  default:
    return f(scheme<qsgd, flat_span>{{1}});
  }
}
template <class F>
void with_dense_scheme(unsigned which, F&& f) {
  switch (which % 4) {
  case 0:
    return f(scheme<identity, layer_span>{});
  case 1:
    return f(scheme<identity, flat_span, dense<half>>{});
  case 2:
    return f(scheme<stochastic_rounding<bfloat16>, layer_span>{});
  default:
    return f(scheme<topk, layer_span>{{0.5}, {}, {}, layer_rules{64, {}}}); // raw spans
  }
}
template <class F>
void with_composite_scheme(unsigned which, F&& f) {
  switch (which % 3) {
  case 0:
    return f(scheme<compose<topk, terngrad>, layer_span>{{{0.25}, {}}});
  case 1:
    return f(scheme<compose<threshold_v, qsgd>, flat_span>{{{0.5}, {15, 32}}});
  default:
    return f(scheme<compose<random_k, natural>, bucket_span>{{{0.3, true}, {}}, {60}});
  }
}

/// Fails loudly: libFuzzer reports the abort with the input that caused it.
inline void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

/// Decodes `msg` with the scheme's codec; on error the output must be untouched, on success the
/// decode must be repeatable and decode_add onto zeros must give the same values.
template <class Scheme>
void decode_one(const Scheme& s, std::span<const std::byte> msg) {
  codec<Scheme> c(s, fuzz_layout());
  std::vector<float> out(c.layout().total_size(), 42.0f);
  try {
    c.decode(cpu, msg, std::span<float>(out));
  } catch (const gradcomp::error&) {
    for (float v : out) {
      check(v == 42.0f);
    }
    return;
  }
  std::vector<float> again(out.size(), 0.0f);
  c.decode_add(cpu, msg, std::span<float>(again));
  for (std::size_t i = 0; i < out.size(); ++i) {
    check(detail::float_bits(out[i]) == detail::float_bits(again[i]) ||
          (out[i] == 0.0f && again[i] == 0.0f));
  }
}

} // namespace gradcomp::fuzz
