// SPDX-License-Identifier: Apache-2.0
#pragma once

/// @file
/// Umbrella header of gradcomp's CUDA backend: include it from .cu files compiled by nvcc
/// (-fmad=false: contracting a*b+c into an FMA would change the shared per-element math and
/// break bit-identity with the CPU). It brings the CPU library and
/// makes codec<Scheme>'s calls take cuda_policy{stream} with device buffers.

#if !defined(__CUDACC__)
#error "gradcomp/cuda.cuh is CUDA code: include it from a .cu file compiled by nvcc"
#endif

#include "backend/cuda/codec_engine.cuh"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/kernels.cuh"
#include "backend/cuda/runtime.cuh"
#include "gradcomp.hpp"
