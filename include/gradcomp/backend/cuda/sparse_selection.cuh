// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../codec.hpp"
#include "../../compressor/selection_rule.hpp"
#include "kernels.cuh"
#include "runtime.cuh"
#include "sample_kernels.cuh"
#include "sparse_kernels.cuh"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cub/device/device_scan.cuh>
#include <string>
#include <type_traits>
#include <vector>

/// @file
/// device_selection<Sparsifier>: what a sparsifier keeps, on the device, for every span at once;
/// the first stage of the sparse codec and of the composite codec. Per call: the max |x| of every
/// span (one launch; the finiteness check, adaptive threshold's max), then the selection (a
/// predicate: one launch; sample: marked draws, a scan, the completing draws; top keys: a
/// segmented radix select, 8-bit digits, two launches per digit, then tie ranks and flags), one
/// exclusive scan of the flags over the whole buffer (CUB) into positions (so kept indices come out
/// ascending, as on the CPU), and the kept count of every span copied to the host. The launch count
/// does not depend on the number of spans. Gradients of fewer than 2^32 - 1 elements (32-bit
/// positions).

namespace gradcomp::detail::cuda {

template <class Sparsifier>
class device_selection {
public:
  static_assert(require_sparsifier<Sparsifier>());
  using rule_type = selection_rule_t<Sparsifier>;
  using span_type = sparse_span<rule_type>;
  static constexpr bool top_keys = top_keys_rule<rule_type>;
  static constexpr bool sample = sample_rule<rule_type>;

  /// The spans of `host`'s plan and the sparsifier of each, get(the span's compressor). Spans a
  /// per-layer rule sends raw get their max |x| (the finiteness check) and nothing else: their
  /// flags stay 0, so they keep nothing.
  template <class Scheme, class Get>
  device_selection(const codec<Scheme>& host, Get get)
      : plan_(host.spans()), n_(host.layout().total_size()) {
    const std::size_t n = n_;
    const std::vector<span_desc>& plan = plan_;
    require(n < (std::uint64_t{1} << 32) - 1, errc::invalid_parameter,
            "the CUDA sparse codecs take gradients of fewer than 2^32 - 1 elements");
    // the tiles of compressed spans (the selection's), then those of raw spans (max |x| only)
    std::vector<code_tile> tiles;
    for (bool compressed : {true, false}) {
      for (std::size_t s = 0; s < plan.size(); ++s) {
        if (plan[s].compressed != compressed) {
          continue;
        }
        for (std::size_t base = 0; base < plan[s].size; base += tile_elements) {
          tiles.push_back({static_cast<std::uint32_t>(s),
                           static_cast<std::uint32_t>(
                               std::min<std::size_t>(tile_elements, plan[s].size - base)),
                           base});
        }
      }
      if (compressed) {
        tile_count_ = tiles.size();
      }
    }
    for (std::size_t s = 0; s < plan.size(); ++s) {
      sparsifiers_.push_back(get(host.span_compressor(s)));
    }
    S_ = plan.size();
    all_tile_count_ = tiles.size();
    tiles_ = device_array<code_tile>(std::max<std::size_t>(tiles.size(), 1));
    if (!tiles.empty()) {
      cuda_check(cudaMemcpy(tiles_.data(), tiles.data(), tiles.size() * sizeof(tiles[0]),
                            cudaMemcpyHostToDevice),
                 "upload tiles");
    }
    const std::size_t S1 = std::max<std::size_t>(S_, 1);
    spans_ = device_array<span_type>(S1);
    host_spans_ = pinned_array<span_type>(S1);
    max_bits_ = device_array<std::uint32_t>(S1);
    host_max_bits_ = pinned_array<std::uint32_t>(S1);
    hist_ = device_array<unsigned>(S1 * 256);
    flags_ = device_array<unsigned>(n + 1);
    positions_ = device_array<unsigned>(n + 1);
    ties_ = device_array<unsigned>(n + 1);
    // no kernel writes the flags of raw spans: zero once, they stay out of every selection
    cuda_check(cudaMemset(flags_.data(), 0, (n + 1) * sizeof(unsigned)), "memset flags");
    cuda_check(cudaMemset(ties_.data(), 0, (n + 1) * sizeof(unsigned)), "memset ties");
    counts_ = device_array<unsigned long long>(S1);
    host_counts_ = pinned_array<unsigned long long>(S1);
    std::size_t temp = 0;
    cuda_check(
        cub::DeviceScan::ExclusiveSum(nullptr, temp, flags_.data(), positions_.data(), n + 1),
        "cub scan size");
    scan_temp_ = device_array<std::byte>(std::max<std::size_t>(temp, 1));
  }

