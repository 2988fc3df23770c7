// SPDX-License-Identifier: Apache-2.0
#pragma once

// Seeded input generators with named distributions, and the seed list of randomised tests.
// GRADCOMP_SEED_COUNT_OVERRIDE=N (environment) runs N seeds instead of the default (sanitizer
// builds use 1), as CCCL's c2h does.

#include <gradcomp/gradcomp.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace gradcomp::test {

inline std::vector<std::uint64_t> seeds(std::size_t default_count = 3) {
  std::size_t count = default_count;
  if (const char* env = std::getenv("GRADCOMP_SEED_COUNT_OVERRIDE")) {
    count = static_cast<std::size_t>(std::strtoul(env, nullptr, 10));
    count = count == 0 ? 1 : count;
  }
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(0x5eed0000ull + 7919ull * i);
  }
  return out;
}

enum class distribution { normal, uniform, heavy_tailed, mostly_zero, ties, tiny, mixed_scale };

inline const char* to_string(distribution d) {
  switch (d) {
  case distribution::normal:
    return "normal";
  case distribution::uniform:
    return "uniform";
  case distribution::heavy_tailed:
    return "heavy_tailed";
  case distribution::mostly_zero:
    return "mostly_zero";
  case distribution::ties:
    return "ties";
  case distribution::tiny:
    return "tiny";
  case distribution::mixed_scale:
    return "mixed_scale";
  }
  return "?";
}
inline const distribution all_distributions[] = {
    distribution::normal,      distribution::uniform, distribution::heavy_tailed,
    distribution::mostly_zero, distribution::ties,    distribution::tiny,
    distribution::mixed_scale};

inline std::vector<float> make_input(std::size_t n, distribution d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (d) {
    case distribution::normal:
      x[i] = 1e-3f * normal(rng);
      break;
    case distribution::uniform:
      x[i] = uni(rng);
      break;
    case distribution::heavy_tailed:
      x[i] = normal(rng) / (std::abs(normal(rng)) + 1e-3f);
      break;
    case distribution::mostly_zero:
      x[i] = (rng() % 10 == 0) ? normal(rng) : 0.0f;
      break;
    case distribution::ties:
      x[i] = static_cast<float>(static_cast<int>(rng() % 7) - 3) * 0.25f;
      break;
    case distribution::tiny:
      x[i] = normal(rng) * 1e-40f;
      break; // float subnormals
    case distribution::mixed_scale:
      x[i] = normal(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 40) - 30);
      break;
    }
  }
  return x;
}

template <class T>
std::vector<T> convert(const std::vector<float>& x) {
  std::vector<T> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    out[i] = from_float<T>(x[i]);
  }
  return out;
}

/// Layer sizes that exercise packing tails, index widths and empty layers.
inline model_layout odd_layout() {
  return model_layout::from_sizes(
      {0, 1, 2, 3, 5, 31, 32, 33, 64, 65, 127, 129, 0, 1023, 1025, 4099});
}

} // namespace gradcomp::test
