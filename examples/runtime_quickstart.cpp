// SPDX-License-Identifier: Apache-2.0
#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/any_codec.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

int run(const std::string& spec) {
  using namespace gradcomp;
  const model_layout layout = model_layout::from_sizes({4096, 64, 1000}, {"conv", "bias", "fc"});
  // any registered scheme, by name, at run time: compressor[:args] / granularity / encoding / rules
  any_codec c(spec, layout);
  std::vector<float> grad(layout.total_size(), 0.5f);
  grad[7] = -3.0f;
  std::vector<std::byte> msg(c.max_encoded_bytes());
  const std::size_t bytes = c.encode(cpu, std::span<const float>(grad), std::span<std::byte>(msg),
                                     stream_key{.seed = 42, .step = 0});
  std::vector<float> received(grad.size());
  c.decode(cpu, std::span<const std::byte>(msg.data(), bytes), std::span<float>(received));
  std::printf("%s (%s): %zu floats -> %zu bytes; received[7] = %g\n", spec.c_str(),
              c.scheme_name().c_str(), grad.size(), bytes, received[7]);
  // the framework takes it too: worker<runtime_scheme, runtime_scheme>, master<...>, clusters
  worker<runtime_scheme, runtime_scheme> w({spec}, {"identity"}, layout, 0, {42, true});
  return received[7] != 0.0f && w.layout().total_size() == grad.size() ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  // e.g. topk:0.01/layer/coo-f16, qsgd:15/bucket:128, terngrad:clip=2.5/layer/identity_below=64
  const std::string spec =
      argc > 1 ? argv[1] : "compose(topk:0.01,qsgd:15)/layer/identity_below=100";
  try {
    return run(spec);
  } catch (const gradcomp::error& e) { // a bad spec names what is wrong and the valid choices
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
