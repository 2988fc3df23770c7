// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../compressor/adaptive_threshold.hpp"
#include "../compressor/compose.hpp"
#include "../compressor/identity.hpp"
#include "../compressor/natural.hpp"
#include "../compressor/qsgd.hpp"
#include "../compressor/random_k.hpp"
#include "../compressor/sign_sgd.hpp"
#include "../compressor/stochastic_rounding.hpp"
#include "../compressor/terngrad.hpp"
#include "../compressor/threshold_v.hpp"
#include "../compressor/topk.hpp"
#include "../granularity/any_granularity.hpp"
#include "../scheme.hpp"
#include "any_codec.hpp"
#include "spec.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

/// @file
/// The scheme registry: every compressor x encoding that a spec can name, as one type list
/// (`registered`), with each compressor's spec syntax (spec_traits). Adding an operator to the
/// run-time surface is one line in a slice below and, for a new compressor, one spec_traits.
/// The granularity is any_granularity (flat, layer or bucket at run time), so each entry is one
/// codec instantiation. The slices are compiled in separate translation units of the
/// gradcomp::runtime library (src/runtime/), side by side.

namespace gradcomp::runtime {

template <class... Ts>
struct type_list {
  static constexpr std::size_t size = sizeof...(Ts);
};

/// A registered scheme: compressor C with encoding E (granularity chosen at run time).
template <class C, class E = default_encoding_t<C>>
struct entry {
  using compressor_type = C;
  using encoding_type = E;
  using scheme_type = scheme<C, any_granularity, E>;
};

template <class S>
using composites_of =
    type_list<entry<compose<S, terngrad>>, entry<compose<S, qsgd>>, entry<compose<S, sign_sgd>>,
              entry<compose<S, scaled_sign>>, entry<compose<S, natural>>>;

// ---- the registry, in slices (one translation unit each) ----------------------------------------
using dense_slice =
    type_list<entry<identity, dense<float>>, entry<identity, dense<half>>,
              entry<identity, dense<bfloat16>>, entry<stochastic_rounding<bfloat16>>,
              entry<stochastic_rounding<half>>, entry<natural, natural_codes<9>>,
              entry<natural, natural_codes<8>>>;
// QSGD and TernGrad apart: together they were the slowest translation unit of the build
using qsgd_slice = type_list<entry<qsgd>>;
using terngrad_slice = type_list<entry<terngrad>>;
using sign_slice = type_list<entry<sign_sgd>, entry<scaled_sign>>;
using sparse_slice = type_list<
    entry<topk, sparse_coo<float>>, entry<topk, sparse_coo<half>>,
    entry<topk, sparse_coo<bfloat16>>, entry<random_k, sparse_coo<float>>,
    entry<random_k, sparse_coo<half>>, entry<random_k, sparse_coo<bfloat16>>,
    entry<threshold_v, sparse_coo<float>>, entry<threshold_v, sparse_coo<half>>,
    entry<threshold_v, sparse_coo<bfloat16>>, entry<adaptive_threshold, sparse_coo<float>>,
    entry<adaptive_threshold, sparse_coo<half>>, entry<adaptive_threshold, sparse_coo<bfloat16>>>;
// the same with Elias-Fano coded indices (encoding/index_coding.hpp)
template <class V>
using coo_ef = sparse_coo<V, elias_fano_indices>;
using sparse_ef_slice =
    type_list<entry<topk, coo_ef<float>>, entry<topk, coo_ef<half>>, entry<topk, coo_ef<bfloat16>>,
              entry<random_k, coo_ef<float>>, entry<random_k, coo_ef<half>>,
              entry<random_k, coo_ef<bfloat16>>, entry<threshold_v, coo_ef<float>>,
              entry<threshold_v, coo_ef<half>>, entry<threshold_v, coo_ef<bfloat16>>,
              entry<adaptive_threshold, coo_ef<float>>, entry<adaptive_threshold, coo_ef<half>>,
              entry<adaptive_threshold, coo_ef<bfloat16>>>;
template <class Q>
using codes_ef = sparse_codes<default_encoding_t<Q>, elias_fano_indices>;
using topk_ef_composites = type_list<entry<compose<topk, terngrad>, codes_ef<terngrad>>,
                                     entry<compose<topk, qsgd>, codes_ef<qsgd>>,
                                     entry<compose<topk, sign_sgd>, codes_ef<sign_sgd>>,
                                     entry<compose<topk, scaled_sign>, codes_ef<scaled_sign>>,
                                     entry<compose<topk, natural>, codes_ef<natural>>>;
using topk_composites = composites_of<topk>;
using random_k_composites = composites_of<random_k>;
using threshold_v_composites = composites_of<threshold_v>;
using adaptive_composites = composites_of<adaptive_threshold>;

/// The slices in registry order (src/runtime/ compiles one per translation unit).
using registry_slices = type_list<dense_slice, qsgd_slice, terngrad_slice, sign_slice, sparse_slice,
                                  topk_composites, random_k_composites, threshold_v_composites,
                                  adaptive_composites, sparse_ef_slice, topk_ef_composites>;

// ---- spec names of encodings --------------------------------------------------------------------
template <class E>
struct encoding_spec;
template <class V>
struct encoding_spec<dense<V>> {
  static constexpr std::string_view name = dense<V>::name; // f32, f16, bf16
};
template <class V>
struct encoding_spec<sparse_coo<V>> {
  static constexpr std::string_view name = std::is_same_v<V, float>  ? "coo-f32"
                                           : std::is_same_v<V, half> ? "coo-f16"
                                                                     : "coo-bf16";
};
template <class V>
struct encoding_spec<sparse_coo<V, elias_fano_indices>> {
  static constexpr std::string_view name = std::is_same_v<V, float>  ? "coo-f32-ef"
                                           : std::is_same_v<V, half> ? "coo-f16-ef"
                                                                     : "coo-bf16-ef";
};
template <unsigned Bits>
struct encoding_spec<natural_codes<Bits>> {
  static constexpr std::string_view name = natural_codes<Bits>::name; // nat9, nat8
};
template <>
struct encoding_spec<ternary_2bit> {
  static constexpr std::string_view name = ternary_2bit::name;
};
template <>
struct encoding_spec<qsgd_levels> {
  static constexpr std::string_view name = qsgd_levels::name;
};
template <>
struct encoding_spec<sign_bits> {
  static constexpr std::string_view name = sign_bits::name;
};
template <class E>
struct encoding_spec<sparse_codes<E>> {
  static constexpr std::string_view name = "codes";
};
template <class E>
struct encoding_spec<sparse_codes<E, elias_fano_indices>> {
  static constexpr std::string_view name = "codes-ef";
};

// ---- arguments ----------------------------------------------------------------------------------

/// Reads a compressor's arguments: flags first, then values (named, else the next positional);
/// finish() rejects what no one read, quoting the compressor's usage.
class arg_reader {
public:
  arg_reader(const compressor_spec& c, std::string_view spec, std::string_view usage)
      : c_(c), spec_(spec), usage_(usage), used_pos_(c.positional.size(), false),
        used_named_(c.named.size(), false) {}

