// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../codec.hpp"
#include "../../compressor/compose.hpp"
#include "../../encoding/sparse_codes.hpp"
#include "frame.cuh"
#include "kept_code_tables.cuh"
#include "kernels.cuh"
#include "raw_spans.cuh"
#include "runtime.cuh"
#include "span_reductions.cuh"
#include "sparse_kernels.cuh"
#include "sparse_selection.cuh"
#include "sparse_spans.cuh"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

/// @file
/// composite_engine<Scheme>: what codec<Scheme> runs under cuda_policy for compositions
/// (compose<S, Q> with sparse_codes<code encoding>: Top-k + TernGrad, Random-k + QSGD, ...) on
/// every granularity. Messages are byte for byte the CPU's.
///
/// Encode: S selects on the device (sparse_selection.cuh); the kept values of span s, times S's
/// value scale, go to kept[begin_s + j], j their rank (where the CPU keys Q's rounding); Q's
/// canonical reductions run over the kept values of all spans at once (span_reductions.cuh,
/// planned for this call's counts) and its scan() is replayed on the host for the scales; then
/// headers, indices, scales and codes are written in one launch each and the message sealed.
/// Three synchronizations; the launch count does not depend on the number of spans.
///
/// Decode: frame and span headers are checked on the host (the CPU's checks), indices, scales,
/// codes and padding on the device, all before anything is written; then Q's codes are decoded
/// to the kept buffer and scattered to their indices. Raw spans (per-layer identity rules) go
/// through the code kernels as cast codes. Limit: below 2^32 - 1 elements.

namespace gradcomp::detail::cuda {

template <class Scheme>
class composite_engine {
public:
  using scheme_type = Scheme;
  using compressor_type = typename Scheme::compressor_type;
  using encoding_type = typename Scheme::encoding_type;
  using sparsifier_type = typename compressor_type::sparsifier_type;
  using quantizer_type = typename compressor_type::quantizer_type;
  using selection_type = detail::cuda::device_selection<sparsifier_type>;
  using coder_type = decltype(std::declval<const quantizer_type&>().coder(
      std::declval<const typename encoding_type::code_encoding&>()));
  static constexpr bool sign_plane = detail::has_sign_plane<coder_type>;
  static_assert(std::is_same_v<typename encoding_type::index_coding, fixed_width_indices>,
                "the CUDA backend writes fixed-width indices only: Elias-Fano index coding "
                "(elias_fano_indices) runs on the CPU backend");

  explicit composite_engine(codec<Scheme>& owner)
      : codec_(owner), selection_(codec_, [](const compressor_type& c) { return c.sparsifier; }),
        coder_(codec_.scheme().compressor.quantizer.coder(codec_.scheme().encoding.codes)),
        tables_(codec_.spans()) {
    const std::size_t n = codec_.layout().total_size();
    S_ = codec_.spans().size();
    const std::size_t S1 = std::max<std::size_t>(S_, 1);
    kept_ = detail::device_array<float>(std::max<std::size_t>(n, 1));
    value_scales_ = detail::device_array<float>(S1);
    host_value_scales_ = detail::pinned_array<float>(S1);
    scratch_ = detail::device_array<unsigned long long>(6);
    host_scratch_ = detail::pinned_array<unsigned long long>(6);
    prefix_ = detail::pinned_array<std::byte>(wire_header_bytes + S_ * wire_directory_entry_bytes);
    counts_.assign(S_, 0);
    offsets_.assign(S_, 0);
    // size the quantizer's buffers for the most values S keeps
    for (std::size_t s = 0; s < S_; ++s) {
      counts_[s] =
          selection_.raw(s) ? 0 : codec_.span_compressor(s).max_selected(codec_.spans()[s].size);
    }
    plan_reductions(nullptr); // always once, even for no spans: sizes the reduction buffers
    reduced_counts_ = counts_;
    plan_quantizer(nullptr, false);
    detail::cuda_check(cudaStreamSynchronize(nullptr), "composite codec tables");
  }

  [[nodiscard]] std::size_t workspace_bytes() const noexcept {
    return selection_.bytes() + kept_.size() * 4 + reductions_.bytes() +
           codes_.code_spans.size() * sizeof(code_span) +
           codes_.tiles.size() * sizeof(detail::cuda::code_tile) + scales_.size() * 8;
  }
  [[nodiscard]] std::size_t last_launch_count() const noexcept { return launches_; }
  /// Q's scales of the last encode (codec::local_scales layout).
  [[nodiscard]] std::span<const float> last_scales() const noexcept {
    return {host_scales_.data(), codes_.total_scales};
  }

