// SPDX-License-Identifier: Apache-2.0
// Writes the seed corpora of the fuzz targets: valid messages of every scheme of each family
// (prefixed with the byte that selects the scheme), the bare messages for the header target,
// and gradient materials for the round-trip target. usage: fuzz_seeds OUTPUT_DIR
#include "fuzz_schemes.hpp"

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

struct writer {
  fs::path root;
  int count = 0;
  template <class Scheme>
  void messages(const char* family, unsigned selector, const Scheme& s) {
    codec<Scheme> c(s, fuzz::fuzz_layout());
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
      const auto x = gradient(c.layout().total_size(), seed * 7 + selector);
      std::vector<std::byte> m(c.template max_encoded_bytes<float>());
      m.resize(c.encode(cpu, std::span<const float>(x), std::span<std::byte>(m), {seed, seed, 1}));
      std::vector<std::byte> with_selector{static_cast<std::byte>(selector)};
      with_selector.insert(with_selector.end(), m.begin(), m.end());
      const std::string name = std::to_string(selector) + "_" + std::to_string(seed);
      write_file(root / family / name, with_selector);
      write_file(root / "header" / (std::string(family) + "_" + name), m);
      count += 2;
    }
  }
};

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUTPUT_DIR\n");
    return 2;
  }
  writer w{argv[1]};
  for (const char* d : {"decode_sparse", "decode_codes", "decode_dense", "decode_composite",
                        "header", "roundtrip"}) {
    fs::create_directories(w.root / d);
  }
  for (unsigned i = 0; i < fuzz::sparse_schemes; ++i) {
    fuzz::with_sparse_scheme(i, [&](const auto& s) { w.messages("decode_sparse", i, s); });
  }
  for (unsigned i = 0; i < fuzz::code_schemes; ++i) {
    fuzz::with_code_scheme(i, [&](const auto& s) { w.messages("decode_codes", i, s); });
  }
  for (unsigned i = 0; i < fuzz::dense_schemes; ++i) {
    fuzz::with_dense_scheme(i, [&](const auto& s) { w.messages("decode_dense", i, s); });
  }
  for (unsigned i = 0; i < fuzz::composite_schemes; ++i) {
    fuzz::with_composite_scheme(i, [&](const auto& s) { w.messages("decode_composite", i, s); });
  }
  for (unsigned sel = 0; sel < 32; ++sel) { // every scheme of every family once
    const auto x = gradient(40, sel);
    std::vector<std::byte> in{static_cast<std::byte>(sel)};
    for (int b = 0; b < 8; ++b) {
      in.push_back(static_cast<std::byte>(sel * 31 + b));
    }
    const auto* p = reinterpret_cast<const std::byte*>(x.data());
    in.insert(in.end(), p, p + x.size() * sizeof(float));
    write_file(w.root / "roundtrip" / std::to_string(sel), in);
    ++w.count;
  }
  std::printf("fuzz_seeds: %d seed inputs under %s\n", w.count, argv[1]);
  return 0;
}
