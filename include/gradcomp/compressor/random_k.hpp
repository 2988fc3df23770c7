// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../random/philox_batch.hpp"
#include "common.hpp"

#include <optional>
#include <string_view>

namespace gradcomp {

/// Random-k: keeps a uniformly random k-subset of each span.
///
/// Contract
/// - k = ceil(ratio * n), clamped to [1, n], exact (as topk). The subset is uniformly random,
///   drawn in O(k): draw j of a span is floor(w_j * n / 2^64), w_j the 64-bit Philox word of the
///   subset stream (seed, step, role, rank) at counter subset_rule::counter(j, n); the span keeps
///   the first k distinct draws, or, when k > n/2, all but the first n - k distinct draws
///   (sample_target_of). Identical on every backend and thread count; uniform to within n / 2^64
///   per draw; no two draws of a gradient below 2^40 elements share a counter.
/// - `unbiased = false` (as the paper ran it): Q(x) = x on the subset; E Q(x) = (k/n) x; Omega = 0.
///   `unbiased = true` (Wangni/Stich rand-k): values scaled by n/k at decode, in fp32; unbiased;
///   Omega = n/k - 1 exactly.
/// - `shared_seed = true`: the rank is left out of the key, so all workers draw the same subset;
///   the message carries no indices (the receiver regenerates them), as in GRACE and the paper's
///   sparsified_ddp.
/// - Payload: sparse. Parameter: ratio in (0, 1].
struct random_k {
  static constexpr compressor_id id = compressor_id::random_k;
  static constexpr std::string_view name = "random_k";
  static constexpr bool is_unbiased = false; ///< of the default (biased) mode; see unbiased
  static constexpr bool is_elementwise = false;
  using payload_kind = sparse_payload;

  double ratio = 0.01;
  bool unbiased = false;
  bool shared_seed = false;

  void validate() const { (void)detail::ratio_ppb(ratio, "random_k"); }
  [[nodiscard]] random_k with_parameter(double r) const {
    random_k c{r, unbiased, shared_seed};
    c.validate();
    return c;
  }
  [[nodiscard]] std::optional<double> omega(std::size_t n) const {
    if (!unbiased || n == 0) {
      return 0.0;
    }
    return static_cast<double>(n) / static_cast<double>(count(n)) - 1.0;
  }
  /// Bit 61 names the subset rule (set: the draws above), so that a peer that picks subsets
  /// otherwise refuses these messages instead of regenerating other indices.
  static constexpr std::uint64_t subset_by_draws = std::uint64_t{1} << 61;
  [[nodiscard]] std::uint64_t parameter_word() const {
    return detail::ratio_ppb(ratio, "random_k") | subset_by_draws |
           (std::uint64_t{unbiased} << 62) | (std::uint64_t{shared_seed} << 63);
  }
  [[nodiscard]] std::size_t count(std::size_t n) const {
    return detail::count_from_ppb(detail::ratio_ppb(ratio, "random_k"), n);
  }
  [[nodiscard]] std::size_t max_selected(std::size_t n) const { return count(n); }
  /// The value scale of a span of n elements from which k were kept.
  [[nodiscard]] float value_scale(std::size_t n, std::size_t k) const noexcept {
    return unbiased && k > 0 ? static_cast<float>(static_cast<double>(n) / static_cast<double>(k))
                             : 1.0f;
  }

  [[nodiscard]] bool indices_implied() const noexcept { return shared_seed; }
  static constexpr bool needs_span_max = false;

  /// The selection rule (a sample rule, compressor/selection_rule.hpp). Draws j < n of the span
  /// beginning at global element b use counters b + j, so spans never share a word; the rare
  /// draws j >= n (a span drawing more than n times) use counters r * 2^40 + b + (j - r n),
  /// r = j / n. fill_draws() makes sixteen per generator call on the CPU.
  struct subset_rule {
    random_stream stream;
    std::uint64_t global_begin = 0;
    [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint64_t draw(std::uint64_t j,
                                                          std::uint64_t n) const noexcept {
      return detail::mul_high64(stream.bits64(counter(j, n)), n);
    }
    void fill_draws(std::uint64_t j, std::size_t len, std::uint64_t n,
                    std::uint64_t* out) const noexcept {
      if (j + len > n) {
        for (std::size_t t = 0; t < len; ++t) {
          out[t] = draw(j + t, n);
        }
        return;
      }
      detail::bits64_words(stream, global_begin + j, len, out);
      for (std::size_t t = 0; t < len; ++t) {
        out[t] = detail::mul_high64(out[t], n);
      }
    }
    [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint64_t counter(std::uint64_t j,
                                                             std::uint64_t n) const noexcept {
      if (j < n) {
        return global_begin + j;
      }
      const std::uint64_t r = j / n;
      return (r << 40) + global_begin + (j - r * n);
    }
  };
  /// The rule of one span; it reads no gradient, so receivers regenerate a shared-seed subset.
  [[nodiscard]] subset_rule rule(const span_context& ctx) const noexcept {
    return {ctx.subset(shared_seed), ctx.global_begin};
  }
  friend bool operator==(const random_k&, const random_k&) = default;
};

} // namespace gradcomp