  /// As codec::encode, on device buffers (with the workers' `shared` scales of Q in place of
  /// its own, when given); returns the message size.
  template <gradient_value T>
  std::size_t encode(const cuda_policy& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key, const std::span<const float>* shared = nullptr) {
    launches_ = 0;
    const cudaStream_t st = exec.stream;
    // 1. S's selection (span maxima first); the CPU's checks end at the first NaN or Inf span
    selection_.measure(st, grad.data(), key, launches_);
    const std::size_t bad = selection_.first_non_finite();
    if (bad < S_ && selection_.surely_fit(bad, detail::inf_abs_bits)) {
      detail::cuda::fail_span_input(codec_, exec, grad, bad, selection_.max_bits(bad));
    }
    selection_.select_all(st, grad.data(), key, launches_);
    // 2. the message layout for this call's counts
    const std::size_t total = lay_out_message(key, value_traits<T>::id);
    plan_quantizer(st, true);
    // 3. the kept values, Q's reductions over them, Q's scales on the host
    upload_async(host_value_scales_, value_scales_, S_, st);
    if (selection_.tile_count() > 0) {
      detail::cuda::gather_kept<typename selection_type::rule_type, T>
          <<<detail::cuda::grid_for(selection_.tile_count(), 1), detail::cuda::tile_threads, 0,
             st>>>(grad.data(), selection_.spans(), selection_.tiles(), selection_.tile_count(),
                   selection_.flags(), selection_.positions(), value_scales_.data(), kept_.data());
      ++launches_;
    }
    reductions_.launch(st, kept_.data(), launches_);
    detail::cuda_check(cudaStreamSynchronize(st), "reductions");
    replay_scales(bad);
    if (bad < S_) {
      detail::cuda::fail_span_input(codec_, exec, grad, bad, selection_.max_bits(bad));
    }
    if (shared != nullptr) {
      detail::require_shared_scales(
          *shared, S_, codes_.total_scales,
          [&](std::size_t s) { return codes_.span_scale_begin[s]; },
          [&](std::size_t s, float v) { return quantizer(s).valid_scale(v); },
          [&](std::size_t s) { return codec_.span_name(s); });
      std::copy(shared->begin(), shared->end(), host_scales_.data());
    }
    detail::require_room(total, out.size());
    // 4. write: frame, span headers, indices, scales, codes, checksum
    write_message(st, grad.data(), reinterpret_cast<std::uint8_t*>(out.data()), total, key);
    detail::cuda_check(cudaStreamSynchronize(st), "encode");
    detail::cuda_check(cudaGetLastError(), "encode kernels");
    return total;
  }

private:
  using code_span = detail::cuda::code_span<coder_type>;

  [[nodiscard]] const quantizer_type& quantizer(std::size_t s) const {
    return codec_.span_compressor(s).quantizer;
  }

  /// From the counts of the selection: the frame header and directory (in prefix_), the span
  /// headers and where every span goes (tables_), and S's value scales. Returns the size.
  std::size_t lay_out_message(const stream_key& key, value_type_id vt) {
    const auto& plan = codec_.spans();
    std::size_t total = wire_header_bytes + S_ * wire_directory_entry_bytes;
    std::byte* p = prefix_.data();
    detail::write_frame_header(p, compressor_type::id, encoding_type::id,
                               Scheme::granularity_type::id, vt, static_cast<std::uint32_t>(S_),
                               codec_.layout().total_size(), key.seed, key.stream_word(),
                               codec_.plan_digest());
    raw_.clear();
    for (std::size_t s = 0; s < S_; ++s) {
      const std::size_t n = plan[s].size;
      counts_[s] = 0;
      offsets_[s] = total;
      if (selection_.raw(s)) { // a per-layer identity rule: the gradient's own values
        const std::size_t bytes = n * value_size(vt);
        detail::write_directory_entry(p + wire_header_bytes + s * wire_directory_entry_bytes, n,
                                      bytes, span_mode_raw);
        tables_.set_raw(s, 0, n, plan[s].begin);
        raw_.add(plan[s].begin, n, total);
        host_value_scales_[s] = 1.0f;
        total += bytes;
        continue;
      }
      const std::size_t k = selection_.count(s);
      const std::size_t bytes =
          detail::sparse_codes_span<fixed_width_indices>::bytes(quantizer(s), coder_, n, k);
      detail::write_directory_entry(p + wire_header_bytes + s * wire_directory_entry_bytes, n,
                                    bytes, span_mode_compressed);
      counts_[s] = k;
      tables_.set_encoded(s, total, n, k, false, 1.0f);
      host_value_scales_[s] = selection_.value_scale(s, k);
      total += bytes;
    }
    return total;
  }

