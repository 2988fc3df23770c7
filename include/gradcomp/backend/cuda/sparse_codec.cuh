// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../codec.hpp"
#include "../../compressor/adaptive_threshold.hpp"
#include "../../compressor/random_k.hpp"
#include "../../compressor/threshold_v.hpp"
#include "../../compressor/topk.hpp"
#include "frame.cuh"
#include "kernels.cuh"
#include "runtime.cuh"
#include "sparse_kernels.cuh"

#include <cstddef>
#include <cstdint>
#include <cub/device/device_scan.cuh>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

/// @file
/// sparse_device_codec<Scheme>: the CUDA backend of codec<Scheme> for sparse schemes (top-k,
/// random-k incl. unbiased and shared-seed, threshold-v, adaptive threshold; sparse_coo with
/// fp32/fp16/bf16 values) on every granularity. Messages are byte for byte the CPU's.
///
/// Encode: max |x| of every span (one launch), one copy back and sync (finiteness, adaptive
/// threshold's max), the selection of every span at once (predicates: one launch; top keys: a
/// segmented radix select, 8-bit digits, two launches per digit, then tie ranks and flags), an
/// exclusive scan of the flags over the whole buffer (CUB), the counts copied back (second sync),
/// then headers, indices and values written and the message sealed. Launch count is constant in
/// the number of spans. Decode validates everything on the device before scattering.
/// Limits: gradients of fewer than 2^32 elements (32-bit positions); per-layer rules that send
/// a layer raw are refused (invalid_parameter) on the device.

namespace gradcomp {

namespace detail::cuda {
template <class C>
struct sparse_selector; // how a sparsifier selects on the device
template <>
struct sparse_selector<topk> {
  static constexpr bool top_keys = true;
  using key = magnitude_key;
  using key_type = std::uint32_t;
};
template <>
struct sparse_selector<random_k> {
  static constexpr bool top_keys = true;
  using key = random_key;
  using key_type = std::uint64_t;
};
template <>
struct sparse_selector<threshold_v> {
  static constexpr bool top_keys = false;
  using predicate = threshold_predicate;
  using key_type = std::uint32_t;
};
template <>
struct sparse_selector<adaptive_threshold> {
  static constexpr bool top_keys = false;
  using predicate = adaptive_predicate;
  using key_type = std::uint32_t;
};
} // namespace detail::cuda

template <class Scheme>
class sparse_device_codec {
public:
  using scheme_type = Scheme;
  using compressor_type = typename Scheme::compressor_type;
  using encoding_type = typename Scheme::encoding_type;
  using value_type = typename encoding_type::value_type;
  using selector = detail::cuda::sparse_selector<compressor_type>;
  using key_type = typename selector::key_type;
  using span_type = detail::cuda::sparse_span<key_type>;

