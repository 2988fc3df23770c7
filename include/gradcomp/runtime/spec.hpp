// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"
#include "../granularity/span_plan.hpp"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// @file
/// The scheme spec grammar: a scheme chosen by a string at run time.
///
///   spec        := compressor ( '/' part )*
///   compressor  := name [ ':' arg ( ',' arg )* ] | 'compose(' compressor ',' compressor ')'
///   arg         := value | key '=' value | flag
///   part        := granularity | encoding | rule
///   granularity := 'flat' | 'layer' | 'bucket' [ ':' elements ]
///   rule        := 'identity_below=' elements | 'override=' layer ':' value
///
/// e.g. `topk:0.01/layer/coo-f16`, `qsgd:15/bucket:128`, `compose(topk:0.01,terngrad)/layer`,
/// `terngrad:clip=2.5/layer/identity_below=64`, `random_k:0.01,unbiased/layer`. Parts may come
/// in any order, each at most once (rules may repeat); the granularity defaults to flat and the
/// encoding to the compressor's natural one. This header checks the syntax; which names,
/// arguments and encodings exist is the registry's (runtime/registry.hpp), which names the valid
/// choices in its errors. Every error is errc::invalid_parameter and quotes the spec.

namespace gradcomp::runtime {

/// The longest spec parse_spec accepts (layer names in overrides included).
inline constexpr std::size_t max_spec_length = 4096;

/// One compressor of a spec: its name and arguments (compose: its two parts).
struct compressor_spec {
  std::string name;
  std::vector<std::string> positional; ///< arguments without '=' (values or flags), in order
  std::vector<std::pair<std::string, std::string>> named; ///< key=value arguments, in order
  std::vector<compressor_spec> parts;                     ///< compose: sparsifier, quantizer
};

/// A parsed spec: compressor, granularity, encoding (empty: the compressor's default), rules.
struct scheme_spec {
  compressor_spec compressor;
  std::string granularity = "flat";
  std::size_t bucket_size = std::size_t{1} << 20; ///< bucket's elements (bucket_span's default)
  std::string encoding;
  layer_rules rules;
  std::string text; ///< the spec as given
};

namespace detail {

[[noreturn]] inline void spec_error(std::string_view spec, const std::string& what) {
  gradcomp::detail::fail(errc::invalid_parameter,
                         "scheme spec '" + std::string(spec) + "': " + what);
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

/// Splits at the separators that are outside parentheses.
inline std::vector<std::string_view> split_top_level(std::string_view s, char sep,
                                                     std::string_view spec) {
  std::vector<std::string_view> out;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '(') {
      ++depth;
    } else if (s[i] == ')') {
      if (--depth < 0) {
        spec_error(spec, "unbalanced ')'");
      }
    } else if (s[i] == sep && depth == 0) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  if (depth != 0) {
    spec_error(spec, "unbalanced '('");
  }
  out.push_back(trim(s.substr(start)));
  return out;
}

inline bool is_name(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char ch : s) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                    ch == '-' || (ch >= 'A' && ch <= 'Z');
    if (!ok) {
      return false;
    }
  }
  return true;
}

} // namespace detail

/// A non-negative integer of a spec (sizes, counts); the whole text must be the number.
inline std::size_t parse_size(std::string_view text, std::string_view what, std::string_view spec) {
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
    detail::spec_error(spec, std::string(what) + " must be a non-negative integer, got '" +
                                 std::string(text) + "'");
  }
  return v;
}

/// A finite real number of a spec; the whole text must be the number.
inline double parse_real(std::string_view text, std::string_view what, std::string_view spec) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || !(v == v) ||
      v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
    detail::spec_error(spec, std::string(what) + " must be a finite number, got '" +
                                 std::string(text) + "'");
  }
  return v;
}