  /// Q over the kept values of this call (counts_[s] values of span s at kept_[begin_s...),
  /// the span's payload at offsets_[s]): the reductions its scan() asks for (encode only), where
  /// its scales and codes go, and the code tiles. Uploads the tables on `st`, only when the
  /// counts or offsets differ from those of the tables already there (never again, after the
  /// first call, for top-k and random-k, whose counts are fixed).
  void plan_quantizer(cudaStream_t st, bool reductions) {
    const auto& plan = codec_.spans();
    if (reductions && counts_ != reduced_counts_) {
      plan_reductions(st);
      reduced_counts_ = counts_;
    }
    if (counts_ == coded_counts_ && offsets_ == coded_offsets_) {
      return;
    }
    coded_counts_ = counts_;
    coded_offsets_ = offsets_;
    codes_.build(
        plan, counts_, [&](std::size_t s) { return selection_.raw(s); },
        [&](std::size_t s) -> const quantizer_type& { return quantizer(s); },
        codec_.scheme().encoding.codes, coder_.bits(),
        [&](std::size_t s, std::size_t k) {
          return offsets_[s] + encoding_type::span_header_bytes +
                 k * encoding_type::index_bytes(plan[s].size);
        },
        st);
    scales_.reserve(std::max<std::size_t>(codes_.total_scales, 1));
    host_scales_.reserve(std::max<std::size_t>(codes_.total_scales, 1));
  }

  /// The canonical reductions Q's scan() asks for over the kept values of every span.
  void plan_reductions(cudaStream_t st) {
    const auto& plan = codec_.spans();
    targets_.clear();
    for (std::size_t s = 0; s < S_; ++s) {
      targets_.push_back({plan[s].begin, counts_[s]});
    }
    reductions_.plan(
        targets_,
        [&](std::size_t s, const detail::reduction_replay& policy) {
          if (selection_.raw(s)) {
            return; // checked by the selection's span maxima
          }
          probe_scales_.assign(quantizer(s).num_scales(counts_[s]), 0.0f);
          (void)quantizer(s).scan(policy, static_cast<const float*>(nullptr), counts_[s],
                                  probe_scales_.data(), scan_sums_);
        },
        st);
  }

  /// Q's scan() of the spans before `end`, replayed on the device's reductions of the kept values.
  void replay_scales(std::size_t end) {
    for (std::size_t s = 0; s < end; ++s) {
      if (selection_.raw(s)) {
        continue;
      }
      const std::uint32_t kept_bits =
          quantizer(s).scan(reductions_.replay(s), static_cast<const float*>(nullptr), counts_[s],
                            host_scales_.data() + codes_.span_scale_begin[s], scan_sums_);
      detail::composite_span_coder<Scheme>::require_kept_fit(kept_bits,
                                                             [&] { return codec_.span_name(s); });
    }
  }

  template <class T>
  void write_message(cudaStream_t st, const T* x, std::uint8_t* msg, std::size_t total,
                     const stream_key& key) {
    detail::cuda_check(cudaMemcpyAsync(msg, prefix_.data(),
                                       wire_header_bytes + S_ * wire_directory_entry_bytes,
                                       cudaMemcpyHostToDevice, st),
                       "copy header");
    ++launches_;
    tables_.write_headers(st, msg, launches_);
    if (selection_.tile_count() > 0) { // indices only: the values travel as Q's codes
      detail::cuda::write_sparse<void, typename selection_type::rule_type, T>
          <<<detail::cuda::grid_for(selection_.tile_count(), 1), detail::cuda::tile_threads, 0,
             st>>>(x, selection_.spans(), selection_.tiles(), selection_.tile_count(),
                   selection_.flags(), selection_.positions(), tables_.outs(), msg);
      ++launches_;
    }
    if (codes_.total_scales > 0) {
      upload_async(host_scales_, scales_, codes_.total_scales, st);
      detail::cuda::write_scales<<<detail::cuda::grid_for(codes_.total_scales, 256), 256, 0, st>>>(
          codes_.scale_begin.data(), codes_.scale_payload.data(),
          static_cast<std::uint32_t>(codes_.host_scale_begin.size()), codes_.total_scales,
          scales_.data(), msg);
      launches_ += 2;
    }
    if (!codes_.host_tiles.empty()) {
      const random_stream rs(key.seed, key.stream_word(), random_purpose::rounding);
      detail::cuda::encode_tiles<coder_type, sign_plane, float>
          <<<detail::cuda::grid_for(codes_.host_tiles.size(), 1), detail::cuda::tile_threads, 0,
             st>>>(kept_.data(), codes_.code_spans.data(), codes_.tiles.data(),
                   codes_.host_tiles.size(), scales_.data(), rs, coder_.bits(), msg);
      ++launches_;
    }
    raw_.encode(st, x, msg, launches_);
    detail::cuda::checksum_async(st, msg, total, scratch_.data(), true);
    launches_ += 4;
  }

