// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../codec.hpp"
#include "../../compressor/identity.hpp"
#include "../../detail/codec_workspace.hpp"
#include "../../detail/reduction_replay.hpp"
#include "dense_message_plan.cuh"
#include "frame.cuh"
#include "kernels.cuh"
#include "runtime.cuh"
#include "span_reductions.cuh"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

/// @file
/// dense_engine<Scheme>: what codec<Scheme> runs under cuda_policy for fixed-width code schemes
/// (backend/cuda/codec_engine.cuh picks it; sparse_engine.cuh has the sparse one). Gradients,
/// messages and outputs are device buffers; the messages are byte for byte those of the CPU codec
/// (same scheme, layout, inputs and stream key), so a CPU receiver decodes a GPU sender's message
/// and vice versa.
///
/// Encoding runs in batched launches whatever the number of spans: the canonical reductions of
/// every span (one launch per reduction the compressor asks for, plus one to combine chunks into
/// groups), one copy of the reductions to the host, where the compressor's own scan() turns them
/// into scales (detail/reduction_replay.hpp: the same scales and errors as on the CPU), then one
/// code launch per code width, one launch for the scales and two for the checksum. Decoding
/// copies the frame to the host, validates the checksum, scales, codes and padding on the device,
/// and only then writes the output (failure atomicity, as on the CPU).
///
/// Scope: schemes with fixed-width code encodings (identity/dense casts, sign, scaled sign,
/// TernGrad, QSGD, natural, stochastic rounding) on every granularity, with per-layer rules.
///
/// Workspaces are allocated when the engine is built, on the codec's first CUDA call (and, once,
/// per gradient value type); later calls do not allocate. workspace_bytes() reports the device
/// memory held. Each call synchronizes the stream once to read the reductions (encode) or the
/// validation (decode). The plan, span names and error text are the owning codec's.

namespace gradcomp {

namespace detail::cuda {

template <class Scheme>
class dense_engine {
public:
  using scheme_type = Scheme;
  using compressor_type = typename Scheme::compressor_type;
  using encoding_type = typename Scheme::encoding_type;
  static_assert(!Scheme::is_sparse && !Scheme::is_composite,
                "gradcomp: dense_engine takes fixed-width code schemes; codec_engine picks the "
                "sparse or composite engine for the others");

  explicit dense_engine(codec<Scheme>& owner) : codec_(owner) {
    plan_reductions();
    build_scales();
  }

  /// Device memory held by the codec's workspaces, in bytes.
  [[nodiscard]] std::size_t workspace_bytes() const noexcept { return workspace_bytes_; }
  /// Kernel launches and copies issued by the last encode() or decode() (constant in the number
  /// of spans: tests check it).
  [[nodiscard]] std::size_t last_launch_count() const noexcept { return launches_; }

  /// Compresses and encodes the device gradient `grad` into the device buffer `out` (with the
  /// workers' `shared` scales in place of its own, when given); returns the message size.
  /// Errors as codec::encode (messages included), and device_error.
  template <gradient_value T>
  std::size_t encode(const cuda_policy& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key, const std::span<const float>* shared = nullptr) {
    message_plan& mp = plan_for(value_traits<T>::id);
    (void)scan_scales(exec, grad);
    if (shared != nullptr) {
      detail::require_shared_scales(
          *shared, codec_.spans().size(), total_scales_,
          [&](std::size_t s) { return span_scale_begin_[s]; },
          [&](std::size_t s, float v) { return codec_.span_compressor(s).valid_scale(v); },
          [&](std::size_t s) { return codec_.span_name(s); });
      std::copy(shared->begin(), shared->end(), host_scales_.data());
    }
    detail::require_room(mp.total_bytes, out.size());
    auto* msg = reinterpret_cast<std::uint8_t*>(out.data());
    write_prefix(exec, mp, value_traits<T>::id, key, msg);
    if (total_scales_ > 0) { // before the code kernels, which read them
      detail::cuda_check(cudaMemcpyAsync(scales_.data(), host_scales_.data(),
                                         total_scales_ * sizeof(float), cudaMemcpyHostToDevice,
                                         exec.stream),
                         "copy scales");
      detail::cuda::
          write_scales<<<detail::cuda::grid_for(total_scales_, 256), 256, 0, exec.stream>>>(
              scale_begin_.data(), mp.scale_payload.data(), scale_spans_, total_scales_,
              scales_.data(), msg);
      launches_ += 2;
    }
    const random_stream rs(key.seed, key.stream_word(), random_purpose::rounding);
    for (auto& g : mp.groups) {
      launch_encode(exec, g, grad.data(), rs, msg);
    }
    // raw spans carry the gradient's own value type
    if constexpr (std::is_same_v<T, float>) {
      launch_encode(exec, mp.raw_f32, grad.data(), rs, msg);
    } else if constexpr (std::is_same_v<T, half>) {
      launch_encode(exec, mp.raw_f16, grad.data(), rs, msg);
    } else {
      launch_encode(exec, mp.raw_bf16, grad.data(), rs, msg);
    }
    checksum(exec, msg, mp.total_bytes, true);
    detail::cuda_check(cudaStreamSynchronize(exec.stream), "encode");
    detail::cuda_check(cudaGetLastError(), "encode kernels");
    return mp.total_bytes;
  }

