// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../codec.hpp"
#include "frame.cuh"
#include "kernels.cuh"
#include "raw_spans.cuh"
#include "runtime.cuh"
#include "sparse_kernels.cuh"
#include "sparse_selection.cuh"
#include "sparse_spans.cuh"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

/// @file
/// sparse_engine<Scheme>: what codec<Scheme> runs under cuda_policy for sparse schemes (top-k,
/// random-k incl. unbiased and shared-seed, threshold-v, adaptive threshold; sparse_coo with
/// fp32/fp16/bf16 values) on every granularity. Messages are byte for byte the CPU's.
///
/// Encode: max |x| of every span, one copy back and sync (finiteness, adaptive threshold's max),
/// the selection of every span at once (backend/cuda/sparse_selection.cuh), the counts copied
/// back (second sync), then headers, indices and values written and the message sealed. Launch
/// count is constant in the number of spans; input errors are the CPU's (a span with a NaN or Inf
/// is copied to the host and named by the CPU's checks; kept values that may not fit the value
/// type are checked on the device). Decode validates everything on the device before
/// scattering. Spans a per-layer identity rule sends raw go through the code kernels as cast
/// codes (raw_spans.cuh). Limit: gradients of fewer than 2^32 elements (32-bit positions).

namespace gradcomp::detail::cuda {

template <class Scheme>
class sparse_engine {
public:
  using scheme_type = Scheme;
  using compressor_type = typename Scheme::compressor_type;
  using encoding_type = typename Scheme::encoding_type;
  using value_type = typename encoding_type::value_type;
  using selection_type = detail::cuda::device_selection<compressor_type>;
  static_assert(std::is_same_v<typename encoding_type::index_coding, fixed_width_indices>,
                "the CUDA backend writes fixed-width indices only: Elias-Fano index coding "
                "(elias_fano_indices) runs on the CPU backend");

  explicit sparse_engine(codec<Scheme>& owner)
      : codec_(owner), selection_(codec_, [](const compressor_type& c) { return c; }),
        tables_(codec_.spans()) {
    const std::size_t n = codec_.layout().total_size();
    S_ = codec_.spans().size();
    const std::size_t S1 = std::max<std::size_t>(S_, 1);
    implied_ = detail::device_array<std::uint64_t>(n + 1);
    scratch_ = detail::device_array<unsigned long long>(4);
    checks_ = detail::device_array<detail::cuda::kept_check>(S1);
    host_scratch_ = detail::pinned_array<unsigned long long>(4);
    prefix_ = detail::pinned_array<std::byte>(wire_header_bytes + S_ * wire_directory_entry_bytes);
    workspace_bytes_ = selection_.bytes() + (n + 1) * 8 + S1 * 64;
  }

  [[nodiscard]] std::size_t workspace_bytes() const noexcept { return workspace_bytes_; }
  [[nodiscard]] std::size_t last_launch_count() const noexcept { return launches_; }

