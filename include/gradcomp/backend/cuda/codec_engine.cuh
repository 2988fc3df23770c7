// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../codec.hpp"
#include "../../detail/dispatch.hpp"
#include "../../detail/engine_slot.hpp"
#include "../../detail/input_checks.hpp"
#include "composite_engine.cuh"
#include "dense_engine.cuh"
#include "runtime.cuh"
#include "sparse_engine.cuh"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

/// @file
/// How codec<Scheme> runs under cuda_policy: on its first CUDA call the codec builds a
/// codec_engine in its engine slot (detail/engine_slot.hpp), which holds the engine of the
/// scheme's payload kind (dense_engine, sparse_engine or composite_engine) and a device message
/// buffer for apply(). Every later call reuses the engine's device tables and workspaces.

namespace gradcomp {
namespace detail::cuda {

template <class Scheme>
using engine_for = std::conditional_t<
    Scheme::is_sparse, sparse_engine<Scheme>,
    std::conditional_t<Scheme::is_composite, composite_engine<Scheme>, dense_engine<Scheme>>>;

template <class Scheme>
class codec_engine final : public engine_slot::engine {
public:
  explicit codec_engine(codec<Scheme>& owner) : codec_(owner), kind_(owner) {}

  /// As codec::encode, on device buffers; returns the message size. Errors as codec::encode
  /// (the same text), and device_error.
  template <class T>
  std::size_t encode(const cuda_policy& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key, const std::span<const float>* shared = nullptr) {
    require_elements("gradient", grad.size(), codec_.layout().total_size());
    key.validate();
    return kind_.encode(exec, grad, out, key, shared);
  }
  /// As codec::local_scales, for a device gradient (the scales come back to the host, where
  /// the workers exchange them). A dense scheme scans only; a composite's scales are those of
  /// Q over S's kept values, so it (and a sparse scheme, which has none) encodes into the
  /// engine's buffer.
  template <class T>
  std::vector<float> local_scales(const cuda_policy& exec, std::span<const T> grad,
                                  const stream_key& key) {
    require_elements("gradient", grad.size(), codec_.layout().total_size());
    key.validate();
    if constexpr (Scheme::is_sparse) {
      (void)encode_to_buffer(exec, grad, key);
      return {};
    } else if constexpr (Scheme::is_composite) {
      (void)encode_to_buffer(exec, grad, key);
      const std::span<const float> s = kind_.last_scales();
      return {s.begin(), s.end()};
    } else {
      const std::span<const float> s = kind_.scan_scales(exec, grad);
      return {s.begin(), s.end()};
    }
  }
  /// Validates the device message completely, then writes the decompressed gradient into out
  /// (decode_add: adds it). Errors as codec::decode; out is untouched on error.
  template <class T>
  void decode(const cuda_policy& exec, std::span<const std::byte> msg, std::span<T> out) {
    kind_.template decode_impl<T, false>(exec, msg, out);
  }
  template <class T>
  void decode_add(const cuda_policy& exec, std::span<const std::byte> msg, std::span<T> out) {
    kind_.template decode_impl<T, true>(exec, msg, out);
  }
  /// As codec::sent_elements, message and mask in device memory.
  void sent_elements(const cuda_policy& exec, std::span<const std::byte> msg,
                     std::span<std::uint8_t> sent) {
    kind_.sent_elements(exec, msg, sent);
  }
  /// Q(grad) into out through the engine's device message buffer (grown once).
  template <class T>
  std::size_t apply(const cuda_policy& exec, std::span<const T> grad, std::span<T> out,
                    const stream_key& key) {
    const std::size_t bytes = encode_to_buffer(exec, grad, key);
    decode(exec, std::span<const std::byte>(message_.data(), bytes), out);
    return bytes;
  }

  [[nodiscard]] std::size_t workspace_bytes() const noexcept {
    return kind_.workspace_bytes() + message_.size();
  }
  [[nodiscard]] std::size_t last_launch_count() const noexcept { return kind_.last_launch_count(); }

private:
  template <class T>
  std::size_t encode_to_buffer(const cuda_policy& exec, std::span<const T> grad,
                               const stream_key& key) {
    const std::size_t max_bytes = codec_.template max_encoded_bytes<T>();
    message_.reserve(max_bytes);
    return encode(exec, grad, std::span<std::byte>(message_.data(), max_bytes), key);
  }

  codec<Scheme>& codec_;
  engine_for<Scheme> kind_;
  device_array<std::byte> message_;
};

} // namespace detail::cuda

namespace detail {
/// cuda_policy offloads whole codec calls to the codec's CUDA engine.
template <>
struct codec_offload<cuda_tag> {
  static constexpr bool enabled = true;
  template <class Scheme>
  static cuda::codec_engine<Scheme>& engine(codec<Scheme>& c) {
    using engine_type = cuda::codec_engine<Scheme>;
    return c.engine_.template get<engine_type>([&] { return std::make_unique<engine_type>(c); });
  }
  template <class Scheme>
  static const cuda::codec_engine<Scheme>* find(const codec<Scheme>& c) {
    return c.engine_.template find<cuda::codec_engine<Scheme>>();
  }
};
} // namespace detail

/// What a codec's CUDA engine holds and did: device memory of its workspaces (bytes) and the
/// kernel launches and copies of the last CUDA call (constant in the number of spans). Zeros
/// before the codec's first CUDA call.
struct cuda_codec_stats {
  std::size_t workspace_bytes = 0;
  std::size_t last_launch_count = 0;
};
template <class Scheme>
[[nodiscard]] cuda_codec_stats cuda_stats(const codec<Scheme>& c) {
  const auto* e = detail::codec_offload<cuda_tag>::find(c);
  return e == nullptr ? cuda_codec_stats{}
                      : cuda_codec_stats{e->workspace_bytes(), e->last_launch_count()};
}

} // namespace gradcomp