  /// The scales encode() would send for grad (codec::local_scales): the device's reductions,
  /// every span's scan() replayed on them, and the CPU's input checks. No message is written.
  template <gradient_value T>
  std::span<const float> scan_scales(const cuda_policy& exec, std::span<const T> grad) {
    launches_ = 0;
    reduce(exec, grad.data());
    compute_scales<T>(exec, grad);
    return {host_scales_.data(), total_scales_};
  }

private:
  template <class Coder>
  using code_group = detail::cuda::code_group<Coder>;
  using message_plan = dense_message_plan<Scheme>;
  using span_coder =
      decltype(std::declval<const compressor_type&>().coder(std::declval<const encoding_type&>()));
  static constexpr bool sign_plane = detail::has_sign_plane<span_coder>;

  // ---- construction ------------------------------------------------------------------------

  /// Plans the reductions every span's scan() asks for (the finiteness check of raw spans
  /// included).
  void plan_reductions() {
    const auto& plan = codec_.spans();
    std::vector<detail::cuda::reduction_target> targets;
    for (const span_desc& d : plan) {
      targets.push_back({d.begin, d.size});
    }
    std::vector<float> scales;
    std::vector<double> sums;
    reductions_.plan(
        targets,
        [&](std::size_t s, const detail::reduction_replay& policy) {
          if (!plan[s].compressed) {
            (void)detail::scan_max_abs(policy, static_cast<const float*>(nullptr), plan[s].size);
            return;
          }
          const compressor_type& c = codec_.span_compressor(s);
          scales.assign(c.num_scales(plan[s].size), 0.0f);
          (void)c.scan(policy, static_cast<const float*>(nullptr), plan[s].size, scales.data(),
                       sums);
        },
        nullptr);
    detail::cuda_check(cudaStreamSynchronize(nullptr), "upload reduction tables");
  }

  void build_scales() {
    const auto& plan = codec_.spans();
    // scales: the CPU codec's concatenation, span by span
    std::vector<std::uint64_t> scale_begin;
    for (std::size_t s = 0; s < plan.size(); ++s) {
      const std::size_t ns =
          plan[s].compressed ? codec_.span_compressor(s).num_scales(plan[s].size) : 0;
      span_scale_begin_.push_back(total_scales_);
      if (ns > 0) {
        scale_begin.push_back(total_scales_);
      }
      total_scales_ += ns;
    }
    scale_spans_ = static_cast<std::uint32_t>(scale_begin.size());
    scale_begin_ = upload_vector(scale_begin);
    scales_ = detail::device_array<float>(std::max<std::size_t>(total_scales_, 1));
    host_scales_ = detail::pinned_array<float>(std::max<std::size_t>(total_scales_, 1));
    flags_ = detail::device_array<unsigned long long>(4);
    host_flags_ = detail::pinned_array<unsigned long long>(4);
    prefix_ = detail::pinned_array<std::byte>(wire_header_bytes +
                                              plan.size() * wire_directory_entry_bytes);
    workspace_bytes_ = reductions_.bytes() + scales_.size() * 8 + 64;
  }

  message_plan& plan_for(value_type_id vt) {
    auto& slot = plans_[static_cast<std::size_t>(vt) - 1];
    if (!slot) {
      slot.emplace(message_plan::build(codec_, vt, span_scale_begin_));
    }
    return *slot;
  }

  // ---- encode --------------------------------------------------------------------------------

  template <class T>
  void reduce(const cuda_policy& exec, const T* x) {
    reductions_.launch(exec.stream, x, launches_);
    detail::cuda_check(cudaStreamSynchronize(exec.stream), "reductions");
  }