  /// As codec::encode, on device buffers; returns the message size. A sparse scheme has no
  /// scales: `shared`, when given, must be empty.
  template <gradient_value T>
  std::size_t encode(const cuda_policy& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key, const std::span<const float>* shared = nullptr) {
    launches_ = 0;
    const auto& plan = codec_.spans();
    const cudaStream_t st = exec.stream;
    // 1. the span maxima (finiteness, adaptive threshold's max), the selection, and the CPU's
    // input errors in its span order
    selection_.measure(st, grad.data(), key, launches_);
    const std::size_t bad = selection_.first_non_finite();
    const bool sure = selection_.surely_fit(bad, value_traits<value_type>::overflow_abs_bits);
    if (bad < S_ && sure) {
      detail::cuda::fail_span_input(codec_, exec, grad, bad, selection_.max_bits(bad));
    }
    selection_.select_all(st, grad.data(), key, launches_);
    if (!sure) {
      check_kept_values(exec, grad, bad);
    }
    // 2. sizes on the host
    std::size_t total = wire_header_bytes + S_ * wire_directory_entry_bytes;
    std::byte* p = prefix_.data();
    detail::write_frame_header(p, compressor_type::id, encoding_type::id,
                               Scheme::granularity_type::id, value_traits<T>::id,
                               static_cast<std::uint32_t>(S_), codec_.layout().total_size(),
                               key.seed, key.stream_word(), codec_.plan_digest());
    raw_.clear();
    for (std::size_t s = 0; s < S_; ++s) {
      const std::size_t n = plan[s].size;
      if (selection_.raw(s)) { // a per-layer identity rule: the gradient's own values
        detail::write_directory_entry(p + wire_header_bytes + s * wire_directory_entry_bytes, n,
                                      n * sizeof(T), span_mode_raw);
        tables_.set_raw(s, 0, n, plan[s].begin);
        raw_.add(plan[s].begin, n, total);
        total += n * sizeof(T);
        continue;
      }
      const std::size_t k = selection_.count(s);
      const bool implied = selection_.host_span(s).implied != 0;
      const std::size_t bytes = encoding_type::bytes(n, k, implied);
      detail::write_directory_entry(p + wire_header_bytes + s * wire_directory_entry_bytes, n,
                                    bytes, span_mode_compressed);
      tables_.set_encoded(s, total, n, k, implied, selection_.value_scale(s, k));
      total += bytes;
    }
    if (shared != nullptr) {
      detail::require_shared_scales(
          *shared, S_, 0, [](std::size_t) { return std::size_t{0}; },
          [](std::size_t, float) { return false; },
          [&](std::size_t s) { return codec_.span_name(s); });
    }
    detail::require_room(total, out.size());
    // 3. write
    auto* msg = reinterpret_cast<std::uint8_t*>(out.data());
    detail::cuda_check(cudaMemcpyAsync(msg, p, wire_header_bytes + S_ * wire_directory_entry_bytes,
                                       cudaMemcpyHostToDevice, st),
                       "copy header");
    ++launches_;
    tables_.write_headers(st, msg, launches_);
    if (selection_.tile_count() > 0) {
      detail::cuda::write_sparse<value_type, typename selection_type::rule_type, T>
          <<<detail::cuda::grid_for(selection_.tile_count(), 1), detail::cuda::tile_threads, 0,
             st>>>(grad.data(), selection_.spans(), selection_.tiles(), selection_.tile_count(),
                   selection_.flags(), selection_.positions(), tables_.outs(), msg);
      ++launches_;
    }
    raw_.encode(st, grad.data(), msg, launches_);
    detail::cuda::checksum_async(st, msg, total, scratch_.data(), true);
    launches_ += 4;
    detail::cuda_check(cudaStreamSynchronize(st), "encode");
    detail::cuda_check(cudaGetLastError(), "encode kernels");
    return total;
  }

  /// Validates the device message as decode does, then sets sent[i] (device memory) to 1 for
  /// every element it carries a value for and to 0 elsewhere (codec::sent_elements).
  void sent_elements(const cuda_policy& exec, std::span<const std::byte> message,
                     std::span<std::uint8_t> sent) {
    launches_ = 0;
    const cudaStream_t st = exec.stream;
    const received_sparse r = validate(st, message, sent.size());
    detail::cuda::mark_sent<value_type>(st, tables_, raw_, r, implied_.data(), sent, launches_);
  }

private:
  template <class T, bool Add>
  void decode_impl(const cuda_policy& exec, std::span<const std::byte> message, std::span<T> out) {
    launches_ = 0;
    const cudaStream_t st = exec.stream;
    const received_sparse r = validate(st, message, out.size());
    detail::cuda::write_decoded<T, Add>(
        codec_, st, out, scratch_.data() + 3, host_scratch_.data() + 3, launches_,
        [&](auto check, unsigned long long* flag) {
          this->template write_values<T, Add, decltype(check)::value>(
              st, r.msg, r.entries, r.value_type, out.data(), flag);
        });
  }

