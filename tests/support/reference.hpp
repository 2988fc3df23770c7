// SPDX-License-Identifier: Apache-2.0
#pragma once

// Plain reference implementations of every operator, written from SPECS.md with std:: and
// obvious loops (sorting for selection, frexp/ldexp for exponents, double arithmetic for
// probabilities). They share only the Philox generator (checked by its known-answer test) and the
// stream layout with the library, so agreement is a real check of the optimized paths.

#include <gradcomp/gradcomp.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>
#include <vector>

namespace gradcomp::test::ref {

/// The 32-bit word of element i: 8 high bits from the rounding stream, 24 low bits from the
/// rounding_low stream (math/rounding.hpp).
inline std::uint32_t rnd32(const stream_key& key, std::uint64_t i) {
  const random_stream hi(key.seed, key.stream_word(), random_purpose::rounding);
  const random_stream lo(key.seed, key.stream_word(), random_purpose::rounding_low);
  return (hi.bits8(i) << 24) | (lo.bits32(i) & 0xffffffu);
}
/// "up" with probability p (exact double p in [0, 1]), the integer rule of SPECS.md §2.2.
inline bool up(double p, std::uint32_t r) {
  return static_cast<double>(r) < std::floor(p * 4294967296.0);
}

/// The canonical summation order, written out plainly.
inline double canonical_sum(const std::vector<double>& v) {
  std::vector<double> chunks;
  for (std::size_t c = 0; c < v.size(); c += 2048) {
    std::vector<double> lane(32, 0.0);
    for (std::size_t i = c; i < std::min(v.size(), c + 2048); ++i) {
      lane[(i - c) % 32] += v[i];
    }
    while (lane.size() > 1) { // pairwise: (l0 + l1), (l2 + l3), ...
      std::vector<double> next;
      for (std::size_t j = 0; j < lane.size(); j += 2) {
        next.push_back(lane[j] + lane[j + 1]);
      }
      lane = next;
    }
    chunks.push_back(lane[0]);
  }
  struct tree_t {
    const std::vector<double>& s;
    double operator()(std::size_t lo, std::size_t hi) const {
      if (hi == lo)
        return 0.0;
      if (hi - lo == 1)
        return s[lo];
      const std::size_t mid = lo + (hi - lo) / 2;
      return (*this)(lo, mid) + (*this)(mid, hi);
    }
  };
  return tree_t{chunks}(0, chunks.size());
}

inline std::vector<float> keep(const std::vector<float>& x, const std::vector<std::size_t>& idx) {
  std::vector<float> out(x.size(), 0.0f);
  for (std::size_t i : idx)
    out[i] = x[i];
  return out;
}

inline std::vector<float> topk(const std::vector<float>& x, std::size_t k) {
  std::vector<std::size_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const float fa = std::fabs(x[a]), fb = std::fabs(x[b]);
    return fa != fb ? fa > fb : a < b;
  });
  order.resize(k);
  return keep(x, order);
}

/// Random-k's subset as SPECS.md's sampling without replacement: draw j of the span at g0 is
/// floor(w * n / 2^64) of the 64-bit word w at counter g0 + j (for j >= n: r 2^40 + g0 + j - r n,
/// r = j / n); the first min(k, n - k) distinct draws are the subset, or, when k > n - k, its
/// complement. Returned ascending.
inline std::vector<std::size_t> random_subset(std::size_t n, std::size_t k, const stream_key& key,
                                              std::uint64_t g0, bool shared) {
  stream_key sk = key;
  if (shared)
    sk.rank = 0;
  const random_stream rs(sk.seed, sk.stream_word(), random_purpose::subset);
  const bool complement = k > n - k;
  const std::size_t distinct = complement ? n - k : k;
  std::set<std::size_t> drawn;
  for (std::uint64_t j = 0; drawn.size() < distinct; ++j) {
    const std::uint64_t r = j / n;
    const std::uint64_t word = rs.bits64((r << 40) + g0 + (j - r * n));
    __extension__ using u128 = unsigned __int128;
    drawn.insert(static_cast<std::size_t>((static_cast<u128>(word) * n) >> 64));
  }
  std::vector<std::size_t> subset;
  for (std::size_t i = 0; i < n; ++i)
    if ((drawn.count(i) != 0) != complement)
      subset.push_back(i);
  return subset;
}

inline std::vector<float> threshold(const std::vector<float>& x, double v) {
  std::vector<float> out(x.size(), 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i)
    if (x[i] != 0.0f && std::fabs(static_cast<double>(x[i])) >= v)
      out[i] = x[i];
  return out;
}

inline std::vector<float> adaptive(const std::vector<float>& x) {
  double m = 0;
  for (float v : x)
    m = std::max(m, std::fabs(static_cast<double>(v)));
  std::vector<float> out(x.size(), 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i)
    if (x[i] != 0.0f && 2.0 * std::fabs(static_cast<double>(x[i])) >= m)
      out[i] = x[i];
  return out;
}