  /// Replays every span's scan() on the device's reductions, then the CPU's input checks in the
  /// CPU's order (detail/dense_span_coder.hpp, codec::plan_encode): a span whose max |x| says it
  /// holds a non-finite or out-of-range value is copied to the host, where the same check
  /// functions name the element.
  template <class T>
  void compute_scales(const cuda_policy& exec, std::span<const T> grad) {
    const auto& plan = codec_.spans();
    for (std::size_t s = 0; s < plan.size(); ++s) {
      const std::uint32_t mb = reductions_.max_bits(s);
      std::uint32_t overflow_bits = detail::inf_abs_bits;
      if (plan[s].compressed) {
        (void)codec_.span_compressor(s).scan(
            reductions_.replay(s), static_cast<const T*>(nullptr), plan[s].size,
            host_scales_.data() + span_scale_begin_[s], scan_sums_);
        if constexpr (requires { span_coder::overflow_abs_bits; }) {
          overflow_bits = span_coder::overflow_abs_bits;
        }
      }
      if (mb >= detail::inf_abs_bits || mb >= overflow_bits) {
        detail::cuda::fail_span_input(codec_, exec, grad, s, mb, overflow_bits);
      }
    }
  }
  void write_prefix(const cuda_policy& exec, const message_plan& mp, value_type_id vt,
                    const stream_key& key, std::uint8_t* msg) {
    std::byte* p = prefix_.data();
    detail::write_frame_header(
        p, compressor_type::id, encoding_type::id, Scheme::granularity_type::id, vt,
        static_cast<std::uint32_t>(codec_.spans().size()), codec_.layout().total_size(), key.seed,
        key.stream_word(), codec_.plan_digest());
    std::copy(mp.directory.begin(), mp.directory.end(), p + wire_header_bytes);
    detail::cuda_check(cudaMemcpyAsync(msg, p, wire_header_bytes + mp.directory.size(),
                                       cudaMemcpyHostToDevice, exec.stream),
                       "copy header");
    ++launches_;
  }

  template <class Coder, class T>
  void launch_encode(const cuda_policy& exec, const code_group<Coder>& g, const T* x,
                     const random_stream& rs, std::uint8_t* msg) {
    if (g.tile_count == 0) {
      return;
    }
    constexpr bool planes = detail::has_sign_plane<Coder>;
    detail::cuda::encode_tiles<Coder, planes, T>
        <<<detail::cuda::grid_for(g.tile_count, 1), detail::cuda::tile_threads, 0, exec.stream>>>(
            x, g.spans.data(), g.tiles.data(), g.tile_count, scales_.data(), rs, g.bits, msg);
    ++launches_;
  }

  /// Computes the checksum of the device message; seals it (writes bytes 48..56) or not.
  void checksum(const cuda_policy& exec, std::uint8_t* msg, std::size_t size, bool seal) {
    detail::cuda::checksum_async(exec.stream, msg, size, flags_.data(), seal);
    launches_ += 3;
  }

  // ---- decode --------------------------------------------------------------------------------

  template <class T, bool Add>
  void decode_impl(const cuda_policy& exec, std::span<const std::byte> message, std::span<T> out) {
    launches_ = 0;
    const auto* msg = reinterpret_cast<const std::uint8_t*>(message.data());
    const value_type_id vt = validate(exec, message, out.size());
    message_plan& mp = plan_for(vt);
    detail::cuda::check_output_range<T, Add>(
        codec_, exec.stream, flags_.data() + 3, host_flags_.data() + 3, launches_,
        [&](unsigned long long* flag) {
          launch_all_decodes<T, Add, true>(exec, mp, vt, msg, out.data(), flag);
        });
    launch_all_decodes<T, Add, false>(exec, mp, vt, msg, out.data(), nullptr);
    detail::cuda_check(cudaGetLastError(), "decode kernels");
  }

  /// As codec::sent_elements: validates as decode does; a dense message carries every element.
  void sent_elements(const cuda_policy& exec, std::span<const std::byte> message,
                     std::span<std::uint8_t> sent) {
    launches_ = 0;
    (void)validate(exec, message, sent.size());
    detail::cuda_check(cudaMemsetAsync(sent.data(), 1, sent.size(), exec.stream), "memset");
    ++launches_;
  }

  /// The CPU decoder's checks (frame, span sizes, payload) of a message for out_elements;
  /// returns its value type.
  value_type_id validate(const cuda_policy& exec, std::span<const std::byte> message,
                         std::size_t out_elements) {
    const message_info info =
        detail::cuda::read_device_frame(exec.stream, codec_, message, frame_, launches_);
    detail::require_elements("output", out_elements, codec_.layout().total_size());
    message_plan& mp = plan_for(info.value_type);
    for (std::size_t s = 0; s < codec_.spans().size(); ++s) {
      detail::require(info.spans[s].bytes == mp.bytes[s], errc::corrupt_payload,
                      codec_.span_name(s) + ": " + std::to_string(info.spans[s].bytes) +
                          " payload bytes, the format needs " + std::to_string(mp.bytes[s]));
    }
    validate_payload(exec, mp, info.value_type,
                     reinterpret_cast<const std::uint8_t*>(message.data()));
    return info.value_type;
  }

