// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../detail/checksum.hpp"
#include "../../encoding/wire_header.hpp"
#include "launch.cuh"

#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>

/// @file
/// The wire checksum (detail/checksum.hpp) of a device message: one thread per 1 KiB block,
/// digests summed mod 2^64, then finished and, when sealing, written into the header.

namespace gradcomp::detail::cuda {

// ---- checksum --------------------------------------------------------------------------------

/// One thread per checksum block (detail/checksum.hpp); the digests are summed with atomicAdd
/// (addition mod 2^64 is order-free). The checksum field, bytes [48, 56), reads as zero.
template <bool Aligned>
__global__ void checksum_blocks(const std::uint8_t* __restrict__ msg, std::uint64_t size,
                                unsigned long long* sum) {
  const std::uint64_t blocks = (size + checksum_block_bytes - 1) / checksum_block_bytes;
  unsigned long long mine = 0;
  for (std::uint64_t b = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; b < blocks;
       b += std::uint64_t{gridDim.x} * blockDim.x) {
    const std::uint64_t begin = b * checksum_block_bytes;
    const std::uint64_t n =
        size - begin < checksum_block_bytes ? size - begin : checksum_block_bytes;
    const std::uint8_t* p = msg + begin;
    const auto word = [&](std::uint64_t i) -> std::uint64_t {
      if (b == 0 && i == wire_checksum_offset) {
        return 0;
      }
      if (Aligned && i + 8 <= n) {
        return reinterpret_cast<const std::uint64_t*>(p)[i / 8];
      }
      std::uint64_t w = 0;
      for (unsigned j = 0; j < 8 && i + j < n; ++j) {
        w |= std::uint64_t{p[i + j]} << (8 * j);
      }
      return w;
    };
    checksum_lanes h;
    std::uint64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const std::uint64_t w[4] = {word(i), word(i + 8), word(i + 16), word(i + 24)};
      h.row(w);
    }
    for (; i < n; i += 8) {
      h.tail(word(i));
    }
    mine += h.digest(b, n);
  }
  for (unsigned o = warp / 2; o > 0; o /= 2) {
    mine += __shfl_down_sync(0xffffffffu, mine, o);
  }
  if (threadIdx.x % warp == 0) {
    atomicAdd(sum, mine);
  }
}

/// Writes the finished checksum into the message (seal) and into *result.
__global__ void checksum_finish_kernel(const unsigned long long* sum, std::uint64_t size,
                                       std::uint8_t* msg_or_null, unsigned long long* result) {
  const std::uint64_t c = checksum_finish(*sum, size);
  *result = c;
  if (msg_or_null != nullptr) {
    for (unsigned b = 0; b < 8; ++b) {
      msg_or_null[wire_checksum_offset + b] = static_cast<std::uint8_t>(c >> (8 * b));
    }
  }
}

/// Launches the checksum of a device message of `size` bytes (three launches): scratch[0] gets
/// the digest sum, scratch[1] the checksum; `seal` also writes it into bytes [48, 56).
inline void checksum_async(cudaStream_t stream, std::uint8_t* msg, std::uint64_t size,
                           unsigned long long* scratch, bool seal) {
  cudaMemsetAsync(scratch, 0, sizeof(unsigned long long), stream);
  const std::uint64_t blocks = (size + checksum_block_bytes - 1) / checksum_block_bytes;
  const auto grid = static_cast<unsigned>(blocks / 128 + 1 < 65535 ? blocks / 128 + 1 : 65535);
  if (reinterpret_cast<std::uintptr_t>(msg) % 8 == 0) {
    checksum_blocks<true><<<grid, 128, 0, stream>>>(msg, size, scratch);
  } else {
    checksum_blocks<false><<<grid, 128, 0, stream>>>(msg, size, scratch);
  }
  checksum_finish_kernel<<<1, 1, 0, stream>>>(scratch, size, seal ? msg : nullptr, scratch + 1);
}

} // namespace gradcomp::detail::cuda
