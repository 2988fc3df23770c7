// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "common.hpp"

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

/// @file
/// What a sparsifier keeps, said once for every backend. A sparsifier's rule(ctx) gives, for one
/// span and one call, a small value type with GRADCOMP_HOST_DEVICE members that the CPU selection
/// and the CUDA kernels evaluate alike, on `xs` (the span's first element) and a span-local index:
/// - a top-keys rule (`key_type`, `key(xs, i)`): the span keeps the count(n) elements of largest
///   key, ties to the lower index (top-k: |x| bits; random-k: complemented Philox words);
/// - a predicate rule (`keep(xs, i)`): the span keeps every element where it holds;
/// - a sample rule (`draw(j, n)`): the span keeps a count(n)-subset of indices that depends on no
///   value, made from a sequence of index draws in [0, n) (sample_target below).
/// Beside the rule a sparsifier states its traits: whether receivers regenerate the indices
/// (indices_implied), the scale its decoded values carry (value_scale), and whether its rule
/// needs the span's max |x| in ctx.max_abs_bits (needs_span_max).

namespace gradcomp {

template <class R>
concept top_keys_rule = requires(const R& r, const float* xs, std::uint64_t i) {
  typename R::key_type;
  { r.key(xs, i) } -> std::same_as<typename R::key_type>;
};
/// A top-keys rule whose key(xs, i) is abs_bits(xs[i]) (top-k's; it says so with
/// `static constexpr bool key_is_abs_bits = true`): its selection's filter pass also gives the
/// span's max |x|, so an encode reads the span once for both.
template <class R>
concept magnitude_key_rule = top_keys_rule<R> && requires {
  requires R::key_is_abs_bits;
};
template <class R>
concept predicate_rule = requires(const R& r, const float* xs, std::uint64_t i) {
  { r.keep(xs, i) } -> std::same_as<bool>;
};

/// A predicate rule that keeps exactly the elements with abs_bits(xs[i]) >= lowest_bits
/// (threshold-v's; it says so with `static constexpr bool keep_is_abs_bits_at_least = true`): the
/// CPU filters it as keys against a threshold, and its pass also gives the span's max |x|.
template <class R>
concept magnitude_threshold_rule = predicate_rule<R> && requires(const R& r) {
  requires R::keep_is_abs_bits_at_least;
  { r.lowest_bits } -> std::convertible_to<std::uint32_t>;
};

template <class C>
using selection_rule_t = decltype(std::declval<const C&>().rule(span_context{}));

/// A sample rule draws index j of a span of n elements: draw(j, n) < n, a pure function of
/// (rule, j, n), so every backend and thread count sees the same sequence.
template <class R>
concept sample_rule = requires(const R& r, std::uint64_t j, std::uint64_t n) {
  { r.draw(j, n) } -> std::same_as<std::uint64_t>;
};

/// What a sample rule's span keeps, in O(k) draws: the first `distinct` distinct indices of the
/// draw sequence j = 0, 1, 2, ... are marked. With `complement` (k > n/2, so that the marked set
/// stays at most half of the span) the span keeps every index that is not marked, else it keeps
/// the marked ones. Of i.i.d. uniform draws, both give a uniformly random k-subset.
struct sample_target {
  std::uint64_t distinct = 0;
  bool complement = false;
};
[[nodiscard]] GRADCOMP_HOST_DEVICE constexpr sample_target sample_target_of(std::uint64_t n,
                                                                            std::uint64_t k) {
  return k > n - k ? sample_target{n - k, true} : sample_target{k, false};
}

/// How many draws a span of n may take before its rule counts as broken: 64 n + 64. At most n/2
/// distinct indices are ever sought, and i.i.d. uniform draws miss them in 64 n draws with
/// probability below 2^-n.
[[nodiscard]] GRADCOMP_HOST_DEVICE constexpr std::uint64_t sample_draw_limit(std::uint64_t n) {
  return 64 * n + 64;
}

/// A sparsifier as both backends use it; a top-keys or sample sparsifier also gives count(n).
template <class C>
concept sparsifier = requires(const C& c, const span_context& ctx, std::size_t n) {
  {c.rule(ctx)};
  { c.indices_implied() } -> std::same_as<bool>;
  { c.value_scale(n, n) } -> std::same_as<float>;
  { c.max_selected(n) } -> std::same_as<std::size_t>;
  { C::needs_span_max } -> std::convertible_to<bool>;
}
&&(((top_keys_rule<selection_rule_t<C>> ||
     sample_rule<selection_rule_t<C>>)&&requires(const C& c, std::size_t n) {
     { c.count(n) } -> std::same_as<std::size_t>;
   }) ||
   predicate_rule<selection_rule_t<C>>);

/// Whether C keeps a fixed count(n) per span (top keys, sample) rather than a data-dependent one.
template <class C>
inline constexpr bool keeps_fixed_count =
    top_keys_rule<selection_rule_t<C>> || sample_rule<selection_rule_t<C>>;

namespace detail {

/// The readable error of a policy used as a sparsifier that is not one.
template <class C>
constexpr bool require_sparsifier() {
  static_assert(
      sparsifier<C>,
      "gradcomp: not a sparsifier. It needs rule(ctx) giving a top-keys or sample rule "
      "(with count(n)) or a predicate rule (compressor/selection_rule.hpp), indices_implied(), "
      "value_scale(n, k), max_selected(n) and needs_span_max");
  return true;
}

} // namespace detail
} // namespace gradcomp
