// SPDX-License-Identifier: Apache-2.0
#pragma once

/// @file
/// Umbrella header of gradcomp's CUDA backend: include it from .cu files compiled by nvcc
/// (-fmad=false: contracting a*b+c into an FMA would change the shared per-element math and
/// break bit-identity with the CPU). It brings the CPU library and device_codec<Scheme>.

#if !defined(__CUDACC__)
#error "gradcomp/cuda.cuh is CUDA code: include it from a .cu file compiled by nvcc"
#endif

#include "backend/cuda/composite_codec.cuh"
#include "backend/cuda/device_codec.cuh"
#include "backend/cuda/kernels.cuh"
#include "backend/cuda/runtime.cuh"
#include "backend/cuda/sparse_codec.cuh"
#include "gradcomp.hpp"

#include <type_traits>

namespace gradcomp {

/// The CUDA codec of a scheme: device buffers in and out, messages byte for byte those of
/// codec<Scheme> on the CPU. Sparse schemes use sparse_device_codec, compositions
/// composite_device_codec, fixed-width code schemes dense_device_codec.
template <class Scheme>
using device_codec =
    std::conditional_t<Scheme::is_sparse, sparse_device_codec<Scheme>,
                       std::conditional_t<Scheme::is_composite, composite_device_codec<Scheme>,
                                          dense_device_codec<Scheme>>>;

} // namespace gradcomp