  /// True when `key` is given as a bare word.
  bool word(std::string_view key) {
    for (std::size_t i = 0; i < c_.positional.size(); ++i) {
      if (!used_pos_[i] && c_.positional[i] == key) {
        used_pos_[i] = true;
        return true;
      }
    }
    return false;
  }
  /// True when the flag is given (as a bare word, key=true or key=1; key=false/0 is false).
  bool flag(std::string_view key) {
    if (word(key)) {
      return true;
    }
    if (const std::optional<std::string> v = named(key)) {
      if (*v == "true" || *v == "1") {
        return true;
      }
      if (*v == "false" || *v == "0") {
        return false;
      }
      error(std::string(key) + " must be true or false, got '" + *v + "'");
    }
    return false;
  }
  std::optional<double> real(std::string_view key) {
    const std::optional<std::string> v = value(key);
    return v ? std::optional<double>(parse_real(*v, qualified(key), spec_)) : std::nullopt;
  }
  std::optional<std::size_t> size(std::string_view key) {
    const std::optional<std::string> v = value(key);
    return v ? std::optional<std::size_t>(parse_size(*v, qualified(key), spec_)) : std::nullopt;
  }
  void finish() const {
    for (std::size_t i = 0; i < c_.positional.size(); ++i) {
      if (!used_pos_[i]) {
        error("unexpected argument '" + c_.positional[i] + "'");
      }
    }
    for (std::size_t i = 0; i < c_.named.size(); ++i) {
      if (!used_named_[i]) {
        error("unknown argument '" + c_.named[i].first + "'");
      }
    }
  }
  [[noreturn]] void error(const std::string& what) const {
    detail::spec_error(spec_, c_.name + ": " + what + " (usage: " + std::string(usage_) + ")");
  }

private:
  std::string qualified(std::string_view key) const { return c_.name + " " + std::string(key); }
  std::optional<std::string> named(std::string_view key) {
    std::optional<std::string> found;
    for (std::size_t i = 0; i < c_.named.size(); ++i) {
      if (c_.named[i].first == key) {
        if (found) {
          error("'" + std::string(key) + "' given twice");
        }
        used_named_[i] = true;
        found = c_.named[i].second;
      }
    }
    return found;
  }
  std::optional<std::string> value(std::string_view key) {
    if (std::optional<std::string> v = named(key)) {
      return v;
    }
    for (std::size_t i = 0; i < c_.positional.size(); ++i) {
      if (!used_pos_[i]) {
        used_pos_[i] = true;
        return c_.positional[i];
      }
    }
    return std::nullopt;
  }

