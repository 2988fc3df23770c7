// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../codec.hpp"
#include "any_codec.hpp"
#include "registry.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

/// @file
/// The implementation behind any_codec for one registered scheme (codec<Scheme> behind the
/// virtual interface), and make_slice_codec, which the gradcomp::runtime library instantiates
/// once per slice of the registry. Include it only to compile a slice.

namespace gradcomp::runtime {

namespace detail {

template <class Scheme>
class codec_model final : public gradcomp::detail::any_codec_base {
public:
  codec_model(Scheme s, model_layout layout) : codec_(std::move(s), std::move(layout)) {}

  [[nodiscard]] std::unique_ptr<any_codec_base> clone() const override {
    return std::make_unique<codec_model>(*this);
  }
  [[nodiscard]] const model_layout& layout() const noexcept override { return codec_.layout(); }
  [[nodiscard]] const std::vector<span_desc>& spans() const noexcept override {
    return codec_.spans();
  }
  [[nodiscard]] scheme_ids ids() const noexcept override { return codec_.ids(); }
  [[nodiscard]] std::string_view compressor_name() const noexcept override {
    return codec_.compressor_name();
  }
  [[nodiscard]] std::uint64_t plan_digest() const noexcept override { return codec_.plan_digest(); }
  [[nodiscard]] gradcomp::detail::level_plan level_spans() const override {
    return codec_.level_spans();
  }
  [[nodiscard]] std::string scheme_name() const override {
    return std::string(Scheme::compressor_type::name) + "/" +
           std::string(codec_.scheme().granularity.runtime_name()) + "/" +
           std::string(Scheme::encoding_type::name);
  }

  std::size_t max_encoded_bytes(const float*) const override { return bytes<float>(); }
  std::size_t max_encoded_bytes(const half*) const override { return bytes<half>(); }
  std::size_t max_encoded_bytes(const bfloat16*) const override { return bytes<bfloat16>(); }

  std::size_t encode(const cpu_policy& e, std::span<const float> g, std::span<std::byte> out,
                     const stream_key& k) override {
    return codec_.encode(e, g, out, k);
  }
  std::size_t encode(const cpu_policy& e, std::span<const half> g, std::span<std::byte> out,
                     const stream_key& k) override {
    return codec_.encode(e, g, out, k);
  }
  std::size_t encode(const cpu_policy& e, std::span<const bfloat16> g, std::span<std::byte> out,
                     const stream_key& k) override {
    return codec_.encode(e, g, out, k);
  }
  std::size_t encode(const cpu_policy& e, std::span<const float> g, std::span<std::byte> out,
                     const stream_key& k, std::span<const float> scales) override {
    return codec_.encode(e, g, out, k, scales);
  }
  std::vector<float> local_scales(const cpu_policy& e, std::span<const float> g,
                                  const stream_key& k) override {
    return codec_.local_scales(e, g, k);
  }
  void validate(const cpu_policy& e, std::span<const std::byte> m) override {
    codec_.validate(e, m);
  }
  void sent_elements(const cpu_policy& e, std::span<const std::byte> m,
                     std::span<std::uint8_t> sent) override {
    codec_.sent_elements(e, m, sent);
  }
  void decode(const cpu_policy& e, std::span<const std::byte> m, std::span<float> o) override {
    codec_.decode(e, m, o);
  }
  void decode(const cpu_policy& e, std::span<const std::byte> m, std::span<half> o) override {
    codec_.decode(e, m, o);
  }
  void decode(const cpu_policy& e, std::span<const std::byte> m, std::span<bfloat16> o) override {
    codec_.decode(e, m, o);
  }
  void decode_add(const cpu_policy& e, std::span<const std::byte> m, std::span<float> o) override {
    codec_.decode_add(e, m, o);
  }
  void decode_add(const cpu_policy& e, std::span<const std::byte> m, std::span<half> o) override {
    codec_.decode_add(e, m, o);
  }
  void decode_add(const cpu_policy& e, std::span<const std::byte> m,
                  std::span<bfloat16> o) override {
    codec_.decode_add(e, m, o);
  }
  std::size_t apply(const cpu_policy& e, std::span<const float> g, std::span<float> o,
                    const stream_key& k) override {
    return codec_.apply(e, g, o, k);
  }
  std::size_t apply(const cpu_policy& e, std::span<const half> g, std::span<half> o,
                    const stream_key& k) override {
    return codec_.apply(e, g, o, k);
  }
  std::size_t apply(const cpu_policy& e, std::span<const bfloat16> g, std::span<bfloat16> o,
                    const stream_key& k) override {
    return codec_.apply(e, g, o, k);
  }

private:
  template <class T>
  [[nodiscard]] std::size_t bytes() const {
    return codec_.template max_encoded_bytes<T>();
  }
  codec<Scheme> codec_;
};

template <class En>
std::unique_ptr<gradcomp::detail::any_codec_base> make_entry_codec(const scheme_spec& s,
                                                                   model_layout layout) {
  using S = typename En::scheme_type;
  return std::make_unique<codec_model<S>>(read_scheme<En>(s), std::move(layout));
}

template <class... Entries>
std::unique_ptr<gradcomp::detail::any_codec_base>
make_from_list(type_list<Entries...>, std::size_t index, const scheme_spec& s,
               model_layout layout) {
  using factory =
      std::unique_ptr<gradcomp::detail::any_codec_base> (*)(const scheme_spec&, model_layout);
  static constexpr factory table[] = {&make_entry_codec<Entries>...};
  return table[index](s, std::move(layout));
}

} // namespace detail

template <class Slice>
std::unique_ptr<gradcomp::detail::any_codec_base>
make_slice_codec(std::size_t index, const scheme_spec& s, model_layout layout) {
  gradcomp::detail::require(index < Slice::size, errc::invalid_parameter,
                            "registry slice entry " + std::to_string(index) + " out of range");
  return detail::make_from_list(Slice{}, index, s, std::move(layout));
}

} // namespace gradcomp::runtime
