// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../config.hpp"
#include "../../math/canonical_sum.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

/// @file
/// CPU primitives of the low-rank compressors: the skinny products of a rows x cols matrix M
/// (row-major; only its first `size` elements are stored, the rest are zeros) with factors of
/// R <= 8 columns, and the orthonormalization of a factor. P (rows x R) is row-major; Q is kept
/// transposed, R rows of cols (Qt), so that every product streams M once with unit-stride vectors.
/// Every sum has one fixed order, so the results do not depend on vector width or threads:
///   P[i][j]   = the canonical lane sum (math/canonical_sum.hpp: 32 lanes, lane l adds the terms
///               k = l mod 32 in ascending k from +0, then the pairwise tree) of M[i][k] Qt[j][k],
///               in float; the lanes are what a warp holds, and four 8-wide vectors on a CPU;
///   Qt[j][k]  = sum over i ascending of M[i][k] * P[i][j]   (float, from +0);
///   out[i][k] = sum over j ascending of P[i][j] * Qt[j][k]  (float, from +0).
/// Products are rounded before they are added (the library is built with -ffp-contract=off).

namespace gradcomp::backend::cpu {

namespace detail {
/// Elements of row i that are stored.
[[nodiscard]] inline std::size_t row_length(std::size_t i, std::size_t cols,
                                            std::size_t size) noexcept {
  const std::size_t begin = i * cols;
  return begin >= size ? 0 : std::min(cols, size - begin);
}

#if defined(__GNUC__)
/// Eight floats as one GCC/Clang vector (two SSE registers, or one AVX register): the loops
/// below do the same float operations per element as their scalar tails, eight at a time.
using f32x8 = float __attribute__((vector_size(32)));
using u32x8 = std::uint32_t __attribute__((vector_size(32)));
inline constexpr std::size_t vector_floats = 8;
// (vectors pass by reference: by value they would change the ABI without AVX enabled)
GRADCOMP_FORCEINLINE void load8(f32x8& v, const float* p) noexcept {
  std::memcpy(&v, p, sizeof v);
}
GRADCOMP_FORCEINLINE void store8(float* p, const f32x8& v) noexcept {
  std::memcpy(p, &v, sizeof v);
}
#else
inline constexpr std::size_t vector_floats = 0; // scalar loops only
#endif

/// The canonical lane sums of a[k] * b[j * stride + k] over k < n for j < R, in float, into
/// out[0, R): one pass over a.
template <std::size_t R>
void lane_dots(const float* a, const float* b, std::size_t stride, std::size_t n,
               float* out) noexcept {
  constexpr std::size_t L = math::canonical_lanes;
  float lane[R][L] = {};
  std::size_t k = 0;
#if defined(__GNUC__)
  static_assert(L == 4 * vector_floats);
  f32x8 acc[R][4] = {};
  for (; k + L <= n; k += L) {
    for (std::size_t v = 0; v < 4; ++v) {
      f32x8 x;
      load8(x, a + k + 8 * v);
      GRADCOMP_UNROLL(8)
      for (std::size_t j = 0; j < R; ++j) {
        f32x8 y;
        load8(y, b + j * stride + k + 8 * v);
        acc[j][v] += x * y;
      }
    }
  }
  std::memcpy(lane, acc, sizeof lane);
#endif
  for (std::size_t j = 0; j < R; ++j) {
    const float* bj = b + j * stride;
    for (std::size_t kk = k; kk + L <= n; kk += L) {
      for (std::size_t l = 0; l < L; ++l) {
        lane[j][l] += a[kk + l] * bj[kk + l];
      }
    }
    const std::size_t tail = n - (n - k) % L;
    for (std::size_t l = 0; tail + l < n; ++l) {
      lane[j][l] += a[tail + l] * bj[tail + l];
    }
    out[j] = math::combine_lanes(lane[j]);
  }
}
} // namespace detail

/// out = a + b (b may be null: out = a); true when every result is finite.
inline bool add_finite(const float* a, const float* b, float* out, std::size_t n) noexcept {
  std::size_t i = 0;
  bool finite = true;
#if defined(__GNUC__)
  detail::u32x8 non_finite = {};
  for (; i + detail::vector_floats <= n; i += detail::vector_floats) {
    detail::f32x8 v;
    detail::load8(v, a + i);
    if (b != nullptr) {
      detail::f32x8 w;
      detail::load8(w, b + i);
      v += w;
    }
    detail::store8(out + i, v);
    detail::u32x8 bits;
    std::memcpy(&bits, &v, sizeof bits);
    non_finite |= reinterpret_cast<detail::u32x8>((bits & 0x7f800000u) == 0x7f800000u);
  }
  for (std::size_t l = 0; l < detail::vector_floats; ++l) {
    finite = finite && non_finite[l] == 0;
  }
#endif
  for (; i < n; ++i) {
    out[i] = b != nullptr ? a[i] + b[i] : a[i];
    finite = finite && std::isfinite(out[i]);
  }
  return finite;
}

/// P = M Q (rows x R, row-major) from Qt (R x cols).
template <std::size_t R>
void lowrank_multiply(const float* m, std::size_t rows, std::size_t cols, std::size_t size,
                      const float* qt, float* p) noexcept {
  for (std::size_t i = 0; i < rows; ++i) {
    const std::size_t n = detail::row_length(i, cols, size);
    detail::lane_dots<R>(m + i * cols, qt, cols, n, p + i * R);
  }
}

/// Qt = (M^T P)^T (R x cols) from P (rows x R, row-major), for the columns [k_begin, k_end) of M
/// (each thread of a call can take its own range: every column still adds the rows in order).
template <std::size_t R>
void lowrank_multiply_transposed(const float* m, std::size_t rows, std::size_t cols,
                                 std::size_t size, const float* p, float* qt,
                                 std::size_t k_begin = 0,
                                 std::size_t k_end = static_cast<std::size_t>(-1)) noexcept {
  k_end = std::min(k_end, cols);
  for (std::size_t j = 0; j < R; ++j) {
    std::fill(qt + j * cols + k_begin, qt + j * cols + k_end, 0.0f);
  }
  std::size_t i = 0;
  // four rows at a time: each Qt element is loaded and stored once per four rows, its terms still
  // added in row order
  for (; i + 4 <= rows && detail::row_length(i + 3, cols, size) == cols; i += 4) {
    const float* r0 = m + i * cols;
    const float* r1 = r0 + cols;
    const float* r2 = r1 + cols;
    const float* r3 = r2 + cols;
    for (std::size_t j = 0; j < R; ++j) {
      const float p0 = p[i * R + j];
      const float p1 = p[(i + 1) * R + j];
      const float p2 = p[(i + 2) * R + j];
      const float p3 = p[(i + 3) * R + j];
      float* q = qt + j * cols;
      std::size_t k = k_begin;
#if defined(__GNUC__)
      for (; k + detail::vector_floats <= k_end; k += detail::vector_floats) {
        detail::f32x8 acc;
        detail::f32x8 x[4];
        detail::load8(acc, q + k);
        detail::load8(x[0], r0 + k);
        detail::load8(x[1], r1 + k);
        detail::load8(x[2], r2 + k);
        detail::load8(x[3], r3 + k);
        acc += x[0] * p0;
        acc += x[1] * p1;
        acc += x[2] * p2;
        acc += x[3] * p3;
        detail::store8(q + k, acc);
      }
#endif
      for (; k < k_end; ++k) {
        float acc = q[k];
        acc += r0[k] * p0;
        acc += r1[k] * p1;
        acc += r2[k] * p2;
        acc += r3[k] * p3;
        q[k] = acc;
      }
    }
  }
  for (; i < rows; ++i) {
    const float* row = m + i * cols;
    const std::size_t n = std::min(detail::row_length(i, cols, size), k_end);
    for (std::size_t j = 0; j < R; ++j) {
      const float pij = p[i * R + j];
      float* q = qt + j * cols;
      for (std::size_t k = k_begin; k < n; ++k) {
        q[k] += row[k] * pij;
      }
    }
  }
}

/// out = P Q^T over the stored elements; with a non-null m, out = M - P Q^T instead (the
/// residual of error feedback).
template <std::size_t R>
void lowrank_reconstruct(const float* p, const float* qt, std::size_t rows, std::size_t cols,
                         std::size_t size, float* out, const float* m = nullptr) noexcept {
  for (std::size_t i = 0; i < rows; ++i) {
    const std::size_t n = detail::row_length(i, cols, size);
    float pi[R];
    std::memcpy(pi, p + i * R, sizeof pi);
    float* o = out + i * cols;
    const float* mi = m == nullptr ? nullptr : m + i * cols;
    std::size_t k = 0;
#if defined(__GNUC__)
    for (; k + detail::vector_floats <= n; k += detail::vector_floats) {
      detail::f32x8 v = {};
      GRADCOMP_UNROLL(8)
      for (std::size_t j = 0; j < R; ++j) {
        detail::f32x8 q;
        detail::load8(q, qt + j * cols + k);
        v += pi[j] * q;
      }
      if (mi != nullptr) {
        detail::f32x8 x;
        detail::load8(x, mi + k);
        v = x - v;
      }
      detail::store8(o + k, v);
    }
#endif
    for (; k < n; ++k) {
      float v = 0.0f;
      GRADCOMP_UNROLL(8)
      for (std::size_t j = 0; j < R; ++j) {
        v += pi[j] * qt[j * cols + k];
      }
      o[k] = mi == nullptr ? v : mi[k] - v;
    }
  }
}

/// Orthonormalizes the R columns of P (rows x R, row-major) in place: modified Gram-Schmidt with
/// each projection applied twice ("twice is enough"), dot products and norms summed in double in
/// row order. A column left with at most 1e-4 of its norm by the projections (linearly dependent
/// on the ones before, or zero) becomes zero.
template <std::size_t R>
void orthonormalize_columns(float* p, std::size_t rows) noexcept {
  auto dot = [&](std::size_t a, std::size_t b) {
    double s = 0;
    for (std::size_t i = 0; i < rows; ++i) {
      s += static_cast<double>(p[i * R + a]) * static_cast<double>(p[i * R + b]);
    }
    return s;
  };
  for (std::size_t j = 0; j < R; ++j) {
    const double before = dot(j, j);
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t l = 0; l < j; ++l) {
        const double c = dot(j, l);
        for (std::size_t i = 0; i < rows; ++i) {
          p[i * R + j] = static_cast<float>(static_cast<double>(p[i * R + j]) -
                                            c * static_cast<double>(p[i * R + l]));
        }
      }
    }
    const double after = dot(j, j);
    const bool keep = after > 0 && after > 1e-8 * before;
    const double inv = keep ? 1.0 / std::sqrt(after) : 0.0;
    for (std::size_t i = 0; i < rows; ++i) {
      p[i * R + j] = static_cast<float>(static_cast<double>(p[i * R + j]) * inv);
    }
  }
}

/// Calls f.template operator()<R>() with R = r as a constant, r in [1, 8].
template <class F>
decltype(auto) with_rank(std::size_t r, F&& f) {
  switch (r) {
  case 1:
    return f.template operator()<1>();
  case 2:
    return f.template operator()<2>();
  case 3:
    return f.template operator()<3>();
  case 4:
    return f.template operator()<4>();
  case 5:
    return f.template operator()<5>();
  case 6:
    return f.template operator()<6>();
  case 7:
    return f.template operator()<7>();
  default:
    return f.template operator()<8>();
  }
}

} // namespace gradcomp::backend::cpu
