// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../backend/tags.hpp"
#include "../core/float16.hpp"
#include "../detail/level_plan.hpp"
#include "../granularity/span_plan.hpp"
#include "../layout/model_layout.hpp"
#include "../random/stream_key.hpp"
#include "../scheme.hpp"
#include "spec.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

/// @file
/// any_codec: a codec whose scheme is chosen at run time by a spec string (runtime/spec.hpp),
/// type-erased over the scheme registry (runtime/registry.hpp), with value semantics (copies are
/// independent codecs). Its messages are byte for byte those of codec<Scheme> for the scheme the
/// spec names. CPU only (cpu_policy, any thread count).
///
/// The registry is compiled once, in the gradcomp::runtime library (link it; the schemes are not
/// instantiated in your translation units). The framework takes it through runtime_scheme:
/// worker<runtime_scheme, runtime_scheme>, master<...>, error_feedback<runtime_scheme>,
/// in_process_cluster and mpi_cluster hold an any_codec where they would hold a codec<Scheme>.

namespace gradcomp {

namespace detail {

/// The operations of a codec, for one value type T.
template <class T>
class any_codec_ops {
public:
  virtual ~any_codec_ops() = default;
  [[nodiscard]] virtual std::size_t max_encoded_bytes(const T*) const = 0;
  virtual std::size_t encode(const cpu_policy&, std::span<const T>, std::span<std::byte>,
                             const stream_key&) = 0;
  virtual void decode(const cpu_policy&, std::span<const std::byte>, std::span<T>) = 0;
  virtual void decode_add(const cpu_policy&, std::span<const std::byte>, std::span<T>) = 0;
  virtual std::size_t apply(const cpu_policy&, std::span<const T>, std::span<T>,
                            const stream_key&) = 0;
};

/// What any_codec forwards to: one registered scheme's codec<Scheme>.
class any_codec_base : public any_codec_ops<float>,
                       public any_codec_ops<half>,
                       public any_codec_ops<bfloat16> {
public:
  using any_codec_ops<float>::max_encoded_bytes, any_codec_ops<half>::max_encoded_bytes,
      any_codec_ops<bfloat16>::max_encoded_bytes;
  using any_codec_ops<float>::encode, any_codec_ops<half>::encode, any_codec_ops<bfloat16>::encode;
  using any_codec_ops<float>::decode, any_codec_ops<half>::decode, any_codec_ops<bfloat16>::decode;
  using any_codec_ops<float>::decode_add, any_codec_ops<half>::decode_add,
      any_codec_ops<bfloat16>::decode_add;
  using any_codec_ops<float>::apply, any_codec_ops<half>::apply, any_codec_ops<bfloat16>::apply;

  [[nodiscard]] virtual std::unique_ptr<any_codec_base> clone() const = 0;
  [[nodiscard]] virtual const model_layout& layout() const noexcept = 0;
  [[nodiscard]] virtual const std::vector<span_desc>& spans() const noexcept = 0;
  [[nodiscard]] virtual scheme_ids ids() const noexcept = 0;
  [[nodiscard]] virtual std::string_view compressor_name() const noexcept = 0;
  [[nodiscard]] virtual std::uint64_t plan_digest() const noexcept = 0;
  [[nodiscard]] virtual std::string scheme_name() const = 0;
  [[nodiscard]] virtual detail::level_plan level_spans() const = 0;
  virtual std::size_t encode(const cpu_policy&, std::span<const float>, std::span<std::byte>,
                             const stream_key&, std::span<const float> scales) = 0;
  virtual std::vector<float> local_scales(const cpu_policy&, std::span<const float>,
                                          const stream_key&) = 0;
  virtual void validate(const cpu_policy&, std::span<const std::byte>) = 0;
  virtual void sent_elements(const cpu_policy&, std::span<const std::byte>,
                             std::span<std::uint8_t>) = 0;
};

} // namespace detail

namespace runtime {

/// The codec of a spec over a layout, from the compiled registry. Errors: invalid_parameter for
/// a malformed spec, an unknown compressor, argument, granularity or encoding (the message lists
/// the valid ones), and every error of the scheme's own validation and planning.
std::unique_ptr<gradcomp::detail::any_codec_base> make_registered_codec(std::string_view spec,
                                                                        model_layout layout);
/// One line per registered compressor: its spec syntax, arguments and encodings.
std::string registry_help();
/// Example specs covering the registry, granularity flat ("/flat/" in each): every example
/// setting of each compressor (spec_traits::examples) with its natural encoding, and the typical
/// setting with each other encoding. Tests, fuzz corpora and the demo enumerate these.
std::vector<std::string> example_specs();

} // namespace runtime

/// A scheme chosen at run time: the spec string. worker<runtime_scheme, runtime_scheme> and the
/// rest of the framework hold an any_codec for it.
struct runtime_scheme {
  std::string spec;
};

class any_codec {
public:
  /// The codec of `spec` (e.g. "topk:0.01/layer/coo-f16") over `layout`; see make_registered_codec.
  any_codec(std::string_view spec, model_layout layout)
      : spec_(spec), impl_(runtime::make_registered_codec(spec, std::move(layout))) {}
  any_codec(const runtime_scheme& s, model_layout layout) : any_codec(s.spec, std::move(layout)) {}