  /// The CPU decoder's checks, on the device, of a message for an output of out_elements:
  /// frame, span headers, then every index and value; fills the entry tables (and the implied
  /// indices) the writes use.
  received_sparse validate(cudaStream_t st, std::span<const std::byte> message,
                           std::size_t out_elements) {
    const auto& plan = codec_.spans();
    const message_info info =
        detail::cuda::read_device_frame(st, codec_, message, frame_, launches_);
    detail::require_elements("output", out_elements, codec_.layout().total_size());
    const auto* msg = reinterpret_cast<const std::uint8_t*>(message.data());
    tables_.read_headers(
        st, info, msg, [&](std::size_t s) { return codec_.span_name(s); },
        ": sparse span shorter than its 16-byte header", launches_);
    std::uint64_t entries = 0;
    bool any_implied = false;
    selection_.fill(info.seed, info.stream_word, nullptr);
    raw_.clear();
    for (std::size_t s = 0; s < S_; ++s) {
      const std::size_t n = plan[s].size;
      if (selection_.raw(s)) {
        detail::cuda::check_raw_span(codec_, s, info);
        tables_.set_raw(s, entries, n, plan[s].begin);
        raw_.add(plan[s].begin, n, info.spans[s].offset);
        continue;
      }
      const std::byte* h = tables_.header(s);
      const std::size_t k = validate_header(s, n, h, info.spans[s].bytes);
      const detail::sparse_span_header head = detail::sparse_span_header::read(h);
      any_implied = any_implied || head.implied();
      tables_.set_decoded(s, info.spans[s].offset, k, head.index_bytes, head.implied(), entries, n,
                          plan[s].begin, head.value_scale);
      entries += k;
    }
    tables_.upload_decoded(st, launches_);
    if (any_implied) { // regenerate the shared subset from the message's seed and step
      selection_.upload(st, launches_);
      selection_.select(st, static_cast<const float*>(nullptr), launches_);
      detail::cuda::compact_indices<<<detail::cuda::grid_for(codec_.layout().total_size(), 256),
                                      256, 0, st>>>(selection_.flags(), selection_.positions(),
                                                    codec_.layout().total_size(), implied_.data());
      ++launches_;
    }
    check_entries(st, msg, entries, info.value_type);
    return {msg, entries, info.value_type};
  }

  /// Every index and value of the entries and raw spans checked on the device; the first bad
  /// one is the CPU decoder's error.
  void check_entries(cudaStream_t st, const std::uint8_t* msg, std::uint64_t entries,
                     value_type_id vt) {
    detail::cuda_check(cudaMemsetAsync(scratch_.data(), 0xff, 3 * sizeof(unsigned long long), st),
                       "memset");
    ++launches_;
    detail::cuda::with_value_type(vt, [&](auto v) {
      raw_.validate<decltype(v)>(st, msg, scratch_.data() + 1, scratch_.data() + 2, launches_);
    });
    if (entries > 0) {
      detail::cuda::validate_entries<value_type>
          <<<detail::cuda::grid_for(entries, 256), 256, 0, st>>>(
              msg, tables_.outs(), tables_.entries(), tables_.span_count(), entries,
              scratch_.data());
      ++launches_;
    }
    detail::cuda_check(
        cudaMemcpyAsync(host_scratch_.data(), scratch_.data(), 24, cudaMemcpyDeviceToHost, st),
        "copy validation");
    detail::cuda_check(cudaStreamSynchronize(st), "validate");
    tables_.report_bad_entry(
        host_scratch_[0], [&](std::size_t s) { return codec_.span_name(s); }, "index or value",
        "is out of range, not strictly increasing or not finite");
    detail::cuda::check_raw_values(codec_, host_scratch_[1]);
  }