  /// The per-call span table: sizes, counts, and each span's rule for this call (`max_bits`:
  /// the span maxima, for rules that need them; null before they are known). Then upload().
  void fill(std::uint64_t seed, std::uint64_t stream_word, const std::uint32_t* max_bits) {
    for (std::size_t s = 0; s < S_; ++s) {
      const Sparsifier& c = sparsifiers_[s];
      span_type sp;
      sp.global_begin = plan_[s].begin;
      sp.n = plan_[s].size;
      const span_context ctx{plan_[s].begin, seed, stream_word,
                             max_bits != nullptr ? max_bits[s] : 0u};
      sp.rule = c.rule(ctx);
      if (plan_[s].compressed) { // raw: no tiles in the selection, nothing kept
        if constexpr (top_keys || sample) {
          sp.k = c.count(sp.n);
        }
        sp.implied = c.indices_implied() ? 1u : 0u;
      }
      sp.prefix = 0;
      sp.need = sp.k;
      host_spans_[s] = sp;
    }
  }
  void upload(cudaStream_t st, std::size_t& launches) {
    if (S_ > 0) {
      cuda_check(cudaMemcpyAsync(spans_.data(), host_spans_.data(), S_ * sizeof(span_type),
                                 cudaMemcpyHostToDevice, st),
                 "copy spans");
      ++launches;
    }
  }

  /// The span maxima of x (synchronizes): then first_non_finite(), surely_fit(), select_all().
  template <class T>
  void measure(cudaStream_t st, const T* x, const stream_key& key, std::size_t& launches) {
    fill(key.seed, key.stream_word(), nullptr);
    upload(st, launches);
    span_max(st, x, launches);
    cuda_check(cudaStreamSynchronize(st), "max |x|");
  }
  /// The selection of every span (synchronizes), after measure(). Spans holding a NaN or Inf
  /// select something (deterministically) that the caller does not send.
  template <class T>
  void select_all(cudaStream_t st, const T* x, const stream_key& key, std::size_t& launches) {
    if constexpr (Sparsifier::needs_span_max) {
      fill(key.seed, key.stream_word(), host_max_bits());
      upload(st, launches);
    }
    select(st, x, launches);
  }

  /// The max |x| bits of every span, into host_max_bits() once the stream synchronized.
  template <class T>
  void span_max(cudaStream_t st, const T* x, std::size_t& launches) {
    if (all_tile_count_ == 0) {
      return;
    }
    cuda_check(cudaMemsetAsync(max_bits_.data(), 0, S_ * 4, st), "memset");
    span_max_bits<rule_type, T><<<grid_for(all_tile_count_, 1), tile_threads, 0, st>>>(
        x, spans_.data(), tiles_.data(), all_tile_count_, max_bits_.data());
    cuda_check(cudaMemcpyAsync(host_max_bits_.data(), max_bits_.data(), S_ * 4,
                               cudaMemcpyDeviceToHost, st),
               "copy max");
    launches += 3;
  }