  sparse_device_codec(Scheme scheme, model_layout layout)
      : host_(std::move(scheme), std::move(layout)) {
    const auto& plan = host_.spans();
    const std::size_t n = host_.layout().total_size();
    detail::require(n < (std::uint64_t{1} << 32) - 1, errc::invalid_parameter,
                    "the CUDA sparse codec takes gradients of fewer than 2^32 - 1 elements");
    std::vector<detail::cuda::code_tile> tiles;
    for (std::size_t s = 0; s < plan.size(); ++s) {
      detail::require(plan[s].compressed, errc::invalid_parameter,
                      host_.span_name(s) +
                          " is sent raw by a per-layer rule; the CUDA sparse codec does not "
                          "support raw spans yet (use codec<Scheme> on the CPU)");
      for (std::size_t base = 0; base < plan[s].size; base += detail::cuda::tile_elements) {
        tiles.push_back({static_cast<std::uint32_t>(s),
                         static_cast<std::uint32_t>(std::min<std::size_t>(
                             detail::cuda::tile_elements, plan[s].size - base)),
                         base});
      }
    }
    S_ = plan.size();
    tile_count_ = tiles.size();
    tiles_ = detail::device_array<detail::cuda::code_tile>(std::max<std::size_t>(tiles.size(), 1));
    if (!tiles.empty()) {
      detail::cuda_check(cudaMemcpy(tiles_.data(), tiles.data(), tiles.size() * sizeof(tiles[0]),
                                    cudaMemcpyHostToDevice),
                         "upload tiles");
    }
    const std::size_t S1 = std::max<std::size_t>(S_, 1);
    spans_ = detail::device_array<span_type>(S1);
    host_spans_ = detail::pinned_array<span_type>(S1);
    max_bits_ = detail::device_array<std::uint32_t>(S1);
    host_max_bits_ = detail::pinned_array<std::uint32_t>(S1);
    hist_ = detail::device_array<unsigned>(S1 * 256);
    flags_ = detail::device_array<unsigned>(n + 1);
    positions_ = detail::device_array<unsigned>(n + 1);
    ties_ = detail::device_array<unsigned>(n + 1);
    counts_ = detail::device_array<unsigned long long>(S1);
    host_counts_ = detail::pinned_array<unsigned long long>(S1);
    outs_ = detail::device_array<detail::cuda::sparse_out>(S1);
    host_outs_ = detail::pinned_array<detail::cuda::sparse_out>(S1);
    headers_ = detail::device_array<std::uint8_t>(S1 * 16);
    host_headers_ = detail::pinned_array<std::uint8_t>(S1 * 16);
    entry_spans_ = detail::device_array<detail::cuda::sparse_entry_span>(S1);
    host_entry_spans_ = detail::pinned_array<detail::cuda::sparse_entry_span>(S1);
    implied_ = detail::device_array<std::uint64_t>(n + 1);
    scratch_ = detail::device_array<unsigned long long>(4);
    host_scratch_ = detail::pinned_array<unsigned long long>(4);
    prefix_ = detail::pinned_array<std::byte>(wire_header_bytes + S_ * wire_directory_entry_bytes);
    std::size_t temp = 0;
    detail::cuda_check(
        cub::DeviceScan::ExclusiveSum(nullptr, temp, flags_.data(), positions_.data(), n + 1),
        "cub scan size");
    scan_temp_ = detail::device_array<std::byte>(std::max<std::size_t>(temp, 1));
    workspace_bytes_ = (n + 1) * (3 * 4 + 8) + S1 * (256 * 4 + 64) + scan_temp_.size();
  }

  [[nodiscard]] const codec<Scheme>& host_codec() const noexcept { return host_; }
  [[nodiscard]] const model_layout& layout() const noexcept { return host_.layout(); }
  /// An upper bound on encode()'s output (the CPU codec's bound).
  template <gradient_value T = float>
  [[nodiscard]] std::size_t max_encoded_bytes() const {
    return host_.template max_encoded_bytes<T>();
  }
  [[nodiscard]] std::size_t workspace_bytes() const noexcept { return workspace_bytes_; }
  [[nodiscard]] std::size_t last_launch_count() const noexcept { return launches_; }

