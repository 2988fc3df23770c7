// SPDX-License-Identifier: Apache-2.0
// Writes the seed corpora of the fuzz targets: valid messages of every fuzzed spec (prefixed with
// the bytes that select it) for the decoder, the bare messages for the header target, and one
// gradient material per spec for the round-trip target, and the lowrank target's sum messages.
// usage: fuzz_seeds OUTPUT_DIR
#include "fuzz_specs.hpp"
#include "lowrank_fixture.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace {

using namespace gradcomp;
namespace fs = std::filesystem;

void write_file(const fs::path& p, const std::vector<std::byte>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<float> gradient(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) {
    v = d(rng) * (seed % 3 == 0 ? 1e-3f : 1.0f);
  }
  if (seed % 4 == 1) {
    x[5] = 0.0f;
    x[6] = -0.0f;
  }
  return x;
}

/// Four messages of spec i: decoder seeds (with the selector) and header seeds (bare).
int write_messages(const fs::path& root, std::size_t i) {
  any_codec c(fuzz::fuzz_specs()[i], fuzz::fuzz_layout());
  for (std::uint64_t seed = 0; seed < 4; ++seed) {
    const auto x = gradient(c.layout().total_size(), seed * 7 + i);
    std::vector<std::byte> m(c.max_encoded_bytes<float>());
    m.resize(c.encode(cpu, std::span<const float>(x), std::span<std::byte>(m), {seed, seed, 1}));
    std::vector<std::byte> selected = fuzz::selector(i);
    selected.insert(selected.end(), m.begin(), m.end());
    const std::string name = std::to_string(i) + "_" + std::to_string(seed);
    write_file(root / "decode" / name, selected);
    write_file(root / "header" / name, m);
  }
  return 8;
}

/// The round-trip material of spec i: selector, seed, 40 values.
int write_material(const fs::path& root, std::size_t i) {
  const auto x = gradient(40, i);
  std::vector<std::byte> in = fuzz::selector(i);
  for (std::size_t b = 0; b < 8; ++b) {
    in.push_back(static_cast<std::byte>(i * 31 + b));
  }
  const auto* p = reinterpret_cast<const std::byte*>(x.data());
  in.insert(in.end(), p, p + x.size() * sizeof(float));
  write_file(root / "roundtrip" / std::to_string(i), in);
  return 1;
}

/// The lowrank target's seeds: each case's valid sum message, behind its selector byte.
int write_lowrank(const fs::path& root) {
  for (std::uint8_t s = 0; s < 4; ++s) {
    std::vector<std::byte> in{std::byte{s}};
    const auto valid = fuzz::make_lowrank_case(s).valid_sum;
    in.insert(in.end(), valid.begin(), valid.end());
    write_file(root / "lowrank" / std::to_string(s), in);
  }
  return 4;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUTPUT_DIR\n");
    return 2;
  }
  const fs::path root = argv[1];
  for (const char* d : {"decode", "header", "roundtrip", "lowrank"}) {
    fs::create_directories(root / d);
  }
  int count = write_lowrank(root);
  for (std::size_t i = 0; i < fuzz::fuzz_specs().size(); ++i) {
    count += write_messages(root, i) + write_material(root, i);
  }
  std::printf("fuzz_seeds: %d seed inputs for %zu specs under %s\n", count,
              fuzz::fuzz_specs().size(), argv[1]);
  return 0;
}
