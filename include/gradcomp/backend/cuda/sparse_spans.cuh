// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../detail/bits.hpp"
#include "../../encoding/index_coding.hpp"
#include "../../encoding/sparse_span_header.hpp"
#include "../../encoding/wire_header.hpp"
#include "../../error.hpp"
#include "../../granularity/span_plan.hpp"
#include "kernels.cuh"
#include "raw_spans.cuh"
#include "runtime.cuh"
#include "sparse_entry_kernels.cuh"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

/// @file
/// sparse_span_tables: the per-span tables of a sparse or a composite message on the device. Both
/// start every span with the 16-byte header of encoding/sparse_span_header.hpp (k, index width,
/// flags, value scale) followed by the indices. The tables say where each span's
/// payload is (sparse_out), hold the headers (built on the host when encoding, copied back to be
/// checked when decoding) and, when decoding, number the entries of all spans. O(spans) bytes,
/// pinned on the host.

namespace gradcomp::detail::cuda {

/// A validated sparse or composite message: its bytes on the device, its entries (kept values
/// over all spans), its value type.
struct received_sparse {
  const std::uint8_t* msg = nullptr;
  std::uint64_t entries = 0;
  value_type_id value_type{};
};

class sparse_span_tables {
public:
  /// The tables of a plan; its raw spans (per-layer identity rules) have no header and no
  /// entries (index width 0 in their sparse_out).
  explicit sparse_span_tables(const std::vector<span_desc>& plan)
      : S_(plan.size()), outs_(std::max<std::size_t>(S_, 1)), host_outs_(outs_.size()),
        headers_(outs_.size() * header_bytes), host_headers_(headers_.size()),
        entries_(outs_.size()), host_entries_(outs_.size()) {
    for (const span_desc& d : plan) {
      raw_.push_back(!d.compressed);
    }
  }

  /// Encode and decode: span s is raw: no header, no entries; its (empty) entry range starts at
  /// entry_begin, the next span's first entry, for the entry lookup.
  void set_raw(std::size_t s, std::uint64_t entry_begin, std::uint64_t n,
               std::uint64_t global_begin) {
    host_outs_[s] = {0, 0, 0, 0};
    host_entries_[s] = {entry_begin, n, global_begin, 1.0f, static_cast<std::uint32_t>(s)};
  }

  /// Encode: span s (n elements) has its payload at `offset` and keeps k values (no indices on
  /// the wire when `implied`), stored times 1 / `scale`.
  void set_encoded(std::size_t s, std::uint64_t offset, std::uint64_t n, std::uint64_t k,
                   bool implied, float scale) {
    const sparse_span_header head = sparse_span_header::make(
        k, fixed_width_indices::parameter(n, k), fixed_width_indices::header_flag, implied, scale);
    host_outs_[s] = {offset, k, head.index_bytes, implied ? 1u : 0u};
    head.write(header(s));
  }
  /// Encode: the headers into the message (after set_encoded of every span).
  void write_headers(cudaStream_t st, std::uint8_t* msg, std::size_t& launches) {
    if (S_ == 0) {
      return;
    }
    upload_outs(st);
    cuda_check(cudaMemcpyAsync(headers_.data(), host_headers_.data(), S_ * header_bytes,
                               cudaMemcpyHostToDevice, st),
               "copy span headers");
    scatter_headers<<<grid_for(S_ * header_bytes, 256), 256, 0, st>>>(
        headers_.data(), outs_.data(), static_cast<std::uint32_t>(S_), msg);
    launches += 3;
  }

