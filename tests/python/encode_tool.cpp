// SPDX-License-Identifier: Apache-2.0
// The C++ side of the Python tests: encodes a float32 gradient file with a spec's any_codec and
// writes the message, so the tests can compare the Python package's bytes with the library's.
//   encode_tool SPEC SIZES(comma-separated) SEED STEP RANK IN.f32 OUT.bin
#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/any_codec.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  using namespace gradcomp;
  if (argc != 8) {
    std::fprintf(stderr, "usage: encode_tool SPEC SIZES SEED STEP RANK IN.f32 OUT.bin\n");
    return 2;
  }
  try {
    std::vector<std::size_t> sizes;
    std::stringstream list(argv[2]);
    for (std::string item; std::getline(list, item, ',');) {
      sizes.push_back(std::stoull(item));
    }
    any_codec c(argv[1], model_layout::from_sizes(std::span<const std::size_t>(sizes)));
    std::ifstream in(argv[6], std::ios::binary);
    const std::vector<char> raw((std::istreambuf_iterator<char>(in)), {});
    std::vector<float> grad(raw.size() / sizeof(float));
    std::memcpy(grad.data(), raw.data(), grad.size() * sizeof(float));
    std::vector<std::byte> msg(c.max_encoded_bytes());
    const stream_key key{std::stoull(argv[3]), std::stoull(argv[4]),
                         static_cast<std::uint32_t>(std::stoul(argv[5]))};
    msg.resize(c.encode(cpu, std::span<const float>(grad), std::span<std::byte>(msg), key));
    std::ofstream(argv[7], std::ios::binary)
        .write(reinterpret_cast<const char*>(msg.data()), static_cast<std::streamsize>(msg.size()));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "encode_tool: %s\n", e.what());
    return 1;
  }
}