  any_codec(const any_codec& o) : spec_(o.spec_), impl_(o.impl_->clone()) {}
  any_codec& operator=(const any_codec& o) {
    if (this != &o) {
      impl_ = o.impl_->clone();
      spec_ = o.spec_;
    }
    return *this;
  }
  any_codec(any_codec&&) noexcept = default;
  any_codec& operator=(any_codec&&) noexcept = default;
  ~any_codec() = default;

  /// The spec as given.
  [[nodiscard]] const std::string& spec() const noexcept { return spec_; }
  /// The scheme's C++ composition, e.g. "topk/layer/sparse_f16".
  [[nodiscard]] std::string scheme_name() const { return impl_->scheme_name(); }
  [[nodiscard]] const model_layout& layout() const noexcept { return impl_->layout(); }
  [[nodiscard]] const std::vector<span_desc>& spans() const noexcept { return impl_->spans(); }
  [[nodiscard]] scheme_ids ids() const noexcept { return impl_->ids(); }
  [[nodiscard]] std::string_view compressor_name() const noexcept {
    return impl_->compressor_name();
  }
  [[nodiscard]] std::uint64_t plan_digest() const noexcept { return impl_->plan_digest(); }
  /// Where its messages' levels lie (codec::level_spans, framework/level_sums.hpp).
  [[nodiscard]] detail::level_plan level_spans() const { return impl_->level_spans(); }

  template <gradient_value T = float>
  [[nodiscard]] std::size_t max_encoded_bytes() const {
    return impl_->max_encoded_bytes(static_cast<const T*>(nullptr));
  }
  template <gradient_value T>
  std::size_t encode(const cpu_policy& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key) {
    return impl_->encode(exec, grad, out, key);
  }
  std::size_t encode(const cpu_policy& exec, std::span<const float> grad, std::span<std::byte> out,
                     const stream_key& key, std::span<const float> scales) {
    return impl_->encode(exec, grad, out, key, scales);
  }
  std::vector<float> local_scales(const cpu_policy& exec, std::span<const float> grad,
                                  const stream_key& key) {
    return impl_->local_scales(exec, grad, key);
  }
  /// codec::validate: checks every byte as decode() does, writes nothing.
  void validate(const cpu_policy& exec, std::span<const std::byte> message) {
    impl_->validate(exec, message);
  }
  void sent_elements(const cpu_policy& exec, std::span<const std::byte> message,
                     std::span<std::uint8_t> sent) {
    impl_->sent_elements(exec, message, sent);
  }
  template <gradient_value T>
  void decode(const cpu_policy& exec, std::span<const std::byte> message, std::span<T> out) {
    impl_->decode(exec, message, out);
  }
  template <gradient_value T>
  void decode_add(const cpu_policy& exec, std::span<const std::byte> message, std::span<T> out) {
    impl_->decode_add(exec, message, out);
  }
  template <gradient_value T>
  std::size_t apply(const cpu_policy& exec, std::span<const T> grad, std::span<T> out,
                    const stream_key& key) {
    return impl_->apply(exec, grad, out, key);
  }

private:
  std::string spec_;
  std::unique_ptr<detail::any_codec_base> impl_;
};

template <>
struct codec_for<runtime_scheme> {
  using type = any_codec;
};

} // namespace gradcomp
