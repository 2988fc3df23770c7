// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../config.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

/// @file
/// CPU primitives of the low-rank compressors: the skinny products of a rows x cols matrix M
/// (row-major; only its first `size` elements are stored, the rest are zeros) with factors of
/// R <= 8 columns, and the orthonormalization of a factor. Every sum has one fixed order, so the
/// results do not depend on blocking, vector width or thread count:
///   P[i][j]   = sum over k ascending of M[i][k] * Q[k][j]   (float, from +0)
///   Q[k][j]   = sum over i ascending of M[i][k] * P[i][j]   (float, from +0)
///   out[i][k] = sum over j ascending of P[i][j] * Q[k][j]   (float, from +0)
/// Products are rounded before they are added (the library is built with -ffp-contract=off).
/// The loops work on blocks of four rows to keep four independent add chains in flight; each
/// output still sees its terms in the order above.

namespace gradcomp::backend::cpu {

namespace detail {
/// Elements of row i that are stored.
[[nodiscard]] inline std::size_t row_length(std::size_t i, std::size_t cols,
                                            std::size_t size) noexcept {
  const std::size_t begin = i * cols;
  return begin >= size ? 0 : std::min(cols, size - begin);
}
} // namespace detail

/// P = M Q (rows x R) from Q (cols x R).
template <std::size_t R>
void lowrank_multiply(const float* m, std::size_t rows, std::size_t cols, std::size_t size,
                      const float* q, float* p) noexcept {
  std::size_t i = 0;
  for (; i + 4 <= rows && detail::row_length(i + 3, cols, size) == cols; i += 4) {
    float acc[4][R] = {};
    const float* row = m + i * cols;
    for (std::size_t k = 0; k < cols; ++k) {
      const float* qk = q + k * R;
      for (std::size_t b = 0; b < 4; ++b) {
        const float v = row[b * cols + k];
        GRADCOMP_UNROLL(8)
        for (std::size_t j = 0; j < R; ++j) {
          acc[b][j] += v * qk[j];
        }
      }
    }
    std::memcpy(p + i * R, acc, sizeof acc);
  }
  for (; i < rows; ++i) {
    float acc[R] = {};
    const float* row = m + i * cols;
    const std::size_t n = detail::row_length(i, cols, size);
    for (std::size_t k = 0; k < n; ++k) {
      for (std::size_t j = 0; j < R; ++j) {
        acc[j] += row[k] * q[k * R + j];
      }
    }
    std::memcpy(p + i * R, acc, sizeof acc);
  }
}

/// Q = M^T P (cols x R) from P (rows x R).
template <std::size_t R>
void lowrank_multiply_transposed(const float* m, std::size_t rows, std::size_t cols,
                                 std::size_t size, const float* p, float* q) noexcept {
  std::fill(q, q + cols * R, 0.0f);
  std::size_t i = 0;
  for (; i + 4 <= rows && detail::row_length(i + 3, cols, size) == cols; i += 4) {
    const float* row = m + i * cols;
    const float* pi = p + i * R;
    for (std::size_t k = 0; k < cols; ++k) {
      float* qk = q + k * R;
      GRADCOMP_UNROLL(8)
      for (std::size_t j = 0; j < R; ++j) {
        float acc = qk[j];
        acc += row[k] * pi[j];
        acc += row[cols + k] * pi[R + j];
        acc += row[2 * cols + k] * pi[2 * R + j];
        acc += row[3 * cols + k] * pi[3 * R + j];
        qk[j] = acc;
      }
    }
  }
  for (; i < rows; ++i) {
    const float* row = m + i * cols;
    const std::size_t n = detail::row_length(i, cols, size);
    for (std::size_t k = 0; k < n; ++k) {
      for (std::size_t j = 0; j < R; ++j) {
        q[k * R + j] += row[k] * p[i * R + j];
      }
    }
  }
}

/// out = P Q^T over the stored elements.
template <std::size_t R>
void lowrank_reconstruct(const float* p, const float* q, std::size_t rows, std::size_t cols,
                         std::size_t size, float* out) noexcept {
  for (std::size_t i = 0; i < rows; ++i) {
    const std::size_t n = detail::row_length(i, cols, size);
    float pi[R];
    std::memcpy(pi, p + i * R, sizeof pi);
    float* o = out + i * cols;
    for (std::size_t k = 0; k < n; ++k) {
      float v = 0.0f;
      GRADCOMP_UNROLL(8)
      for (std::size_t j = 0; j < R; ++j) {
        v += pi[j] * q[k * R + j];
      }
      o[k] = v;
    }
  }
}

/// residual = M - P Q^T over the stored elements (P Q^T summed as in lowrank_reconstruct).
template <std::size_t R>
void lowrank_residual(const float* p, const float* q, std::size_t rows, std::size_t cols,
                      std::size_t size, const float* m, float* residual) noexcept {
  for (std::size_t i = 0; i < rows; ++i) {
    const std::size_t n = detail::row_length(i, cols, size);
    float pi[R];
    std::memcpy(pi, p + i * R, sizeof pi);
    const float* mi = m + i * cols;
    float* e = residual + i * cols;
    for (std::size_t k = 0; k < n; ++k) {
      float v = 0.0f;
      GRADCOMP_UNROLL(8)
      for (std::size_t j = 0; j < R; ++j) {
        v += pi[j] * q[k * R + j];
      }
      e[k] = mi[k] - v;
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