  /// As codec::encode, on device buffers; returns the message size.
  template <gradient_value T>
  std::size_t encode(const cuda_policy& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key) {
    detail::require(grad.size() == layout().total_size(), errc::size_mismatch,
                    "gradient has " + std::to_string(grad.size()) + " elements, layout has " +
                        std::to_string(layout().total_size()));
    key.validate();
    launches_ = 0;
    const auto& plan = host_.spans();
    const cudaStream_t st = exec.stream;
    // 1. max |x| of every span
    fill_spans(key.seed, key.stream_word(), nullptr);
    upload_spans(st);
    if (tile_count_ > 0) {
      detail::cuda_check(cudaMemsetAsync(max_bits_.data(), 0, S_ * 4, st), "memset");
      detail::cuda::span_max_bits<key_type, T>
          <<<grid(tile_count_), detail::cuda::tile_threads, 0, st>>>(
              grad.data(), spans_.data(), tiles_.data(), tile_count_, max_bits_.data());
      detail::cuda_check(cudaMemcpyAsync(host_max_bits_.data(), max_bits_.data(), S_ * 4,
                                         cudaMemcpyDeviceToHost, st),
                         "copy max");
      launches_ += 3;
    }
    detail::cuda_check(cudaStreamSynchronize(st), "max |x|");
    if (!values_fit(plan)) {
      return encode_on_host(exec, grad, out, key);
    }
    if constexpr (std::is_same_v<compressor_type, adaptive_threshold>) {
      fill_spans(key.seed, key.stream_word(), host_max_bits_.data());
      upload_spans(st);
    }
    // 2. selection, positions, counts
    select(grad.data(), st);
    // 3. sizes on the host
    std::size_t total = wire_header_bytes + S_ * wire_directory_entry_bytes;
    std::byte* p = prefix_.data();
    detail::write_frame_header(p, compressor_type::id, encoding_type::id,
                               Scheme::granularity_type::id, value_traits<T>::id,
                               static_cast<std::uint32_t>(S_), layout().total_size(), key.seed,
                               key.stream_word(), host_.plan_digest());
    for (std::size_t s = 0; s < S_; ++s) {
      const std::size_t n = plan[s].size;
      const std::size_t k = host_counts_[s];
      const bool implied = host_spans_[s].implied != 0;
      const std::size_t bytes = encoding_type::bytes(n, k, implied);
      detail::write_directory_entry(p + wire_header_bytes + s * wire_directory_entry_bytes, n,
                                    bytes, span_mode_compressed);
      host_outs_[s] = {total, k, encoding_type::index_bytes(n), implied ? 1u : 0u};
      std::byte* h = reinterpret_cast<std::byte*>(host_headers_.data() + 16 * s);
      detail::store_le<std::uint64_t>(h, k);
      detail::store_le<std::uint8_t>(h + 8,
                                     static_cast<std::uint8_t>(encoding_type::index_bytes(n)));
      detail::store_le<std::uint8_t>(h + 9, implied ? encoding_type::flag_implied : 0);
      detail::store_le<std::uint16_t>(h + 10, 0);
      detail::store_le<float>(h + 12, value_scale(s, n, k));
      total += bytes;
    }
    detail::require(out.size() >= total, errc::buffer_too_small,
                    "message needs " + std::to_string(total) + " bytes, output has " +
                        std::to_string(out.size()) + " (size it with max_encoded_bytes())");
    // 4. write
    auto* msg = reinterpret_cast<std::uint8_t*>(out.data());
    detail::cuda_check(cudaMemcpyAsync(msg, p, wire_header_bytes + S_ * wire_directory_entry_bytes,
                                       cudaMemcpyHostToDevice, st),
                       "copy header");
    if (S_ > 0) {
      detail::cuda_check(cudaMemcpyAsync(outs_.data(), host_outs_.data(),
                                         S_ * sizeof(detail::cuda::sparse_out),
                                         cudaMemcpyHostToDevice, st),
                         "copy outs");
      detail::cuda_check(cudaMemcpyAsync(headers_.data(), host_headers_.data(), S_ * 16,
                                         cudaMemcpyHostToDevice, st),
                         "copy span headers");
      detail::cuda::scatter_headers<<<grid(S_ * 16 / 256 + 1), 256, 0, st>>>(
          headers_.data(), outs_.data(), static_cast<std::uint32_t>(S_), msg);
      launches_ += 3;
    }
    if (tile_count_ > 0) {
      detail::cuda::write_sparse<value_type, key_type, T>
          <<<grid(tile_count_), detail::cuda::tile_threads, 0, st>>>(
              grad.data(), spans_.data(), tiles_.data(), tile_count_, flags_.data(),
              positions_.data(), outs_.data(), msg);
      ++launches_;
    }
    detail::cuda::checksum_async(st, msg, total, scratch_.data(), true);
    launches_ += 4;
    detail::cuda_check(cudaStreamSynchronize(st), "encode");
    detail::cuda_check(cudaGetLastError(), "encode kernels");
    return total;
  }

