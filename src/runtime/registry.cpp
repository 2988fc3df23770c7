// SPDX-License-Identifier: Apache-2.0
// Resolution of a spec to a registered scheme (runtime/registry.hpp); the codecs themselves are
// compiled in the slice translation units beside this one.
#include <gradcomp/runtime/registry.hpp>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace gradcomp::runtime {

namespace {

/// Where an entry sits: its slice's factory and its index there, with its names.
struct located_entry {
  std::unique_ptr<gradcomp::detail::any_codec_base> (*make)(std::size_t, const scheme_spec&,
                                                            model_layout);
  std::size_t index;
  bool (*names_compressor)(const compressor_spec&);
  bool (*names_encoding)(const scheme_spec&);
  std::string compressor;            ///< spec name; compose(S,Q) for compositions
  std::string_view encoding;         ///< spec name of the encoding
  bool default_encoding;             ///< the compressor's natural encoding
  std::string_view usage;            ///< the compressor's spec syntax
  std::vector<std::string> examples; ///< the compressor's example settings, as spec text
};

template <class En>
std::string compressor_label() {
  using C = typename En::compressor_type;
  if constexpr (requires { typename C::quantizer_type; }) {
    return "compose(" + std::string(spec_traits<typename C::sparsifier_type>::name) + "," +
           std::string(spec_traits<typename C::quantizer_type>::name) + ")";
  } else {
    return std::string(spec_traits<C>::name);
  }
}

/// Spec text of C's example settings (spec_traits::examples); a composition pairs the typical
/// setting of each part.
template <class C>
std::vector<std::string> compressor_examples() {
  if constexpr (requires { typename C::quantizer_type; }) {
    return {"compose(" + compressor_examples<typename C::sparsifier_type>().front() + "," +
            compressor_examples<typename C::quantizer_type>().front() + ")"};
  } else {
    std::vector<std::string> out;
    for (std::string_view args : spec_traits<C>::examples) {
      out.push_back(std::string(spec_traits<C>::name) + (args.empty() ? "" : ":") +
                    std::string(args));
    }
    return out;
  }
}

template <class Slice, class... Entries>
void add_slice(std::vector<located_entry>& out, type_list<Entries...>) {
  std::size_t i = 0;
  (out.push_back({&make_slice_codec<Slice>, i++, &names_compressor<Entries>,
                  &names_encoding<Entries>, compressor_label<Entries>(),
                  encoding_spec<typename Entries::encoding_type>::name,
                  std::is_same_v<typename Entries::encoding_type,
                                 default_encoding_t<typename Entries::compressor_type>>,
                  spec_traits<typename Entries::compressor_type>::usage,
                  compressor_examples<typename Entries::compressor_type>()}),
   ...);
}

template <class... Slices>
std::vector<located_entry> locate_all(type_list<Slices...>) {
  std::vector<located_entry> out;
  (add_slice<Slices>(out, Slices{}), ...);
  return out;
}

const std::vector<located_entry>& entries() {
  static const std::vector<located_entry> all = locate_all(registry_slices{});
  return all;
}

bool is_compressor_name(std::string_view name) {
  return name == "compose" ||
         std::any_of(entries().begin(), entries().end(),
                     [&](const located_entry& e) { return e.compressor == name; });
}

/// "a, b and c" from the distinct names in order.
std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += (i == 0 ? "" : ", ") + names[i];
  }
  return out;
}

void add_unique(std::vector<std::string>& v, std::string s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) {
    v.push_back(std::move(s));
  }
}

[[noreturn]] void no_compressor(const scheme_spec& s) {
  std::vector<std::string> names;
  for (const located_entry& e : entries()) {
    if (e.compressor.find('(') == std::string::npos) {
      add_unique(names, e.compressor);
    }
  }
  const compressor_spec& c = s.compressor;
  if (c.name == "compose") {
    std::vector<std::string> pairs;
    for (const located_entry& e : entries()) {
      if (e.compressor.find('(') != std::string::npos) {
        add_unique(pairs, e.compressor);
      }
    }
    detail::spec_error(s.text, "compose(" + (c.parts.size() == 2 ? c.parts[0].name : "") + "," +
                                   (c.parts.size() == 2 ? c.parts[1].name : "") +
                                   ") is not registered; compositions: " + name_list(pairs));
  }
  detail::spec_error(s.text, "unknown compressor '" + c.name + "'; registered: " +
                                 name_list(names) + ", compose(SPARSIFIER,QUANTIZER)");
}

} // namespace

std::unique_ptr<gradcomp::detail::any_codec_base> make_registered_codec(std::string_view spec,
                                                                        model_layout layout) {
  const scheme_spec s = parse_spec(spec, is_compressor_name);
  std::vector<std::string> encodings;
  for (const located_entry& e : entries()) {
    if (!e.names_compressor(s.compressor)) {
      continue;
    }
    if (e.names_encoding(s)) {
      return e.make(e.index, s, std::move(layout));
    }
    add_unique(encodings, std::string(e.encoding) + (e.default_encoding ? " (default)" : ""));
  }
  if (encodings.empty()) {
    no_compressor(s);
  }
  detail::spec_error(spec, "encoding '" + s.encoding + "' is not available for " +
                               s.compressor.name + "; choose " + name_list(encodings));
}

std::string registry_help() {
  std::string out = "spec: COMPRESSOR[/flat|/layer|/bucket:N][/ENCODING][/identity_below=N]"
                    "[/override=LAYER:VALUE]\n";
  std::vector<std::string> seen;
  for (const located_entry& e : entries()) {
    if (std::find(seen.begin(), seen.end(), e.compressor) != seen.end()) {
      continue;
    }
    seen.push_back(e.compressor);
    std::vector<std::string> encs;
    for (const located_entry& f : entries()) {
      if (f.compressor == e.compressor) {
        add_unique(encs, std::string(f.encoding));
      }
    }
    std::string line = "  " + e.compressor;
    if (e.compressor.find('(') == std::string::npos) {
      line += "  " + std::string(e.usage);
    }
    out += line + "  [encodings: " + name_list(encs) + "]\n";
  }
  return out;
}

std::vector<std::string> example_specs() {
  std::vector<std::string> out;
  for (const located_entry& e : entries()) {
    // every setting with the natural encoding, the typical one with the others
    const std::size_t n = e.default_encoding ? e.examples.size() : 1;
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back(e.examples[i] + "/flat/" + std::string(e.encoding));
    }
  }
  return out;
}

} // namespace gradcomp::runtime