  template <class T, bool Add>
  void decode_impl(const cuda_policy& exec, std::span<const std::byte> message, std::span<T> out) {
    launches_ = 0;
    const cudaStream_t st = exec.stream;
    const received_sparse r = validate(st, message, out.size());
    // write: Q's values to the kept buffer, then to their indices
    if (!codes_.host_tiles.empty()) {
      detail::cuda::decode_tiles<coder_type, sign_plane, float, false>
          <<<detail::cuda::grid_for(codes_.host_tiles.size(), 1), detail::cuda::tile_threads, 0,
             st>>>(codes_.code_spans.data(), codes_.tiles.data(), codes_.host_tiles.size(),
                   scales_.data(), r.msg, coder_.bits(), kept_.data(), nullptr);
      ++launches_;
    }
    detail::cuda::write_decoded<T, Add>(
        codec_, st, out, scratch_.data() + 5, host_scratch_.data() + 5, launches_,
        [&](auto check, unsigned long long* flag) {
          this->template write_values<T, Add, decltype(check)::value>(
              st, r.msg, r.entries, r.value_type, out.data(), flag);
        });
  }

  /// As codec::sent_elements: validates as decode does, then marks the kept and raw elements.
  void sent_elements(const cuda_policy& exec, std::span<const std::byte> message,
                     std::span<std::uint8_t> sent) {
    launches_ = 0;
    const cudaStream_t st = exec.stream;
    const received_sparse r = validate(st, message, sent.size());
    detail::cuda::mark_sent<void>(st, tables_, raw_, r, nullptr, sent, launches_);
  }

  /// The CPU decoder's checks (frame, span headers, payload) of a message for out_elements.
  received_sparse validate(cudaStream_t st, std::span<const std::byte> message,
                           std::size_t out_elements) {
    const message_info info =
        detail::cuda::read_device_frame(st, codec_, message, frame_, launches_);
    detail::require_elements("output", out_elements, codec_.layout().total_size());
    const auto* msg = reinterpret_cast<const std::uint8_t*>(message.data());
    const std::uint64_t entries = read_span_headers(st, info, msg);
    plan_quantizer(st, false);
    validate_payload(st, msg, entries, info.value_type);
    return {msg, entries, info.value_type};
  }

  /// The decoded kept values scattered to their indices, the raw spans decoded (or, with Check,
  /// the first element that would overflow T recorded in *flag).
  template <class T, bool Add, bool Check>
  void write_values(cudaStream_t st, const std::uint8_t* msg, std::uint64_t entries,
                    value_type_id vt, T* out, unsigned long long* flag) {
    if (entries > 0) {
      detail::cuda::scatter_entries<void, T, Add, Check>
          <<<detail::cuda::grid_for(entries, 256), 256, 0, st>>>(
              msg, tables_.outs(), tables_.entries(), tables_.span_count(), entries, nullptr,
              kept_.data(), out, flag);
      ++launches_;
    }
    detail::cuda::with_value_type(vt, [&](auto v) {
      raw_.decode<decltype(v), T, Add, Check>(st, msg, out, launches_, flag);
    });
  }