/// Parses one compressor; `is_compressor_name` tells compose's splitter where the second part
/// starts (its arguments may hold commas too).
template <class NamePredicate>
compressor_spec parse_compressor(std::string_view text, std::string_view spec,
                                 const NamePredicate& is_compressor_name) {
  compressor_spec c;
  text = detail::trim(text);
  if (text.starts_with("compose(")) {
    if (!text.ends_with(")")) {
      detail::spec_error(spec, "compose(...) must end with ')'");
    }
    c.name = "compose";
    const std::string_view inner = text.substr(8, text.size() - 9);
    const std::vector<std::string_view> pieces = detail::split_top_level(inner, ',', spec);
    // the second compressor starts at the first comma followed by a compressor name
    for (std::size_t cut = 1; cut < pieces.size(); ++cut) {
      const std::string_view head = pieces[cut].substr(0, pieces[cut].find(':'));
      if (!is_compressor_name(head)) {
        continue;
      }
      std::string first, second;
      for (std::size_t p = 0; p < pieces.size(); ++p) {
        std::string& side = p < cut ? first : second;
        side += (side.empty() ? "" : ",") + std::string(pieces[p]);
      }
      c.parts.push_back(parse_compressor(first, spec, is_compressor_name));
      c.parts.push_back(parse_compressor(second, spec, is_compressor_name));
      return c;
    }
    detail::spec_error(spec, "compose needs two compressors, compose(sparsifier,quantizer), got '" +
                                 std::string(text) + "'");
  }
  const std::size_t colon = text.find(':');
  c.name = std::string(detail::trim(text.substr(0, colon)));
  if (!detail::is_name(c.name)) {
    detail::spec_error(spec, "'" + c.name + "' is not a compressor name");
  }
  if (colon == std::string_view::npos) {
    return c;
  }
  for (std::string_view arg : detail::split_top_level(text.substr(colon + 1), ',', spec)) {
    if (arg.empty()) {
      detail::spec_error(spec, "empty argument of " + c.name);
    }
    const std::size_t eq = arg.find('=');
    if (eq == std::string_view::npos) {
      c.positional.emplace_back(arg);
    } else {
      c.named.emplace_back(std::string(detail::trim(arg.substr(0, eq))),
                           std::string(detail::trim(arg.substr(eq + 1))));
    }
  }
  return c;
}

/// Parses a whole spec (syntax only; see the file comment).
template <class NamePredicate>
scheme_spec parse_spec(std::string_view text, const NamePredicate& is_compressor_name) {
  scheme_spec s;
  s.text = std::string(text);
  const std::string_view spec = text;
  if (detail::trim(text).empty()) {
    detail::spec_error(spec, "empty spec (e.g. topk:0.01/layer)");
  }
  if (text.size() > max_spec_length) { // also bounds compose's recursion
    gradcomp::detail::fail(errc::invalid_parameter,
                           "scheme spec of " + std::to_string(text.size()) +
                               " characters; the limit is " + std::to_string(max_spec_length));
  }
  const std::vector<std::string_view> parts = detail::split_top_level(text, '/', spec);
  s.compressor = parse_compressor(parts[0], spec, is_compressor_name);
  bool have_granularity = false;
  for (std::size_t p = 1; p < parts.size(); ++p) {
    const std::string_view part = parts[p];
    if (part.empty()) {
      detail::spec_error(spec, "empty part between '/'");
    }
    const std::string_view head = part.substr(0, part.find_first_of(":="));
    if (head == "flat" || head == "layer" || head == "bucket") {
      if (have_granularity) {
        detail::spec_error(spec, "a second granularity '" + std::string(part) + "'");
      }
      have_granularity = true;
      s.granularity = std::string(head);
      if (head == "bucket" && part.size() > head.size()) {
        if (part[head.size()] != ':') {
          detail::spec_error(spec, "bucket takes its size as bucket:N");
        }
        s.bucket_size = parse_size(part.substr(head.size() + 1), "bucket size", spec);
      } else if (part.size() > head.size()) {
        detail::spec_error(spec, std::string(head) + " takes no argument");
      }
    } else if (part.starts_with("identity_below=")) {
      s.rules.identity_below = parse_size(part.substr(15), "identity_below", spec);
    } else if (part.starts_with("override=")) {
      const std::string_view body = part.substr(9);
      const std::size_t colon = body.rfind(':');
      if (colon == std::string_view::npos || colon == 0) {
        detail::spec_error(spec, "override takes override=<layer>:<value>");
      }
      s.rules.overrides.push_back({std::string(body.substr(0, colon)),
                                   parse_real(body.substr(colon + 1), "override value", spec)});
    } else if (part.find('=') != std::string_view::npos) {
      detail::spec_error(spec, "unknown rule '" + std::string(part) +
                                   "' (rules: identity_below=N, override=<layer>:<value>)");
    } else {
      if (!s.encoding.empty()) {
        detail::spec_error(spec, "a second encoding '" + std::string(part) + "' after '" +
                                     s.encoding + "'");
      }
      s.encoding = std::string(part);
    }
  }
  return s;
}

} // namespace gradcomp::runtime