  const compressor_spec& c_;
  std::string_view spec_;
  std::string_view usage_;
  std::vector<bool> used_pos_;
  std::vector<bool> used_named_;
};

// ---- spec syntax of each compressor -------------------------------------------------------------

/// spec_traits<C>: `name` (C::name), `usage`, `read(arg_reader&)` building C from arguments, and
/// `examples`: the argument strings of C's representative settings, the first the typical one
/// (runtime::example_specs() enumerates them for the demo, the trainers' proxy and the tests).
template <class C>
struct spec_traits {
  // compressors without parameters: identity, sign, scaled_sign, natural, adaptive_threshold,
  // stochastic rounding
  static constexpr std::string_view name = C::name;
  static constexpr std::string_view usage = C::name;
  static constexpr std::array<std::string_view, 1> examples{""};
  static C read(arg_reader&) { return C{}; }
};
template <>
struct spec_traits<topk> {
  static constexpr std::string_view name = topk::name;
  static constexpr std::string_view usage = "topk:RATIO, the kept fraction in (0, 1]";
  static constexpr std::array<std::string_view, 2> examples{"0.01", "0.001"};
  static topk read(arg_reader& a) { return {a.real("ratio").value_or(topk{}.ratio)}; }
};
template <>
struct spec_traits<random_k> {
  static constexpr std::string_view name = random_k::name;
  static constexpr std::string_view usage =
      "random_k:RATIO[,unbiased][,shared_seed]; unbiased scales the kept values by n/k, "
      "shared_seed lets receivers regenerate the indices";
  static constexpr std::array<std::string_view, 3> examples{"0.01", "0.01,unbiased",
                                                            "0.01,shared_seed"};
  static random_k read(arg_reader& a) {
    const bool unbiased = a.flag("unbiased");
    const bool shared = a.flag("shared_seed");
    return {a.real("ratio").value_or(random_k{}.ratio), unbiased, shared};
  }
};
template <>
struct spec_traits<threshold_v> {
  static constexpr std::string_view name = threshold_v::name;
  static constexpr std::string_view usage = "threshold_v:V, keeps |x| >= V";
  static constexpr std::array<std::string_view, 1> examples{"1e-4"};
  static threshold_v read(arg_reader& a) {
    return {a.real("threshold").value_or(threshold_v{}.threshold)};
  }
};
template <>
struct spec_traits<terngrad> {
  static constexpr std::string_view name = terngrad::name;
  static constexpr std::string_view usage =
      "terngrad[:clip[=SIGMAS]], clipping at SIGMAS (default 2.5) standard deviations";
  static constexpr std::array<std::string_view, 2> examples{"clip", ""};
  static terngrad read(arg_reader& a) {
    terngrad t;
    if (a.word("clip")) {
      t.clip = true;
    } else if (const std::optional<double> sigmas = a.real("clip")) {
      t.clip = true;
      t.clip_sigmas = *sigmas;
    }
    return t;
  }
};
template <>
struct spec_traits<qsgd> {
  static constexpr std::string_view name = qsgd::name;
  static constexpr std::string_view usage =
      "qsgd:LEVELS[,bucket=N], LEVELS >= 1 (default 255), one norm per N elements (default: "
      "per span)";
  static constexpr std::array<std::string_view, 3> examples{"15", "255", "15,bucket=128"};
  static qsgd read(arg_reader& a) {
    qsgd q;
    if (const std::optional<std::size_t> s = a.size("levels")) {
      if (*s < 1 || *s >= (std::size_t{1} << 30)) {
        a.error("levels must be in [1, 2^30), got " + std::to_string(*s));
      }
      q.levels = static_cast<std::uint32_t>(*s);
    }
    q.bucket_size = a.size("bucket").value_or(0);
    return q;
  }
};
template <class S, class Q>
struct spec_traits<compose<S, Q>> {
  static constexpr std::string_view name = "compose";
  static constexpr std::string_view usage = "compose(SPARSIFIER,QUANTIZER)";
};

// ---- resolution ---------------------------------------------------------------------------------

/// Whether entry En is what compressor spec c names (names only; arguments are read later).
template <class En>
bool names_compressor(const compressor_spec& c) {
  using C = typename En::compressor_type;
  if constexpr (requires { typename C::quantizer_type; }) {
    return c.name == "compose" && c.parts.size() == 2 &&
           c.parts[0].name == spec_traits<typename C::sparsifier_type>::name &&
           c.parts[1].name == spec_traits<typename C::quantizer_type>::name;
  } else {
    return c.name == spec_traits<C>::name;
  }
}

/// Whether entry En has the encoding a spec names (empty: the compressor's default).
template <class En>
bool names_encoding(const scheme_spec& s) {
  using C = typename En::compressor_type;
  using E = typename En::encoding_type;
  return s.encoding.empty() ? std::is_same_v<E, default_encoding_t<C>>
                            : s.encoding == encoding_spec<E>::name;
}

/// C built from its spec arguments (every argument must be used).
template <class C>
C read_compressor(const compressor_spec& c, std::string_view spec) {
  if constexpr (requires { typename C::quantizer_type; }) {
    return C{read_compressor<typename C::sparsifier_type>(c.parts[0], spec),
             read_compressor<typename C::quantizer_type>(c.parts[1], spec)};
  } else {
    arg_reader args(c, spec, spec_traits<C>::usage);
    C out = spec_traits<C>::read(args);
    args.finish();
    return out;
  }
}

/// The granularity a spec names.
inline any_granularity read_granularity(const scheme_spec& s) {
  if (s.granularity == "layer") {
    return layer_span{};
  }
  if (s.granularity == "bucket") {
    return bucket_span{s.bucket_size};
  }
  return flat_span{};
}

/// The scheme of entry En for a spec (validated by the codec that is built from it).
template <class En>
typename En::scheme_type read_scheme(const scheme_spec& s) {
  return {read_compressor<typename En::compressor_type>(s.compressor, s.text), read_granularity(s),
          typename En::encoding_type{}, s.rules};
}

/// The codec of one slice's entry `index` (defined in src/runtime/, one translation unit per
/// slice of registry_slices).
template <class Slice>
std::unique_ptr<gradcomp::detail::any_codec_base>
make_slice_codec(std::size_t index, const scheme_spec& s, model_layout layout);

} // namespace gradcomp::runtime