  /// The CPU's errors for the (finite) spans before `end` whose kept values may not fit, found
  /// on the device (the lowest kept element that Span::value_unfit), then span end's NaN or Inf.
  template <class T>
  void check_kept_values(const cuda_policy& exec, std::span<const T> grad, std::size_t end) {
    using span_type = detail::sparse_coo_span<encoding_type>;
    const cudaStream_t st = exec.stream;
    std::vector<detail::cuda::kept_check> checks(std::max<std::size_t>(S_, 1));
    for (std::size_t s = 0; s < end; ++s) {
      if (!selection_.raw(s)) {
        checks[s] = {selection_.value_scale(s, selection_.count(s)), 1u};
      }
    }
    detail::cuda_check(cudaMemcpyAsync(checks_.data(), checks.data(),
                                       checks.size() * sizeof(checks[0]), cudaMemcpyHostToDevice,
                                       st),
                       "upload kept checks");
    detail::cuda_check(cudaMemsetAsync(scratch_.data(), 0xff, sizeof(unsigned long long), st),
                       "memset");
    if (selection_.tile_count() > 0) {
      detail::cuda::find_unfit_kept<span_type, typename selection_type::rule_type, T>
          <<<detail::cuda::grid_for(selection_.tile_count(), 1), detail::cuda::tile_threads, 0,
             st>>>(grad.data(), selection_.spans(), selection_.tiles(), selection_.tile_count(),
                   selection_.flags(), checks_.data(), scratch_.data());
    }
    detail::cuda_check(cudaMemcpyAsync(host_scratch_.data(), scratch_.data(),
                                       sizeof(unsigned long long), cudaMemcpyDeviceToHost, st),
                       "copy kept check");
    detail::cuda_check(cudaStreamSynchronize(st), "kept check");
    launches_ += 4;
    const unsigned long long g = host_scratch_[0];
    if (g != ~0ull) {
      const auto& plan = codec_.spans();
      const std::size_t s =
          detail::cuda::last_span_at(S_, g, [&](std::size_t i) { return plan[i].begin; });
      T v{};
      detail::copy_to(exec, &v, grad.data() + g, sizeof(T));
      span_type::fail_unfit(to_float(v), g - plan[s].begin, [&] { return codec_.span_name(s); });
    }
    if (end < S_) {
      detail::cuda::fail_span_input(codec_, exec, grad, end, selection_.max_bits(end));
    }
  }

  /// The kept values scattered to their indices, the raw spans decoded (or, with Check, the
  /// first element that would overflow T recorded in *flag).
  template <class T, bool Add, bool Check>
  void write_values(cudaStream_t st, const std::uint8_t* msg, std::uint64_t entries,
                    value_type_id vt, T* out, unsigned long long* flag) {
    if (entries > 0) {
      detail::cuda::scatter_entries<value_type, T, Add, Check>
          <<<detail::cuda::grid_for(entries, 256), 256, 0, st>>>(
              msg, tables_.outs(), tables_.entries(), tables_.span_count(), entries,
              implied_.data(), nullptr, out, flag);
      ++launches_;
    }
    detail::cuda::with_value_type(vt, [&](auto v) {
      raw_.decode<decltype(v), T, Add, Check>(st, msg, out, launches_, flag);
    });
  }

  /// The CPU decoder's checks of a sparse span header (encoding/sparse_coo.hpp); returns k.
  std::size_t validate_header(std::size_t s, std::size_t n, const std::byte* h,
                              std::size_t bytes) const {
    return detail::check_sparse_header<encoding_type>(codec_.span_compressor(s), h, bytes, n,
                                                      [&] { return codec_.span_name(s) + ": "; });
  }

  template <class>
  friend class codec_engine; // decode_impl<T, Add>

  codec<Scheme>& codec_; ///< the codec that owns this engine
  selection_type selection_;
  std::size_t S_ = 0;
  detail::cuda::sparse_span_tables tables_;
  detail::cuda::raw_span_group raw_;
  detail::device_array<std::uint64_t> implied_;
  detail::device_array<unsigned long long> scratch_;
  detail::device_array<detail::cuda::kept_check> checks_;
  detail::pinned_array<unsigned long long> host_scratch_;
  detail::pinned_array<std::byte> prefix_;
  detail::cuda::frame_buffers frame_;
  std::size_t workspace_bytes_ = 0;
  std::size_t launches_ = 0;
};

} // namespace gradcomp::detail::cuda
