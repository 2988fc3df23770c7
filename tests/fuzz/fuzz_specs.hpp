// SPDX-License-Identifier: Apache-2.0
// The schemes the fuzz targets exercise, from the scheme registry: a few settings chosen to be
// hostile (raw spans, tiny scale groups, value-scaled spans) and every example spec
// (runtime::example_specs()) entire-model, layer-wise and in small buckets over an awkward layout.
// Shared with the seed-corpus generator. A target's first two input bytes pick the spec (modulo
// their count); the rest is the message (decoder) or the material of a gradient (round trip).
#pragma once

#include "../support/specs.hpp"

#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/any_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gradcomp::fuzz {

/// Spans of awkward sizes: empty, tiny, a 64-code block boundary, an odd bucket remainder.
inline model_layout fuzz_layout() {
  return model_layout::from_sizes({3, 0, 64, 65, 1, 130}, {"a", "e", "b", "c", "d", "f"});
}

/// The fuzzed specs: settings chosen to be hostile, then the registry's examples over three
/// granularities. The checked-in reproducers (tests/fuzz/regressions/) select the first entries
/// by number: append new hostile settings at the end of that list, never in front.
inline const std::vector<std::string>& fuzz_specs() {
  static const std::vector<std::string> specs = [] {
    std::vector<std::string> out{
        "identity/flat/f16",                               // regressions: fp16 overflow
        "qsgd:255/layer",                                  // norm * level overflow
        "compose(threshold_v:0.5,qsgd:15,bucket=32)/flat", // the same, in a composition
        "topk:0.5/layer/identity_below=64",                // raw spans beside sparse ones
        "qsgd:5,bucket=16/bucket:40",
        "qsgd:1/flat",
        "terngrad:clip=2.5/layer",
        "random_k:0.3,unbiased/layer/coo-bf16", // stored values times n/k
        "random_k:0.05,unbiased,shared_seed/flat",
        "threshold_v:0.5/bucket:50",
        "compose(random_k:0.3,natural)/bucket:60",
        "topk:0.5/layer/coo-f32-ef",              // Elias-Fano with one low bit
        "threshold_v:0.5/bucket:50/coo-bf16-ef"}; // Elias-Fano, a count per bucket
    for (const std::string& s : runtime::example_specs()) {
      for (const char* g : {"flat", "layer", "bucket:40"}) {
        out.push_back(test::with_granularity(s, g));
      }
    }
    return out;
  }();
  return specs;
}

/// Input bytes that select the spec.
inline constexpr std::size_t selector_bytes = 2;

/// The spec the first selector_bytes of an input select.
inline const std::string& selected_spec(const std::uint8_t* data) {
  const std::size_t v = data[0] | static_cast<std::size_t>(data[1]) << 8;
  return fuzz_specs()[v % fuzz_specs().size()];
}

/// The selector bytes of spec number i.
inline std::vector<std::byte> selector(std::size_t i) {
  return {static_cast<std::byte>(i & 0xff), static_cast<std::byte>(i >> 8)};
}

/// Whether every value spec decodes is zero or the input's own value: the sparsifiers that send
/// values unscaled, with fp32 values (raw spans included).
inline bool keeps_input_values(std::string_view spec) {
  const auto has = [&](std::string_view part) { return spec.find(part) != spec.npos; };
  const bool sparsifier = spec.starts_with("topk:") || spec.starts_with("threshold_v:") ||
                          spec.starts_with("adaptive_threshold/") ||
                          (spec.starts_with("random_k:") && !has("unbiased"));
  return sparsifier && !has("coo-f16") && !has("coo-bf16");
}

/// Fails loudly: libFuzzer reports the abort with the input that caused it.
inline void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

/// Decodes `msg` into an output of type T; on error the output must be untouched, on success every
/// value finite, and decode_add onto zeros must give the same values.
template <class T>
void decode_into(any_codec& c, std::span<const std::byte> msg) {
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

} // namespace gradcomp::fuzz
