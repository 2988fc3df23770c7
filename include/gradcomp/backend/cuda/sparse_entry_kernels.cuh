// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../core/float16.hpp"
#include "../../detail/bits.hpp"
#include "kernels.cuh"
#include "sparse_kernels.cuh"

#include <cstdint>
#include <cuda_runtime.h>
#include <type_traits>

/// @file
/// Kernels over the entries of a received sparse message, every one over all entries of all
/// spans in one launch: gather the span headers, validate the entries, scatter them into a
/// gradient (assign, add, or the overflow check of either), mark the elements they reach.
/// Entry e finds its span by a binary search over the spans' first entries.

namespace gradcomp::detail::cuda {

/// Gathers the 16-byte headers of the spans of a received message (to validate on the host);
/// raw spans get zeros.
__global__ void gather_headers(const std::uint8_t* __restrict__ msg,
                               const sparse_out* __restrict__ outs, std::uint32_t count,
                               std::uint8_t* __restrict__ headers) {
  for (std::uint64_t i = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count * 16ull;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    const sparse_out o = outs[i / 16];
    headers[i] = o.index_bytes != 0 ? msg[o.offset + i % 16] : std::uint8_t{0};
  }
}

__device__ __forceinline__ std::uint64_t load_bytes(const std::uint8_t* p, unsigned bytes) {
  std::uint64_t v = 0;
  for (unsigned b = 0; b < bytes; ++b) {
    v |= std::uint64_t{p[b]} << (8 * b);
  }
  return v;
}

/// One entry of a received sparse span: which span, which rank.
struct sparse_entry_span {
  std::uint64_t entry_begin = 0; ///< first entry of the span across all spans
  std::uint64_t n = 0;
  std::uint64_t global_begin = 0;
  float scale = 1.0f;
  std::uint32_t span = 0;
};

/// Entry e of a received message: its span, its rank in the span, where its index (if any) and
/// its value are.
struct located_entry {
  sparse_entry_span span;
  sparse_out out;
  std::uint64_t rank = 0;
  const std::uint8_t* index = nullptr; ///< null when the indices are implied
  const std::uint8_t* value = nullptr;
};
__device__ inline located_entry locate_entry(const std::uint8_t* msg, const sparse_out* outs,
                                             const sparse_entry_span* spans, std::uint32_t count,
                                             std::uint64_t e, unsigned value_bytes) {
  std::uint32_t lo = 0, hi = count;
  while (hi - lo > 1) {
    const std::uint32_t mid = lo + (hi - lo) / 2;
    if (spans[mid].entry_begin <= e) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  located_entry l;
  l.span = spans[lo];
  l.out = outs[l.span.span];
  l.rank = e - l.span.entry_begin;
  const std::uint8_t* q = msg + l.out.offset + 16;
  if (l.out.implied == 0) {
    l.index = q + l.rank * l.out.index_bytes;
    q += l.out.k * l.out.index_bytes;
  }
  l.value = q + l.rank * value_bytes;
  return l;
}

/// The index in its span of located entry e: stored, or implied (the regenerated selection's
/// global indices).
__device__ inline std::uint64_t
entry_index(const located_entry& l, const std::uint64_t* __restrict__ implied, std::uint64_t e) {
  return l.index != nullptr ? load_bytes(l.index, l.out.index_bytes)
                            : implied[e] - l.span.global_begin;
}

/// Validation of received entries: indices below n and strictly increasing (unless implied),
/// values finite and finite times the span's value scale (V = void: no values); the first bad
/// entry is recorded.
template <class V>
__global__ void validate_entries(const std::uint8_t* __restrict__ msg,
                                 const sparse_out* __restrict__ outs,
                                 const sparse_entry_span* __restrict__ spans, std::uint32_t count,
                                 std::uint64_t entries, unsigned long long* first_bad) {
  for (std::uint64_t e = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; e < entries;
       e += std::uint64_t{gridDim.x} * blockDim.x) {
    const located_entry l = locate_entry(msg, outs, spans, count, e, stored_value_bytes<V>);
    bool ok = true;
    if (l.index != nullptr) {
      const unsigned w = l.out.index_bytes;
      const std::uint64_t i = load_bytes(l.index, w);
      ok = i < l.span.n && (l.rank == 0 || i > load_bytes(l.index - w, w));
    }
    if constexpr (!std::is_void_v<V>) {
      const float v =
          value_from_bits<V>(static_cast<std::uint32_t>(load_bytes(l.value, sizeof(V))));
      ok = ok && !is_non_finite(v) && !is_non_finite(v * l.span.scale);
    }
    if (!ok) {
      atomicMin(first_bad, static_cast<unsigned long long>(e));
    }
  }
}

/// Scatters received entries into out (the spans were zeroed first for an assignment).
/// Implied indices come from `implied`: the regenerated selection's global indices. Values are
/// the message's (times the span's scale) or, for V = void, the decoded codes of a composite
/// span in kept[global_begin + rank]. With Check, writes nothing: records the lowest global
/// index whose write would overflow T (detail::write_overflows) in *first_overflow.
template <class V, class T, bool Add, bool Check = false>
__global__ void scatter_entries(const std::uint8_t* __restrict__ msg,
                                const sparse_out* __restrict__ outs,
                                const sparse_entry_span* __restrict__ spans, std::uint32_t count,
                                std::uint64_t entries, const std::uint64_t* __restrict__ implied,
                                const float* __restrict__ kept, T* __restrict__ out,
                                unsigned long long* __restrict__ first_overflow) {
  for (std::uint64_t e = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; e < entries;
       e += std::uint64_t{gridDim.x} * blockDim.x) {
    const located_entry l = locate_entry(msg, outs, spans, count, e, stored_value_bytes<V>);
    const std::uint64_t i = entry_index(l, implied, e);
    float v = 0.0f;
    if constexpr (std::is_void_v<V>) {
      v = kept[l.span.global_begin + l.rank];
    } else {
      v = value_from_bits<V>(static_cast<std::uint32_t>(load_bytes(l.value, sizeof(V)))) *
          l.span.scale;
    }
    T* d = out + l.span.global_begin + i;
    if constexpr (Check) {
      if (write_overflows<T>(Add ? to_float(*d) : 0.0f, v, Add)) {
        atomicMin(first_overflow, static_cast<unsigned long long>(l.span.global_begin + i));
      }
    } else if constexpr (Add) {
      *d = from_float<T>(to_float(*d) + v);
    } else {
      *d = from_float<T>(v);
    }
  }
}

/// sent[g] = 1 at the global index g of every validated entry (codec::sent_elements).
template <class V>
__global__ void mark_entries(const std::uint8_t* __restrict__ msg,
                             const sparse_out* __restrict__ outs,
                             const sparse_entry_span* __restrict__ spans, std::uint32_t count,
                             std::uint64_t entries, const std::uint64_t* __restrict__ implied,
                             std::uint8_t* __restrict__ sent) {
  for (std::uint64_t e = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; e < entries;
       e += std::uint64_t{gridDim.x} * blockDim.x) {
    const located_entry l = locate_entry(msg, outs, spans, count, e, stored_value_bytes<V>);
    sent[l.span.global_begin + entry_index(l, implied, e)] = 1;
  }
}

} // namespace gradcomp::detail::cuda