  /// The decode kernels of every group and of the raw spans of the message's value type.
  template <class T, bool Add, bool Check>
  void launch_all_decodes(const cuda_policy& exec, message_plan& mp, value_type_id vt,
                          const std::uint8_t* msg, T* out, unsigned long long* flag) {
    for (auto& g : mp.groups) {
      launch_decode<T, Add, Check>(exec, g, msg, out, flag);
    }
    switch (vt) {
    case value_type_id::f32:
      launch_decode<T, Add, Check>(exec, mp.raw_f32, msg, out, flag);
      break;
    case value_type_id::f16:
      launch_decode<T, Add, Check>(exec, mp.raw_f16, msg, out, flag);
      break;
    case value_type_id::bf16:
      launch_decode<T, Add, Check>(exec, mp.raw_bf16, msg, out, flag);
      break;
    }
  }

  /// Scales, codes and padding of every span, checked on the device before anything is written.
  void validate_payload(const cuda_policy& exec, message_plan& mp, value_type_id vt,
                        const std::uint8_t* msg) {
    detail::cuda_check(
        cudaMemsetAsync(flags_.data(), 0xff, 3 * sizeof(unsigned long long), exec.stream),
        "memset");
    ++launches_;
    unsigned long long* bad_scale = flags_.data();
    unsigned long long* bad_code = flags_.data() + 1;
    unsigned long long* bad_padding = flags_.data() + 2;
    if (total_scales_ > 0) {
      detail::cuda::
          read_scales<<<detail::cuda::grid_for(total_scales_, 256), 256, 0, exec.stream>>>(
              scale_begin_.data(), mp.scale_payload.data(), scale_spans_, total_scales_, msg,
              scales_.data(), bad_scale);
      ++launches_;
    }
    const auto validate = [&](auto& g) {
      using Coder = typename std::decay_t<decltype(g)>::coder_type;
      if (g.tile_count == 0) {
        return;
      }
      constexpr bool planes = detail::has_sign_plane<Coder>;
      detail::cuda::validate_tiles<Coder, planes>
          <<<detail::cuda::grid_for(g.tile_count, 1), detail::cuda::tile_threads, 0, exec.stream>>>(
              g.spans.data(), g.tiles.data(), g.tile_count, msg, g.bits, bad_code, bad_padding);
      ++launches_;
    };
    for (auto& g : mp.groups) {
      validate(g);
    }
    switch (vt) {
    case value_type_id::f32:
      validate(mp.raw_f32);
      break;
    case value_type_id::f16:
      validate(mp.raw_f16);
      break;
    case value_type_id::bf16:
      validate(mp.raw_bf16);
      break;
    }
    detail::cuda_check(cudaMemcpyAsync(host_flags_.data(), flags_.data(),
                                       3 * sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                                       exec.stream),
                       "copy validation");
    ++launches_;
    detail::cuda_check(cudaStreamSynchronize(exec.stream), "validate");
    detail::cuda::report_code_faults(
        codec_, host_flags_.data(), [&](std::size_t s) { return span_scale_begin_[s]; }, "element");
  }

  template <class T, bool Add, bool Check, class Coder>
  void launch_decode(const cuda_policy& exec, const code_group<Coder>& g, const std::uint8_t* msg,
                     T* out, unsigned long long* flag) {
    if (g.tile_count == 0) {
      return;
    }
    constexpr bool planes = detail::has_sign_plane<Coder>;
    detail::cuda::decode_tiles<Coder, planes, T, Add, Check>
        <<<detail::cuda::grid_for(g.tile_count, 1), detail::cuda::tile_threads, 0, exec.stream>>>(
            g.spans.data(), g.tiles.data(), g.tile_count, scales_.data(), msg, g.bits, out, flag);
    ++launches_;
  }

  template <class>
  friend class codec_engine; // decode_impl<T, Add>, sent_elements

  codec<Scheme>& codec_; ///< the codec that owns this engine
  detail::cuda::span_reductions reductions_;
  std::vector<double> scan_sums_;
  std::vector<std::size_t> span_scale_begin_;
  std::size_t total_scales_ = 0;
  std::uint32_t scale_spans_ = 0;
  detail::device_array<std::uint64_t> scale_begin_;
  detail::device_array<float> scales_;
  detail::pinned_array<float> host_scales_;
  detail::device_array<unsigned long long> flags_;
  detail::pinned_array<unsigned long long> host_flags_;
  detail::pinned_array<std::byte> prefix_;
  detail::cuda::frame_buffers frame_;
  std::array<std::optional<message_plan>, 3> plans_;
  std::size_t workspace_bytes_ = 0;
  std::size_t launches_ = 0;
};

} // namespace detail::cuda
} // namespace gradcomp