inline float terngrad_scale(const std::vector<float>& x, bool clip, double sigmas) {
  float m = 0;
  for (float v : x)
    m = std::max(m, std::fabs(v));
  if (!clip || x.empty())
    return m;
  std::vector<double> v1, v2;
  for (float v : x) {
    v1.push_back(v);
    v2.push_back(static_cast<double>(v) * v);
  }
  const double n = static_cast<double>(x.size());
  const double mean = canonical_sum(v1) / n;
  const double var = std::max(0.0, std::fma(-mean, mean, canonical_sum(v2) / n));
  return std::min(m, static_cast<float>(sigmas * std::sqrt(var)));
}
inline std::vector<float> terngrad(const std::vector<float>& x, float s, const stream_key& key,
                                   std::uint64_t g0) {
  std::vector<float> out(x.size(), 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (s == 0.0f)
      continue;
    const float p = std::min(std::fabs(x[i]), s) / s;
    if (up(p, rnd32(key, g0 + i)))
      out[i] = std::signbit(x[i]) ? -s : s;
  }
  return out;
}

inline std::vector<float> qsgd(const std::vector<float>& x, std::uint32_t s, std::size_t bucket,
                               const stream_key& key, std::uint64_t g0) {
  std::vector<float> out(x.size(), 0.0f);
  const std::size_t b = bucket == 0 ? std::max<std::size_t>(x.size(), 1) : bucket;
  for (std::size_t lo = 0; lo < x.size(); lo += b) {
    const std::size_t hi = std::min(x.size(), lo + b);
    std::vector<double> sq;
    for (std::size_t i = lo; i < hi; ++i)
      sq.push_back(static_cast<double>(x[i]) * x[i]);
    const auto norm = static_cast<float>(std::sqrt(canonical_sum(sq)));
    for (std::size_t i = lo; i < hi; ++i) {
      if (norm == 0.0f)
        continue;
      const float r = (std::fabs(x[i]) / norm) * static_cast<float>(s);
      const float l = std::floor(r);
      const float level =
          std::min(l + (up(r - l, rnd32(key, g0 + i)) ? 1.0f : 0.0f), static_cast<float>(s));
      const float mag = norm * (level / static_cast<float>(s));
      out[i] = (std::signbit(x[i]) && level > 0) ? -mag : mag;
    }
  }
  return out;
}

inline std::vector<float> sign(const std::vector<float>& x, bool scaled) {
  float scale = 1.0f;
  if (scaled && !x.empty()) {
    std::vector<double> a;
    for (float v : x)
      a.push_back(std::fabs(static_cast<double>(v)));
    scale = static_cast<float>(canonical_sum(a) / static_cast<double>(x.size()));
  }
  std::vector<float> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = x[i] < 0.0f ? -scale : scale;
  return out;
}

/// C_nat with exponents clamped to [lo_exp, hi_exp] (2^lo_exp is the smallest non-zero output;
/// below it values round to 0 or 2^lo_exp). 9-bit: [-126, 127]; 8-bit: [-110, 16].
inline float natural_one(float x, std::uint32_t r, int lo_exp, int hi_exp) {
  const double a = std::fabs(static_cast<double>(x));
  if (a == 0.0)
    return 0.0f;
  int e;
  (void)std::frexp(a, &e); // a = f 2^e, f in [0.5, 1): floor(log2 a) = e - 1
  int fl = e - 1;
  double mag;
  if (fl < lo_exp) { // between 0 and 2^lo_exp
    mag = up(a / std::ldexp(1.0, lo_exp), r) ? std::ldexp(1.0, lo_exp) : 0.0;
  } else {
    const double p = a / std::ldexp(1.0, fl) - 1.0;
    int out_e = fl + (up(p, r) ? 1 : 0);
    mag = std::ldexp(1.0, std::min(out_e, hi_exp));
  }
  if (mag == 0.0)
    return 0.0f; // zero is sent as +0
  return static_cast<float>(std::signbit(x) ? -mag : mag);
}
inline std::vector<float> natural(const std::vector<float>& x, const stream_key& key,
                                  std::uint64_t g0, unsigned bits) {
  std::vector<float> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = bits == 9 ? natural_one(x[i], rnd32(key, g0 + i), -126, 127)
                       : natural_one(x[i], rnd32(key, g0 + i), -110, 16);
  return out;
}

/// Stochastic rounding to the grid of V: neighbours found by nextafter-style search on V's bits.
template <class V>
float sr_one(float x, std::uint32_t r) {
  const double a = std::fabs(static_cast<double>(x));
  const float maxv = std::is_same_v<V, half> ? 65504.0f : to_float(bfloat16{0x7f7f});
  if (a >= maxv)
    return std::signbit(x) ? -maxv : maxv;
  // lo = largest V <= a (positive bit patterns are ordered like the values)
  std::uint16_t b = from_float<V>(static_cast<float>(a)).bits;
  while (to_float(V{b}) > a)
    --b;
  const double lo = to_float(V{b}), hi = to_float(V{static_cast<std::uint16_t>(b + 1)});
  const double p = (a - lo) / (hi - lo);
  const double mag = up(p, r) ? hi : lo;
  return static_cast<float>(std::signbit(x) ? -mag : mag);
}

} // namespace gradcomp::test::ref