  /// Decode: every span's header copied to the host (a span shorter than a header is refused
  /// with `name(s)` + `too_short`); synchronizes the stream.
  template <class Name>
  void read_headers(cudaStream_t st, const message_info& info, const std::uint8_t* msg, Name name,
                    const char* too_short, std::size_t& launches) {
    for (std::size_t s = 0; s < S_; ++s) {
      if (raw_[s]) {
        host_outs_[s] = {0, 0, 0, 0}; // width 0: no header to gather
        continue;
      }
      require(info.spans[s].bytes >= header_bytes, errc::corrupt_payload,
              [&] { return name(s) + too_short; });
      host_outs_[s] = {info.spans[s].offset, 0, 2, 0}; // any width but 0: gather its header
    }
    if (S_ > 0) {
      upload_outs(st);
      gather_headers<<<grid_for(S_ * header_bytes, 256), 256, 0, st>>>(
          msg, outs_.data(), static_cast<std::uint32_t>(S_), headers_.data());
      cuda_check(cudaMemcpyAsync(host_headers_.data(), headers_.data(), S_ * header_bytes,
                                 cudaMemcpyDeviceToHost, st),
                 "copy span headers");
      launches += 3;
    }
    cuda_check(cudaStreamSynchronize(st), "span headers");
  }
  /// Decode: span s (n elements from global_begin) holds k entries, numbered from entry_begin,
  /// at `offset`; `scale` multiplies its stored values.
  void set_decoded(std::size_t s, std::uint64_t offset, std::uint64_t k, unsigned index_bytes,
                   bool implied, std::uint64_t entry_begin, std::uint64_t n,
                   std::uint64_t global_begin, float scale) {
    host_outs_[s] = {offset, k, index_bytes, implied ? 1u : 0u};
    host_entries_[s] = {entry_begin, n, global_begin, scale, static_cast<std::uint32_t>(s)};
  }
  /// Decode: the tables to the device (after set_decoded of every span).
  void upload_decoded(cudaStream_t st, std::size_t& launches) {
    if (S_ == 0) {
      return;
    }
    upload_outs(st);
    cuda_check(cudaMemcpyAsync(entries_.data(), host_entries_.data(),
                               S_ * sizeof(sparse_entry_span), cudaMemcpyHostToDevice, st),
               "copy entry spans");
    launches += 2;
  }
  /// The span holding entry e (after set_decoded), and e's rank in it.
  [[nodiscard]] std::pair<std::size_t, std::uint64_t> entry_span(std::uint64_t e) const {
    const std::size_t s =
        last_span_at(S_, e, [&](std::size_t i) { return host_entries_[i].entry_begin; });
    return {s, e - host_entries_[s].entry_begin};
  }

  /// Decode: sent[g] = 1 at the global index g of each of the `entries` entries of the
  /// validated msg (V: its stored value type, void for a composite's codes; implied: the
  /// regenerated indices, null when they are stored).
  template <class V>
  void mark_entries(cudaStream_t st, const std::uint8_t* msg, std::uint64_t entries,
                    const std::uint64_t* implied, std::uint8_t* sent, std::size_t& launches) const {
    if (entries > 0) {
      cuda::mark_entries<V><<<grid_for(entries, 256), 256, 0, st>>>(
          msg, outs_.data(), entries_.data(), span_count(), entries, implied, sent);
      ++launches;
    }
  }

  /// Decode: the CPU decoder's error for the entry `found` that validate_entries flagged (~0:
  /// none, returns): "<span name>: <noun> <rank> <fault>".
  template <class Name>
  void report_bad_entry(unsigned long long found, Name name, const char* noun,
                        const char* fault) const {
    if (found != ~0ull) {
      const auto [s, rank] = entry_span(found);
      fail(errc::corrupt_payload, name(s) + ": " + noun + " " + std::to_string(rank) + " " + fault);
    }
  }

  [[nodiscard]] std::byte* header(std::size_t s) const {
    return reinterpret_cast<std::byte*>(host_headers_.data() + header_bytes * s);
  }
  [[nodiscard]] const sparse_out* outs() const noexcept { return outs_.data(); }
  [[nodiscard]] const sparse_entry_span* entries() const noexcept { return entries_.data(); }
  [[nodiscard]] std::uint32_t span_count() const noexcept { return static_cast<std::uint32_t>(S_); }

private:
  static constexpr std::size_t header_bytes = sparse_span_header::bytes;

  void upload_outs(cudaStream_t st) {
    cuda_check(cudaMemcpyAsync(outs_.data(), host_outs_.data(), S_ * sizeof(sparse_out),
                               cudaMemcpyHostToDevice, st),
               "copy span table");
  }

  std::size_t S_ = 0;
  std::vector<bool> raw_;
  device_array<sparse_out> outs_;
  pinned_array<sparse_out> host_outs_;
  device_array<std::uint8_t> headers_;
  pinned_array<std::uint8_t> host_headers_;
  device_array<sparse_entry_span> entries_;
  pinned_array<sparse_entry_span> host_entries_;
};

/// codec::sent_elements of a validated sparse or composite message r: 0 everywhere, then 1 at
/// its entries' indices (V: its stored value type, void for codes) and over its raw spans.
template <class V>
void mark_sent(cudaStream_t st, const sparse_span_tables& tables, raw_span_group& raw,
               const received_sparse& r, const std::uint64_t* implied, std::span<std::uint8_t> sent,
               std::size_t& launches) {
  cuda_check(cudaMemsetAsync(sent.data(), 0, sent.size(), st), "memset");
  ++launches;
  tables.mark_entries<V>(st, r.msg, r.entries, implied, sent.data(), launches);
  with_value_type(r.value_type,
                  [&](auto v) { raw.template mark<decltype(v)>(st, sent.data(), launches); });
  cuda_check(cudaGetLastError(), "mark kernels");
}

} // namespace gradcomp::detail::cuda
