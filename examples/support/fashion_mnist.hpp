// SPDX-License-Identifier: Apache-2.0
#pragma once

// Fashion-MNIST from Debian's dataset-fashion-mnist: gzip'd IDX files under
// /usr/share/datasets/fashion-mnist, read with zlib. Images become floats in [0, 1], normalized
// to mean 0 and unit variance with the training set's statistics (0.2860, 0.3530).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>
#include <zlib.h>

namespace gradcomp::examples {

inline constexpr const char* default_fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

struct image_set {
  std::size_t count = 0, pixels = 0; ///< pixels per image (784)
  std::vector<float> images;         ///< count * pixels
  std::vector<std::uint8_t> labels;  ///< count, in [0, 10)
};

namespace detail {

inline std::vector<unsigned char> read_gz(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error(path + " not found: install Debian's dataset-fashion-mnist "
                                    "(apt-get install dataset-fashion-mnist) or pass --data DIR");
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    throw std::runtime_error("cannot open " + path);
  }
  std::vector<unsigned char> out;
  unsigned char buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) {
    out.insert(out.end(), buf, buf + n);
  }
  gzclose(f);
  if (n < 0) {
    throw std::runtime_error(path + " is not a readable gzip file");
  }
  return out;
}

inline std::uint32_t be32(const std::vector<unsigned char>& b, std::size_t at) {
  if (at + 4 > b.size()) {
    throw std::runtime_error("IDX file truncated in its header");
  }
  return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 |
         std::uint32_t{b[at + 2]} << 8 | std::uint32_t{b[at + 3]};
}

} // namespace detail

/// Reads "<dir>/<prefix>-images-idx3-ubyte.gz" and the matching labels (prefix "train" or
/// "t10k"); at most `limit` examples (0 = all). Throws std::runtime_error naming what is wrong.
inline image_set load_fashion_mnist(const std::string& dir, const std::string& prefix,
                                    std::size_t limit = 0) {
  const auto img = detail::read_gz(dir + "/" + prefix + "-images-idx3-ubyte.gz");
  const auto lab = detail::read_gz(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (detail::be32(img, 0) != 0x803 || detail::be32(lab, 0) != 0x801) {
    throw std::runtime_error(dir + "/" + prefix + ": not IDX image/label files");
  }
  image_set s;
  s.count = detail::be32(img, 4);
  s.pixels = std::size_t{detail::be32(img, 8)} * detail::be32(img, 12);
  if (detail::be32(lab, 4) != s.count || img.size() != 16 + s.count * s.pixels ||
      lab.size() != 8 + s.count) {
    throw std::runtime_error(dir + "/" + prefix + ": image and label counts or sizes disagree");
  }
  if (limit != 0 && limit < s.count) {
    s.count = limit;
  }
  s.images.resize(s.count * s.pixels);
  s.labels.assign(lab.begin() + 8, lab.begin() + 8 + static_cast<std::ptrdiff_t>(s.count));
  for (std::size_t i = 0; i < s.images.size(); ++i) {
    s.images[i] = (static_cast<float>(img[16 + i]) / 255.0f - 0.2860f) / 0.3530f;
  }
  for (const auto l : s.labels) {
    if (l >= 10) {
      throw std::runtime_error(dir + "/" + prefix + ": label outside [0, 10)");
    }
  }
  return s;
}

} // namespace gradcomp::examples