  template <gradient_value T>
  void decode(const cuda_policy& exec, std::span<const std::byte> message, std::span<T> out) {
    decode_impl<T, false>(exec, message, out);
  }
  template <gradient_value T>
  void decode_add(const cuda_policy& exec, std::span<const std::byte> message, std::span<T> out) {
    decode_impl<T, true>(exec, message, out);
  }

private:
  static unsigned grid(std::uint64_t items) {
    return static_cast<unsigned>(std::min<std::uint64_t>(std::max<std::uint64_t>(items, 1), 65535));
  }

  /// The per-call span table: sizes, counts, streams, thresholds (max_bits: adaptive only).
  void fill_spans(std::uint64_t seed, std::uint64_t stream_word, const std::uint32_t* max_bits) {
    const auto& plan = host_.spans();
    for (std::size_t s = 0; s < S_; ++s) {
      const compressor_type& c = host_.span_compressor(s);
      span_type sp;
      sp.global_begin = plan[s].begin;
      sp.n = plan[s].size;
      if constexpr (std::is_same_v<compressor_type, topk>) {
        sp.k = c.count(sp.n);
      } else if constexpr (std::is_same_v<compressor_type, random_k>) {
        sp.k = c.count(sp.n);
        const span_context ctx{plan[s].begin, seed, stream_word, 0};
        sp.subset = ctx.subset(c.shared_seed);
        sp.implied = c.shared_seed ? 1u : 0u;
      } else if constexpr (std::is_same_v<compressor_type, threshold_v>) {
        const std::uint32_t t = detail::float_bits(c.float_threshold());
        sp.param = t == 0 ? 1u : t; // never keep zeros
      } else {
        sp.param = max_bits != nullptr ? max_bits[s] : 0u;
      }
      sp.prefix = 0;
      sp.need = sp.k;
      host_spans_[s] = sp;
    }
  }
  void upload_spans(cudaStream_t st) {
    if (S_ > 0) {
      detail::cuda_check(cudaMemcpyAsync(spans_.data(), host_spans_.data(), S_ * sizeof(span_type),
                                         cudaMemcpyHostToDevice, st),
                         "copy spans");
      ++launches_;
    }
  }

  [[nodiscard]] float value_scale(std::size_t s, std::size_t n, std::size_t k) const {
    if constexpr (std::is_same_v<compressor_type, random_k>) {
      return host_.span_compressor(s).value_scale(n, k);
    } else {
      (void)s, (void)n, (void)k;
      return 1.0f;
    }
  }

  /// Whether every kept value surely fits the value type and its scale (from the span maxima);
  /// when not, the CPU codec encodes (and names the error, if there is one).
  [[nodiscard]] bool values_fit(const std::vector<span_desc>& plan) const {
    for (std::size_t s = 0; s < S_; ++s) {
      const std::uint32_t mb = plan[s].size > 0 ? host_max_bits_[s] : 0u;
      if (mb >= detail::inf_abs_bits || mb >= value_traits<value_type>::overflow_abs_bits) {
        return false;
      }
      const float scale = value_scale(s, plan[s].size, host_spans_[s].k);
      if (detail::is_non_finite(detail::bits_float(mb) * scale)) {
        return false;
      }
    }
    return true;
  }

