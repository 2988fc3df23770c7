// SPDX-License-Identifier: Apache-2.0
// Bytes on the wire per step and per rank, from the library's own size formulas
// (codec::max_encoded_bytes, exact for fixed-size encodings), for ResNet-50 and a 1.1B-parameter
// transformer, in all-reduce mode (ring allgather of the messages) and parameter-server mode,
// against a dense fp32 ring all-reduce. scripts/scaling.sh turns its output into docs/SCALING.md.
//
// Model of the collectives (bandwidth term only, bytes sent by one rank):
//   dense ring all-reduce          2 (n-1)/n * 4d
//   allgather of m-byte messages   (n-1) * m                (ring: every message passes n-1 links)
//   parameter server, worker       m_up
//   parameter server, root         (n-1) * m_down           (broadcast to the others, flat)
//   and the root receives          (n-1) * m_up
// The allgather stops paying where (n-1) m > 2 (n-1)/n 4d, i.e. n > 8d / m.

#include <gradcomp/gradcomp.hpp>

#include <cstdio>
#include <string>
#include <vector>

using namespace gradcomp;

namespace {

/// A GPT-like decoder: vocabulary 50257, width 2048, 20 blocks (about 1.1e9 parameters).
model_layout transformer_1b() {
  const std::size_t v = 50257, d = 2048, ctx = 2048, blocks = 20;
  std::vector<std::size_t> sizes{v * d, ctx * d};
  std::vector<std::string> names{"wte", "wpe"};
  for (std::size_t b = 0; b < blocks; ++b) {
    std::string p = std::to_string(b);
    p.insert(p.begin(), 'h');
    p.push_back('.');
    for (const auto& [name, size] :
         std::vector<std::pair<std::string, std::size_t>>{{"ln1.weight", d},
                                                          {"ln1.bias", d},
                                                          {"attn.qkv.weight", 3 * d * d},
                                                          {"attn.qkv.bias", 3 * d},
                                                          {"attn.proj.weight", d * d},
                                                          {"attn.proj.bias", d},
                                                          {"ln2.weight", d},
                                                          {"ln2.bias", d},
                                                          {"mlp.fc.weight", 4 * d * d},
                                                          {"mlp.fc.bias", 4 * d},
                                                          {"mlp.proj.weight", 4 * d * d},
                                                          {"mlp.proj.bias", d}}) {
      sizes.push_back(size);
      names.push_back(p); // not "h" + ... + name: g++ 12 -O3 warns falsely (-Wrestrict) there
      names.back().append(name);
    }
  }
  sizes.push_back(d);
  names.emplace_back("ln_f.weight");
  sizes.push_back(d);
  names.emplace_back("ln_f.bias");
  return model_layout::from_sizes(sizes, names);
}

struct op_size {
  std::string name;
  double layer = 0, flat = 0; ///< message bytes, layer-wise and entire-model
};

template <class C>
op_size sizes_of(const std::string& name, const C& comp, const model_layout& layout) {
  const codec<scheme<C, layer_span>> lw(scheme<C, layer_span>{comp}, layout);
  const codec<scheme<C, flat_span>> em(scheme<C, flat_span>{comp}, layout);
  return {name, static_cast<double>(lw.max_encoded_bytes()),
          static_cast<double>(em.max_encoded_bytes())};
}

std::string human(double bytes) {
  const char* unit[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf,
                bytes < 10    ? "%.2f %s"
                : bytes < 100 ? "%.1f %s"
                              : "%.0f %s",
                bytes, unit[u]);
  return buf;
}

void report(const char* title, const model_layout& layout) {
  const double d = static_cast<double>(layout.total_size());
  std::vector<op_size> ops{
      sizes_of("identity (fp32)", identity{}, layout),
      sizes_of("stochastic rounding bf16", stochastic_rounding<bfloat16>{}, layout),
      sizes_of("natural compression", natural{}, layout),
      sizes_of("QSGD s=255", qsgd{255}, layout),
      sizes_of("QSGD s=15", qsgd{15}, layout),
      sizes_of("TernGrad", terngrad{}, layout),
      sizes_of("scaled sign", sign_sgd{}, layout),
      sizes_of("top-k 10%", topk{0.1}, layout),
      sizes_of("top-k 1%", topk{0.01}, layout),
      sizes_of("top-k 0.1%", topk{0.001}, layout),
      sizes_of("random-k 1%", random_k{0.01}, layout),
      sizes_of("random-k 1% shared seed", random_k{0.01, false, true}, layout),
  };
  std::printf("## %s: d = %.0f parameters in %zu tensors (%s fp32)\n\n", title, d,
              layout.num_layers(), human(4 * d).c_str());
  std::printf("Message size m (header and span directory included), layer-wise and entire-model, "
              "and the rank count above which an allgather of such messages sends more than a "
              "dense fp32 ring all-reduce (n > 8d/m):\n\n");
  std::printf("| operator | m layer-wise | m entire-model | bits/elem | allgather beats dense "
              "ring while n < |\n|---|---|---|---|---|\n");
  for (const auto& o : ops) {
    const double cross = 8 * d / o.layer;
    std::printf("| %s | %s | %s | %.3f | %s |\n", o.name.c_str(), human(o.layer).c_str(),
                human(o.flat).c_str(), 8 * o.layer / d,
                cross < 2 ? "never" : std::to_string(static_cast<long>(cross)).c_str());
  }
  std::printf("\nBytes sent per step by one rank, layer-wise messages. Parameter server: Q_M is "
              "the same operator as Q_W (the paper's bidirectional setting), so the broadcast has "
              "the size m too; the root receives (n-1) m and sends (n-1) m (flat broadcast):\n\n");
  const std::vector<int> ranks{8, 64, 256, 1024};
  std::printf("| operator | mode |");
  for (const int n : ranks) {
    std::printf(" n=%d |", n);
  }
  std::printf("\n|---|---|");
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    std::printf("---|");
  }
  std::printf("\n| dense fp32 | ring all-reduce |");
  for (const int n : ranks) {
    std::printf(" %s |", human(2.0 * (n - 1) / n * 4 * d).c_str());
  }
  std::printf("\n");
  for (const auto& o : ops) {
    if (o.name == "identity (fp32)") {
      continue;
    }
    std::printf("| %s | all-reduce (allgather) |", o.name.c_str());
    for (const int n : ranks) {
      std::printf(" %s |", human((n - 1) * o.layer).c_str());
    }
    std::printf("\n| %s | PS worker (up, down) |", o.name.c_str());
    for (std::size_t i = 0; i < ranks.size(); ++i) {
      std::printf(" %s, %s |", human(o.layer).c_str(), human(o.layer).c_str());
    }
    std::printf("\n| %s | PS root (in, out) |", o.name.c_str());
    for (const int n : ranks) {
      std::printf(" %s, %s |", human((n - 1) * o.layer).c_str(), human((n - 1) * o.layer).c_str());
    }
    std::printf("\n");
  }
  std::printf("\n");
}

} // namespace

int main() {
  report("ResNet-50 (ImageNet)", models::resnet50_imagenet());
  report("Transformer, 1.1B parameters (GPT-like, width 2048, 20 blocks)", transformer_1b());
}
