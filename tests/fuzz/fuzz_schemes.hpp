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

/// How many schemes each family has (scheme numbers are taken modulo these).
inline constexpr unsigned sparse_schemes = 7, code_schemes = 8, dense_schemes = 4,
                          composite_schemes = 3;

/// Calls f(scheme) for scheme number `which` of a family.
template <class F>
void with_sparse_scheme(unsigned which, F&& f) {
  switch (which % sparse_schemes) {
  case 0:
    return f(scheme<topk, layer_span>{{0.25}});
  case 1:
    return f(scheme<topk, flat_span, sparse_coo<half>>{{0.1}});
  case 2:
    return f(scheme<threshold_v, bucket_span>{{0.5}, {50}});
  case 3:
    return f(scheme<random_k, layer_span>{{0.3, false, true}});
  case 4: // value-scaled spans: every stored value times n/k
    return f(scheme<random_k, layer_span, sparse_coo<bfloat16>>{{0.3, true, false}});
  case 5:
    return f(scheme<random_k, flat_span>{{0.05, true, true}});
  default:
    return f(scheme<adaptive_threshold, layer_span, sparse_coo<bfloat16>>{});
  }
}
template <class F>
void with_code_scheme(unsigned which, F&& f) {
  switch (which % code_schemes) {
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
  switch (which % dense_schemes) {
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
  switch (which % composite_schemes) {
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

/// Decodes `msg` with the scheme's codec into an output of type T; on error the output must be
/// untouched, on success every value finite, the decode repeatable, and decode_add onto zeros
/// must give the same values.
template <class T, class Scheme>
void decode_into(codec<Scheme>& c, std::span<const std::byte> msg) {
  const T sentinel = from_float<T>(42.0f);
  std::vector<T> out(c.layout().total_size(), sentinel);
  try {
    c.decode(cpu, msg, std::span<T>(out));
  } catch (const gradcomp::error&) {
    for (T v : out) {
      check(v == sentinel);
    }
    return;
  }
  std::vector<T> again(out.size(), from_float<T>(0.0f));
  c.decode_add(cpu, msg, std::span<T>(again));
  for (std::size_t i = 0; i < out.size(); ++i) {
    const float a = to_float(out[i]), b = to_float(again[i]);
    check(!detail::is_non_finite(a));
    check(detail::float_bits(a) == detail::float_bits(b) || (a == 0.0f && b == 0.0f));
  }
}

/// decode_into for fp32 outputs and for fp16 ones (where a finite fp32 value may overflow).
template <class Scheme>
void decode_one(const Scheme& s, std::span<const std::byte> msg) {
  codec<Scheme> c(s, fuzz_layout());
  decode_into<float>(c, msg);
  decode_into<half>(c, msg);
}

} // namespace gradcomp::fuzz