  /// The rare path: the gradient goes to the host, the CPU codec encodes it (or throws its
  /// error) and the message comes back. Bytes are the same by definition.
  template <class T>
  std::size_t encode_on_host(const cuda_policy& exec, std::span<const T> grad,
                             std::span<std::byte> out, const stream_key& key) {
    std::vector<T> host(grad.size());
    detail::cuda_check(
        cudaMemcpy(host.data(), grad.data(), grad.size() * sizeof(T), cudaMemcpyDeviceToHost),
        "copy gradient");
    codec<Scheme> cpu_codec(host_.scheme(), host_.layout());
    std::vector<std::byte> msg(cpu_codec.template max_encoded_bytes<T>());
    msg.resize(cpu_codec.encode(cpu, std::span<const T>(host), std::span<std::byte>(msg), key));
    detail::require(out.size() >= msg.size(), errc::buffer_too_small,
                    "message needs " + std::to_string(msg.size()) + " bytes, output has " +
                        std::to_string(out.size()));
    detail::cuda_check(
        cudaMemcpyAsync(out.data(), msg.data(), msg.size(), cudaMemcpyHostToDevice, exec.stream),
        "copy message");
    detail::cuda_check(cudaStreamSynchronize(exec.stream), "copy message");
    return msg.size();
  }

  void scan(const unsigned* in, unsigned* result, cudaStream_t st) {
    std::size_t temp = scan_temp_.size();
    detail::cuda_check(cub::DeviceScan::ExclusiveSum(scan_temp_.data(), temp, in, result,
                                                     layout().total_size() + 1, st),
                       "cub scan");
    ++launches_;
  }

  /// Flags, positions and per-span counts of the selection (x may be null for random-k).
  template <class T>
  void select(const T* x, cudaStream_t st) {
    const std::size_t n = layout().total_size();
    // the slot past the end stays 0 so that positions[n] is the total
    detail::cuda_check(cudaMemsetAsync(flags_.data() + n, 0, sizeof(unsigned), st), "memset");
    detail::cuda_check(cudaMemsetAsync(ties_.data() + n, 0, sizeof(unsigned), st), "memset");
    launches_ += 2;
    if (tile_count_ > 0) {
      if constexpr (selector::top_keys) {
        using K = typename selector::key;
        constexpr unsigned key_bits = sizeof(key_type) * 8;
        for (unsigned shift = key_bits - 8;; shift -= 8) {
          detail::cuda_check(cudaMemsetAsync(hist_.data(), 0, S_ * 256 * sizeof(unsigned), st),
                             "memset");
          detail::cuda::key_histogram<K, T>
              <<<grid(tile_count_), detail::cuda::tile_threads, 0, st>>>(
                  x, spans_.data(), tiles_.data(), tile_count_, shift, hist_.data());
          detail::cuda::pick_digit<key_type><<<grid(S_ / 128 + 1), 128, 0, st>>>(
              spans_.data(), static_cast<std::uint32_t>(S_), shift, hist_.data());
          launches_ += 3;
          if (shift == 0) {
            break;
          }
        }
        detail::cuda::top_key_flags<K, T, false>
            <<<grid(tile_count_), detail::cuda::tile_threads, 0, st>>>(
                x, spans_.data(), tiles_.data(), tile_count_, nullptr, ties_.data());
        scan(ties_.data(), positions_.data(), st);
        detail::cuda::top_key_flags<K, T, true>
            <<<grid(tile_count_), detail::cuda::tile_threads, 0, st>>>(
                x, spans_.data(), tiles_.data(), tile_count_, positions_.data(), flags_.data());
        launches_ += 2;
      } else {
        detail::cuda::predicate_flags<typename selector::predicate, key_type, T>
            <<<grid(tile_count_), detail::cuda::tile_threads, 0, st>>>(
                x, spans_.data(), tiles_.data(), tile_count_, flags_.data());
        ++launches_;
      }
    }
    scan(flags_.data(), positions_.data(), st);
    if (S_ > 0) {
      detail::cuda::span_counts<key_type><<<grid(S_ / 128 + 1), 128, 0, st>>>(
          spans_.data(), static_cast<std::uint32_t>(S_), positions_.data(), counts_.data());
      detail::cuda_check(cudaMemcpyAsync(host_counts_.data(), counts_.data(),
                                         S_ * sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                                         st),
                         "copy counts");
      launches_ += 2;
    }
    detail::cuda_check(cudaStreamSynchronize(st), "selection");
    detail::cuda_check(cudaGetLastError(), "selection kernels");
  }

