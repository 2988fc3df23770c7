// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "granularity/span_plan.hpp"
#include "layout/model_layout.hpp"
#include "payload.hpp"

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

/// @file
/// The three policy concepts a scheme is composed of. Concepts check and document; dispatch goes
/// through tags (detail/dispatch.hpp).

namespace gradcomp {

/// What is kept, at what precision. A small regular value type whose runtime parameters are
/// validated by validate(); `with_parameter` returns a copy with the main parameter replaced
/// (per-layer overrides); `omega(d)` is Assumption 5's Omega for a span of d elements, or nullopt
/// where no finite Omega exists.
template <class C>
concept compressor = std::copyable<C> && std::equality_comparable<C> &&
    requires(const C& c, std::size_t n, double p) {
  typename C::payload_kind;
  { C::id } -> std::convertible_to<compressor_id>;
  { C::name } -> std::convertible_to<std::string_view>;
  { C::is_unbiased } -> std::convertible_to<bool>;
  { C::is_elementwise } -> std::convertible_to<bool>;
  {c.validate()};
  { c.with_parameter(p) } -> std::same_as<C>;
  { c.omega(n) } -> std::same_as<std::optional<double>>;
  { c.parameter_word() } -> std::same_as<std::uint64_t>;
};

/// Which spans are compressed independently. The wire id is a constant `G::id`, or
/// `g.runtime_id()` for a granularity chosen at run time (any_granularity).
template <class G>
concept granularity = std::copyable<G> &&(
                          requires {
                            { G::id } -> std::convertible_to<granularity_id>;
                          } ||
                          requires(const G& g) {
                            { g.runtime_id() } -> std::same_as<granularity_id>;
                          }) &&
                      requires(const G& g, const model_layout& l, const layer_rules& r) {
  { G::name } -> std::convertible_to<std::string_view>;
  { g.plan(l, r) } -> std::same_as<std::vector<span_desc>>;
};

/// How a payload kind looks on the wire.
template <class E>
concept encoding = std::copyable<E> && requires {
  { E::id } -> std::convertible_to<encoding_id>;
  { E::name } -> std::convertible_to<std::string_view>;
  { E::template accepts<sparse_payload> } -> std::convertible_to<bool>;
};

} // namespace gradcomp
