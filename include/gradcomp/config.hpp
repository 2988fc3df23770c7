// SPDX-License-Identifier: Apache-2.0
#pragma once

/// @file
/// Compiler configuration shared by every gradcomp header: the house macros and the guard
/// against value-changing floating-point flags.

#if defined(__CUDACC__) || defined(__HIPCC__)
#define GRADCOMP_HOST_DEVICE __host__ __device__
#else
#define GRADCOMP_HOST_DEVICE
#endif

/// Asks the compiler to unroll the next loop N times (GCC's pragma; nvcc and others ignore it).
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define GRADCOMP_UNROLL(N) _Pragma(GRADCOMP_STRINGIFY(GCC unroll N))
#else
#define GRADCOMP_UNROLL(N)
#endif
#define GRADCOMP_STRINGIFY(x) #x

#if defined(_MSC_VER)
#define GRADCOMP_FORCEINLINE __forceinline
#else
#define GRADCOMP_FORCEINLINE inline __attribute__((always_inline))
#endif

/// Hints that the cache line at address p is read soon (a no-op where the compiler has no hint).
#if defined(__GNUC__) && !defined(__CUDA_ARCH__)
#define GRADCOMP_PREFETCH(p) __builtin_prefetch(p)
#else
#define GRADCOMP_PREFETCH(p) ((void)(p))
#endif

// gradcomp promises bit-identical results across backends and a documented NaN/Inf policy.
// -ffast-math (and -ffinite-math-only) let the compiler reorder reductions and delete the
// non-finite checks, so both promises would silently break. Refuse to compile unless the user
// explicitly accepts degraded guarantees.
#if (defined(__FAST_MATH__) || defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__) &&           \
    !defined(GRADCOMP_ALLOW_FAST_MATH)
#error                                                                                             \
    "gradcomp: -ffast-math / -ffinite-math-only break the NaN policy and bit-identical results; \
remove the flag or define GRADCOMP_ALLOW_FAST_MATH to accept degraded guarantees"
#endif