  template <class T, bool Add>
  void decode_impl(const cuda_policy& exec, std::span<const std::byte> message, std::span<T> out) {
    launches_ = 0;
    const cudaStream_t st = exec.stream;
    const auto& plan = host_.spans();
    const message_info info =
        detail::cuda::read_device_frame(st, host_, message, frame_, launches_);
    detail::require(out.size() == layout().total_size(), errc::size_mismatch,
                    "output has " + std::to_string(out.size()) + " elements, layout has " +
                        std::to_string(layout().total_size()));
    const auto* msg = reinterpret_cast<const std::uint8_t*>(message.data());
    // span headers to the host
    for (std::size_t s = 0; s < S_; ++s) {
      detail::require(info.spans[s].bytes >= encoding_type::span_header_bytes,
                      errc::corrupt_payload,
                      host_.span_name(s) + ": sparse span shorter than its 16-byte header");
      host_outs_[s] = {info.spans[s].offset, 0, 0, 0};
    }
    if (S_ > 0) {
      detail::cuda_check(cudaMemcpyAsync(outs_.data(), host_outs_.data(),
                                         S_ * sizeof(detail::cuda::sparse_out),
                                         cudaMemcpyHostToDevice, st),
                         "copy outs");
      detail::cuda::gather_headers<<<grid(S_ * 16 / 256 + 1), 256, 0, st>>>(
          msg, outs_.data(), static_cast<std::uint32_t>(S_), headers_.data());
      detail::cuda_check(cudaMemcpyAsync(host_headers_.data(), headers_.data(), S_ * 16,
                                         cudaMemcpyDeviceToHost, st),
                         "copy span headers");
      launches_ += 3;
    }
    detail::cuda_check(cudaStreamSynchronize(st), "span headers");
    // validate the headers as the CPU does; build the entry table
    std::uint64_t entries = 0;
    bool any_implied = false;
    fill_spans(info.seed, info.stream_word, nullptr);
    for (std::size_t s = 0; s < S_; ++s) {
      const std::size_t n = plan[s].size;
      const std::byte* h = reinterpret_cast<const std::byte*>(host_headers_.data() + 16 * s);
      const std::size_t k = validate_header(s, n, h, info.spans[s].bytes);
      const bool implied =
          (detail::load_le<std::uint8_t>(h + 9) & encoding_type::flag_implied) != 0;
      any_implied = any_implied || implied;
      host_outs_[s] = {info.spans[s].offset, k, encoding_type::index_bytes(n), implied ? 1u : 0u};
      host_entry_spans_[s] = {entries, n, plan[s].begin, detail::load_le<float>(h + 12),
                              static_cast<std::uint32_t>(s)};
      entries += k;
    }
    if (S_ > 0) {
      detail::cuda_check(cudaMemcpyAsync(outs_.data(), host_outs_.data(),
                                         S_ * sizeof(detail::cuda::sparse_out),
                                         cudaMemcpyHostToDevice, st),
                         "copy outs");
      detail::cuda_check(cudaMemcpyAsync(entry_spans_.data(), host_entry_spans_.data(),
                                         S_ * sizeof(detail::cuda::sparse_entry_span),
                                         cudaMemcpyHostToDevice, st),
                         "copy entry spans");
      launches_ += 2;
    }
    if constexpr (std::is_same_v<compressor_type, random_k>) {
      if (any_implied) { // regenerate the shared subset from the message's seed and step
        upload_spans(st);
        select(static_cast<const T*>(nullptr), st);
        detail::cuda::compact_indices<<<grid(layout().total_size() / 256 + 1), 256, 0, st>>>(
            flags_.data(), positions_.data(), layout().total_size(), implied_.data());
        ++launches_;
      }
    }
    detail::cuda_check(cudaMemsetAsync(scratch_.data(), 0xff, sizeof(unsigned long long), st),
                       "memset");
    ++launches_;
    if (entries > 0) {
      detail::cuda::validate_entries<value_type><<<grid(entries / 256 + 1), 256, 0, st>>>(
          msg, outs_.data(), entry_spans_.data(), static_cast<std::uint32_t>(S_), entries,
          scratch_.data());
      ++launches_;
    }
    detail::cuda_check(
        cudaMemcpyAsync(host_scratch_.data(), scratch_.data(), 8, cudaMemcpyDeviceToHost, st),
        "copy validation");
    detail::cuda_check(cudaStreamSynchronize(st), "validate");
    if (host_scratch_[0] != ~0ull) {
      const std::uint64_t e = host_scratch_[0];
      std::size_t s = 0;
      while (s + 1 < S_ && host_entry_spans_[s + 1].entry_begin <= e) {
        ++s;
      }
      detail::fail(errc::corrupt_payload,
                   host_.span_name(s) + ": index or value " +
                       std::to_string(e - host_entry_spans_[s].entry_begin) +
                       " is out of range, not strictly increasing or not finite");
    }
    // write
    if constexpr (!Add) {
      detail::cuda_check(cudaMemsetAsync(out.data(), 0, out.size() * sizeof(T), st), "memset");
      ++launches_;
    }
    if (entries > 0) {
      detail::cuda::scatter_entries<value_type, T, Add><<<grid(entries / 256 + 1), 256, 0, st>>>(
          msg, outs_.data(), entry_spans_.data(), static_cast<std::uint32_t>(S_), entries,
          implied_.data(), out.data());
      ++launches_;
    }
    detail::cuda_check(cudaGetLastError(), "decode kernels");
  }