  /// Flags, positions and the per-span counts of the selection (x may be null for random-k);
  /// synchronizes the stream.
  template <class T>
  void select(cudaStream_t st, const T* x, std::size_t& launches) {
    // the slot past the end stays 0 so that positions[n] is the total
    cuda_check(cudaMemsetAsync(flags_.data() + n_, 0, sizeof(unsigned), st), "memset");
    cuda_check(cudaMemsetAsync(ties_.data() + n_, 0, sizeof(unsigned), st), "memset");
    launches += 2;
    if (tile_count_ > 0) {
      if constexpr (top_keys) {
        select_top_keys(st, x, launches);
      } else if constexpr (sample) {
        select_sample(st, launches);
      } else {
        predicate_flags<rule_type, T><<<grid_for(tile_count_, 1), tile_threads, 0, st>>>(
            x, spans_.data(), tiles_.data(), tile_count_, flags_.data());
        ++launches;
      }
    }
    scan(flags_.data(), positions_.data(), st, launches);
    if (S_ > 0) {
      span_counts<rule_type><<<grid_for(S_, 128), 128, 0, st>>>(
          spans_.data(), static_cast<std::uint32_t>(S_), positions_.data(), counts_.data());
      cuda_check(cudaMemcpyAsync(host_counts_.data(), counts_.data(),
                                 S_ * sizeof(unsigned long long), cudaMemcpyDeviceToHost, st),
                 "copy counts");
      launches += 2;
    }
    cuda_check(cudaStreamSynchronize(st), "selection");
    cuda_check(cudaGetLastError(), "selection kernels");
  }

  /// The scale the sparsifier applies to span s's kept values (n/k for unbiased random-k).
  [[nodiscard]] float value_scale(std::size_t s, std::size_t k) const {
    return sparsifiers_[s].value_scale(plan_[s].size, k);
  }
  /// Span s's max |x| bits (0 for an empty span), after measure().
  [[nodiscard]] std::uint32_t max_bits(std::size_t s) const {
    return plan_[s].size > 0 ? host_max_bits_[s] : 0u;
  }
  /// The first span, in plan order (the order of the CPU's checks), holding a NaN or Inf;
  /// span_count() when there is none. After measure().
  [[nodiscard]] std::size_t first_non_finite() const {
    std::size_t s = 0;
    while (s < S_ && max_bits(s) < inf_abs_bits) {
      ++s;
    }
    return s;
  }
  /// Whether the kept values of the (finite) spans before `end` surely stay below
  /// `overflow_abs_bits` (a value type's limit) and finite once scaled, judged from the span
  /// maxima. When not, the caller checks the kept values themselves. After measure().
  [[nodiscard]] bool surely_fit(std::size_t end, std::uint32_t overflow_abs_bits) const {
    for (std::size_t s = 0; s < end; ++s) {
      if (!plan_[s].compressed) {
        continue;
      }
      const std::uint32_t mb = max_bits(s);
      if (mb >= overflow_abs_bits ||
          is_non_finite(bits_float(mb) * value_scale(s, host_spans_[s].k))) {
        return false;
      }
    }
    return true;
  }

