// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "../encoding/sparse_codes.hpp"
#include "../encoding/wire_header.hpp"
#include "../error.hpp"
#include "../payload.hpp"
#include "common.hpp"
#include "selection_rule.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

/// @file
/// compose<S, Q>: a sparsifier S followed by a quantizer Q of the kept values, as one compressor
/// with its own encoding (sparse_codes): Top-k + TernGrad = sparse ternary, Top-k + QSGD,
/// Random-k + natural, ... Q's scales (TernGrad's max, QSGD's norm) are computed over the kept
/// values only, which is the point of composing: the scale fits what is sent.
///
/// Contract
/// - Q(S(x)) with S's selection (and S's value scale, e.g. n/k for unbiased random-k) applied
///   before quantizing. Unbiased when both are. Omega = (1 + Omega_S(n))(1 + Omega_Q(k)) - 1
///   with k = S's count for n elements, where both exist.
/// - Q's randomness is keyed by the span's global offset plus the position among the kept
///   values, so it stays within the span's index range (distinct spans never share a counter).
/// - Shared-seed random-k is not composable (the indices travel; use plain random-k).
/// - with_parameter (per-layer overrides) replaces S's main parameter (its ratio or threshold).

namespace gradcomp {

template <class S, class Q>
struct compose {
  static_assert(std::is_same_v<typename S::payload_kind, sparse_payload> && sparsifier<S>,
                "gradcomp::compose<S, Q>: S must be a sparsifier (topk, random_k, threshold_v, "
                "adaptive_threshold; compressor/selection_rule.hpp)");
  static_assert(
      requires(const Q& q) { q.num_scales(std::size_t{}); },
      "gradcomp::compose<S, Q>: Q must be a quantizer with a fixed-width code "
      "encoding (terngrad, qsgd, natural, sign_sgd, scaled_sign)");

  using sparsifier_type = S;
  using quantizer_type = Q;
  static constexpr compressor_id id = compressor_id::composite;
  static constexpr std::string_view name = "composite";
  static constexpr bool is_unbiased = S::is_unbiased && Q::is_unbiased;
  static constexpr bool is_elementwise = false;
  using payload_kind = sparse_quantized_payload<typename Q::payload_kind>;

  S sparsifier{};
  Q quantizer{};

  void validate() const {
    sparsifier.validate();
    quantizer.validate();
    detail::require(!sparsifier.indices_implied(), errc::invalid_parameter,
                    "compose: a sparsifier whose indices are implied (shared-seed random-k) "
                    "cannot be composed (the composite sends its indices)");
  }
  [[nodiscard]] compose with_parameter(double p) const {
    compose c{sparsifier.with_parameter(p), quantizer};
    c.validate();
    return c;
  }
  /// The number of values S keeps for n elements (its count, or at most n).
  [[nodiscard]] std::size_t max_selected(std::size_t n) const { return sparsifier.max_selected(n); }
  [[nodiscard]] std::optional<double> omega(std::size_t n) const {
    std::size_t k = n;
    if constexpr (keeps_fixed_count<S>) {
      k = sparsifier.count(n);
    }
    const std::optional<double> ws = sparsifier.omega(n), wq = quantizer.omega(k);
    if (!ws || !wq) {
      return std::nullopt;
    }
    return (1.0 + *ws) * (1.0 + *wq) - 1.0;
  }
  [[nodiscard]] std::uint64_t parameter_word() const {
    detail::digest_builder d;
    d.add(static_cast<std::uint64_t>(S::id));
    d.add(sparsifier.parameter_word());
    d.add(static_cast<std::uint64_t>(Q::id));
    d.add(quantizer.parameter_word());
    return d.value();
  }
  friend bool operator==(const compose&, const compose&) = default;
};

} // namespace gradcomp