  /// The CPU decoder's checks of a sparse span header (encoding/sparse_coo.hpp); returns k.
  std::size_t validate_header(std::size_t s, std::size_t n, const std::byte* h,
                              std::size_t bytes) const {
    return detail::check_sparse_header<encoding_type>(host_.span_compressor(s), h, bytes, n,
                                                      [&] { return host_.span_name(s) + ": "; });
  }

  codec<Scheme> host_;
  std::size_t S_ = 0;
  std::uint64_t tile_count_ = 0;
  detail::device_array<detail::cuda::code_tile> tiles_;
  detail::device_array<span_type> spans_;
  detail::pinned_array<span_type> host_spans_;
  detail::device_array<std::uint32_t> max_bits_;
  detail::pinned_array<std::uint32_t> host_max_bits_;
  detail::device_array<unsigned> hist_, flags_, positions_, ties_;
  detail::device_array<unsigned long long> counts_;
  detail::pinned_array<unsigned long long> host_counts_;
  detail::device_array<detail::cuda::sparse_out> outs_;
  detail::pinned_array<detail::cuda::sparse_out> host_outs_;
  detail::device_array<std::uint8_t> headers_;
  detail::pinned_array<std::uint8_t> host_headers_;
  detail::device_array<detail::cuda::sparse_entry_span> entry_spans_;
  detail::pinned_array<detail::cuda::sparse_entry_span> host_entry_spans_;
  detail::device_array<std::uint64_t> implied_;
  detail::device_array<unsigned long long> scratch_;
  detail::pinned_array<unsigned long long> host_scratch_;
  detail::pinned_array<std::byte> prefix_;
  detail::device_array<std::byte> scan_temp_;
  detail::cuda::frame_buffers frame_;
  std::size_t workspace_bytes_ = 0;
  std::size_t launches_ = 0;
};

} // namespace gradcomp