  [[nodiscard]] std::size_t span_count() const noexcept { return S_; }
  /// Whether span s is sent raw (a per-layer identity rule).
  [[nodiscard]] bool raw(std::size_t s) const { return !plan_[s].compressed; }
  /// The tiles of the compressed spans (raw spans are not selected from).
  [[nodiscard]] std::uint64_t tile_count() const noexcept { return tile_count_; }
  [[nodiscard]] const code_tile* tiles() const noexcept { return tiles_.data(); }
  [[nodiscard]] const span_type* spans() const noexcept { return spans_.data(); }
  [[nodiscard]] const span_type& host_span(std::size_t s) const { return host_spans_[s]; }
  [[nodiscard]] const std::uint32_t* host_max_bits() const noexcept {
    return host_max_bits_.data();
  }
  /// Span s's kept count, after select().
  [[nodiscard]] std::size_t count(std::size_t s) const {
    return static_cast<std::size_t>(host_counts_[s]);
  }
  [[nodiscard]] const unsigned* flags() const noexcept { return flags_.data(); }
  [[nodiscard]] const unsigned* positions() const noexcept { return positions_.data(); }
  [[nodiscard]] std::size_t bytes() const noexcept {
    return (n_ + 1) * 12 + std::max<std::size_t>(S_, 1) * (256 * 4 + 64) + scan_temp_.size();
  }

private:
  /// Top keys: the segmented radix select of every span's k-th key, then the kept flags (keys
  /// above it, and of the keys equal to it the lowest indices, by their scanned tie ranks).
  template <class T>
  void select_top_keys(cudaStream_t st, const T* x, std::size_t& launches) {
    constexpr unsigned key_bits = sizeof(typename span_type::key_type) * 8;
    for (unsigned shift = key_bits - 8;; shift -= 8) {
      cuda_check(cudaMemsetAsync(hist_.data(), 0, S_ * 256 * sizeof(unsigned), st), "memset");
      key_histogram<rule_type, T><<<grid_for(tile_count_, 1), tile_threads, 0, st>>>(
          x, spans_.data(), tiles_.data(), tile_count_, shift, hist_.data());
      pick_digit<rule_type><<<grid_for(S_, 128), 128, 0, st>>>(
          spans_.data(), static_cast<std::uint32_t>(S_), shift, hist_.data());
      launches += 3;
      if (shift == 0) {
        break;
      }
    }
    top_key_flags<rule_type, T, false><<<grid_for(tile_count_, 1), tile_threads, 0, st>>>(
        x, spans_.data(), tiles_.data(), tile_count_, nullptr, ties_.data());
    scan(ties_.data(), positions_.data(), st, launches);
    top_key_flags<rule_type, T, true><<<grid_for(tile_count_, 1), tile_threads, 0, st>>>(
        x, spans_.data(), tiles_.data(), tile_count_, positions_.data(), flags_.data());
    launches += 2;
  }

  /// Sample rules (sample_kernels.cuh): unmarked flags, the first draws, a scan, the rest.
  void select_sample(cudaStream_t st, std::size_t& launches) {
    sample_clear_flags<rule_type><<<grid_for(tile_count_, 1), tile_threads, 0, st>>>(
        spans_.data(), tiles_.data(), tile_count_, flags_.data());
    sample_first_draws<rule_type><<<grid_for(S_, 1), tile_threads, 0, st>>>(
        spans_.data(), static_cast<std::uint32_t>(S_), flags_.data());
    scan(flags_.data(), positions_.data(), st, launches);
    sample_complete<rule_type><<<grid_for(S_, 128), 128, 0, st>>>(
        spans_.data(), static_cast<std::uint32_t>(S_), positions_.data(), flags_.data());
    launches += 3;
  }

  void scan(const unsigned* in, unsigned* result, cudaStream_t st, std::size_t& launches) {
    std::size_t temp = scan_temp_.size();
    cuda_check(cub::DeviceScan::ExclusiveSum(scan_temp_.data(), temp, in, result, n_ + 1, st),
               "cub scan");
    ++launches;
  }

  std::vector<span_desc> plan_;
  std::vector<Sparsifier> sparsifiers_;
  std::size_t n_ = 0;
  std::size_t S_ = 0;
  std::uint64_t tile_count_ = 0;     ///< tiles of compressed spans, first in tiles_
  std::uint64_t all_tile_count_ = 0; ///< and those of raw spans after them
  device_array<code_tile> tiles_;
  device_array<span_type> spans_;
  pinned_array<span_type> host_spans_;
  device_array<std::uint32_t> max_bits_;
  pinned_array<std::uint32_t> host_max_bits_;
  device_array<unsigned> hist_, flags_, positions_, ties_;
  device_array<unsigned long long> counts_;
  pinned_array<unsigned long long> host_counts_;
  device_array<std::byte> scan_temp_;
};

} // namespace gradcomp::detail::cuda
