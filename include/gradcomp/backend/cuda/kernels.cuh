// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "checksum.cuh"
#include "codes.cuh"
#include "launch.cuh"
#include "reduce_groups.cuh"

/// @file
/// The CUDA kernels of the batched codec (backend/cuda/dense_engine.cuh), one header each as on
/// the CPU: launch.cuh (tiles, grids, span lookup), reduce_groups.cuh (canonical reductions),
/// codes.cuh (code packing, unpacking, validation; scales), checksum.cuh. The per-element math is
/// the shared __host__ __device__ code of math/ and the coders, the reductions follow the
/// canonical order of math/canonical_sum.hpp, and random bytes follow random_stream::bits8 at
/// the global index, so the bytes are those of the CPU backend.