  /// Copies the span headers back and checks them as the CPU does; sets counts_, offsets_ and
  /// the entry tables. Returns the number of entries (kept values) of the message.
  std::uint64_t read_span_headers(cudaStream_t st, const message_info& info,
                                  const std::uint8_t* msg) {
    const auto& plan = codec_.spans();
    tables_.read_headers(
        st, info, msg, [&](std::size_t s) { return codec_.span_name(s); },
        ": composite span shorter than its header", launches_);
    std::uint64_t entries = 0;
    raw_.clear();
    for (std::size_t s = 0; s < S_; ++s) {
      const std::size_t n = plan[s].size;
      if (selection_.raw(s)) {
        detail::cuda::check_raw_span(codec_, s, info);
        counts_[s] = 0;
        offsets_[s] = info.spans[s].offset;
        tables_.set_raw(s, entries, n, plan[s].begin);
        raw_.add(plan[s].begin, n, info.spans[s].offset);
        continue;
      }
      const std::byte* h = tables_.header(s);
      const std::size_t k = detail::sparse_codes_span<fixed_width_indices>::check_header(
          codec_.span_compressor(s), coder_, h, info.spans[s].bytes, n,
          [&] { return codec_.span_name(s) + ": "; });
      counts_[s] = k;
      offsets_[s] = info.spans[s].offset;
      tables_.set_decoded(s, info.spans[s].offset, k, encoding_type::index_bytes(n), false, entries,
                          n, plan[s].begin, 1.0f);
      entries += k;
    }
    tables_.upload_decoded(st, launches_);
    return entries;
  }

  /// Indices, scales, codes and padding of every span, and the values of raw spans (of type
  /// vt), checked on the device; the first fault of each kind is reported as the CPU's error
  /// code.
  void validate_payload(cudaStream_t st, const std::uint8_t* msg, std::uint64_t entries,
                        value_type_id vt) {
    detail::cuda_check(cudaMemsetAsync(scratch_.data(), 0xff, 5 * sizeof(unsigned long long), st),
                       "memset");
    ++launches_;
    // found: [0] index, [1] scale, [2] code, [3] padding, [4] raw value
    unsigned long long* found = scratch_.data();
    detail::cuda::with_value_type(
        vt, [&](auto v) { raw_.validate<decltype(v)>(st, msg, found + 4, found + 3, launches_); });
    if (entries > 0) {
      detail::cuda::validate_entries<void><<<detail::cuda::grid_for(entries, 256), 256, 0, st>>>(
          msg, tables_.outs(), tables_.entries(), tables_.span_count(), entries, found);
      ++launches_;
    }
    codes_.validate(st, msg, coder_.bits(), scales_.data(), found + 1, launches_);
    detail::cuda_check(cudaMemcpyAsync(host_scratch_.data(), scratch_.data(),
                                       5 * sizeof(unsigned long long), cudaMemcpyDeviceToHost, st),
                       "copy validation");
    ++launches_;
    detail::cuda_check(cudaStreamSynchronize(st), "validate");
    tables_.report_bad_entry(
        host_scratch_[0], [&](std::size_t s) { return codec_.span_name(s); }, "index",
        "is out of range or not strictly increasing");
    detail::cuda::report_code_faults(
        codec_, host_scratch_.data() + 1, [&](std::size_t s) { return codes_.span_scale_begin[s]; },
        "kept value");
    detail::cuda::check_raw_values(codec_, host_scratch_[4]);
  }

  template <class>
  friend class codec_engine; // decode_impl<T, Add>, sent_elements

  codec<Scheme>& codec_; ///< the codec that owns this engine
  selection_type selection_;
  coder_type coder_;
  detail::cuda::sparse_span_tables tables_;
  detail::cuda::raw_span_group raw_;
  std::size_t S_ = 0;
  detail::cuda::span_reductions reductions_;
  std::vector<detail::cuda::reduction_target> targets_;
  std::vector<float> probe_scales_;
  std::vector<double> scan_sums_;
  std::vector<std::size_t> counts_, offsets_;
  /// the counts and offsets the device tables were planned for (reductions; codes and scales)
  std::vector<std::size_t> reduced_counts_, coded_counts_, coded_offsets_;
  kept_code_tables<coder_type> codes_; ///< where Q's scales and codes go, for those counts
  detail::device_array<float> scales_;
  detail::pinned_array<float> host_scales_;
  detail::device_array<float> kept_;
  detail::device_array<float> value_scales_;
  detail::pinned_array<float> host_value_scales_;
  detail::device_array<unsigned long long> scratch_;
  detail::pinned_array<unsigned long long> host_scratch_;
  detail::pinned_array<std::byte> prefix_;
  detail::cuda::frame_buffers frame_;
  std::size_t launches_ = 0;
};

} // namespace gradcomp::detail::cuda
