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
//   sharded exchange, rank s       sum over t != s of m_t + (n-1) b_s   (m_t: its message for
//                                  shard t, b_s: shard s's broadcast; as much comes in)
//   summable all-reduce            2 (n-1)/n * 8w + envelopes and scales (w: level_sums words
//                                  for n ranks, about d / floor(64 / bit_width(2 L n)))
// The allgather stops paying where (n-1) m > 2 (n-1)/n 4d, i.e. n > 8d / m.
//
// With --time, it also measures each operator's encode and decode rates on ResNet-50 (one
// thread) and prints a step-time model per mode (see step_time below) and a CSV of the winners
// for scripts/scaling_plot.py.

#include <gradcomp/comm/exchange_envelope.hpp>
#include <gradcomp/gradcomp.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
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

const std::vector<int> rank_counts{8, 64, 256, 1024};

struct op_size {
  std::string name;
  double layer = 0, flat = 0;  ///< message bytes, layer-wise and entire-model
  std::vector<double> sharded; ///< per rank_counts: the busiest rank's bytes out (as many in)
  std::vector<double> summed;  ///< per rank_counts: summable all-reduce bytes out (empty: none)
};

/// The bytes the busiest rank sends in the sharded exchange with n ranks (Q_M = Q_W, layer-wise
/// shards), envelopes and size words included.
template <class C>
double sharded_bytes(const C& comp, const model_layout& layout, int n) {
  const auto shards = shard_model(layout, static_cast<std::size_t>(n), 0);
  std::vector<double> m;
  double total = 0;
  for (const model_shard& sh : shards) {
    m.push_back(static_cast<double>(
        codec<scheme<C, layer_span>>(scheme<C, layer_span>{comp}, sh.layout).max_encoded_bytes()));
    total += m.back();
  }
  double worst = 0;
  for (const double ms : m) {
    worst = std::max(worst, total - ms + (n - 1) * ms);
  }
  return worst + (n - 1) * (2.0 * envelope_bytes + 16);
}

/// The bytes one rank sends in summable all-reduce mode with n ranks (layer-wise; 0 when the
/// codes do not add): its level words through a bandwidth-optimal all-reduce, 2 (n-1)/n of them,
/// plus the envelopes and the shared scales it sends to every peer. It receives as much.
template <class C>
double summable_bytes(const C& comp, const model_layout& layout, int n) {
  const codec<scheme<C, layer_span>> c(scheme<C, layer_span>{comp}, layout);
  const detail::level_plan plan = c.level_spans();
  if (!plan.summable()) {
    return 0;
  }
  const level_sums sums(plan, static_cast<std::size_t>(n));
  const double words = 8.0 * static_cast<double>(sums.words());
  const double scales = 4.0 * static_cast<double>(sums.num_scales() + 1);
  return 2.0 * (n - 1) / n * words + (n - 1) * (envelope_bytes + (sums.scaled() ? scales : 0));
}

template <class C>
op_size sizes_of(const std::string& name, const C& comp, const model_layout& layout) {
  const codec<scheme<C, layer_span>> lw(scheme<C, layer_span>{comp}, layout);
  const codec<scheme<C, flat_span>> em(scheme<C, flat_span>{comp}, layout);
  op_size o{name,
            static_cast<double>(lw.max_encoded_bytes()),
            static_cast<double>(em.max_encoded_bytes()),
            {},
            {}};
  for (const int n : rank_counts) {
    o.sharded.push_back(sharded_bytes(comp, layout, n));
    if (const double b = summable_bytes(comp, layout, n); b > 0) {
      o.summed.push_back(b);
    }
  }
  return o;
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
              "the size m too; the root receives (n-1) m and sends (n-1) m (flat broadcast). "
              "Sharded: the busiest rank, from the exact message sizes of each shard's codec, "
              "envelopes included; it receives as much:\n\n");
  const std::vector<int>& ranks = rank_counts;
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
    std::printf("\n| %s | sharded |", o.name.c_str());
    for (const double b : o.sharded) {
      std::printf(" %s |", human(b).c_str());
    }
    if (!o.summed.empty()) {
      std::printf("\n| %s | summable all-reduce |", o.name.c_str());
      for (const double b : o.summed) {
        std::printf(" %s |", human(b).c_str());
      }
    }
    std::printf("\n");
  }
  std::printf("\n");
}

// ---- step-time model (--time) ----------------------------------------------------------------

/// Encode and decode rates of a layer-wise operator, elements per second, one thread, best of 3.
struct rates {
  double encode = 0, decode = 0;
};

template <class C>
rates measure(const C& comp, const model_layout& layout) {
  using S = scheme<C, layer_span>;
  codec<S> c(S{comp}, layout);
  const std::size_t d = layout.total_size();
  std::vector<float> g(d), out(d);
  std::mt19937_64 rng(3);
  std::normal_distribution<float> nd(0.0f, 1e-3f);
  for (float& x : g) {
    x = nd(rng);
  }
  std::vector<std::byte> msg(c.max_encoded_bytes());
  auto best = [](auto&& f) {
    double t = 1e30;
    for (int i = 0; i < 3; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      t = std::min(t, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return t;
  };
  std::size_t bytes = 0;
  const double te = best([&] {
    bytes = c.encode(cpu, std::span<const float>(g), std::span<std::byte>(msg), {1, 0, 0});
  });
  const double td = best(
      [&] { c.decode(cpu, std::span<const std::byte>(msg.data(), bytes), std::span<float>(out)); });
  return {static_cast<double>(d) / te, static_cast<double>(d) / td};
}

/// Modeled seconds of one step with n ranks at `bw` bytes/s per direction: bandwidth, latency
/// (alpha per round of exchanges, beta per point-to-point message posted) and the busiest rank's
/// encode and decode work at the measured rates. The dense ring's summation is left out (it runs
/// at memory speed), which favours the baseline.
struct step_model {
  double d, m, sharded, summed, bw; ///< summed: 0 when the codes do not add
  int n;
  rates r;
  double compute = 1; ///< 0: communication only (codec work overlapped or on a fast device)
  static constexpr double alpha = 5e-6, beta = 0.5e-6;

  [[nodiscard]] double latency(double rounds, double messages) const {
    return rounds * alpha + messages * beta;
  }
  [[nodiscard]] double dense_ring() const {
    return 2.0 * (n - 1) / n * 4 * d / bw + latency(2.0 * (n - 1), 2.0 * (n - 1));
  }
  [[nodiscard]] double all_reduce() const { // allgather; every rank decodes n messages, runs Q_M
    return (n - 1) * (m + envelope_bytes) / bw + latency(2, 4.0 * (n - 1)) +
           compute * (2 * d / r.encode + (n + 1) * d / r.decode);
  }
  [[nodiscard]] double parameter_server() const { // the root's link, in then out
    return 2 * (n - 1) * (m + envelope_bytes) / bw + latency(4, 4.0 * (n - 1)) + 2 * d / r.encode +
           (n + 1) * d / r.decode;
  }
  [[nodiscard]] double sharded_exchange() const { // all-to-all, then allgather of broadcasts
    return sharded / bw + latency(6, 12.0 * (n - 1)) +
           compute * ((d + d / n) / r.encode + 2 * d / r.decode);
  }
  [[nodiscard]] double summable_all_reduce() const { // scales, envelopes, a ring of level words
    return summed / bw + latency(2.0 * (n - 1) + 4, 2.0 * (n - 1) + 8.0 * (n - 1)) +
           compute * (2 * d / r.encode + 2 * d / r.decode);
  }
};

template <class C>
void time_rows(const char* model, const char* name, const C& comp, const model_layout& layout,
               const rates& r, double compute, std::FILE* csv) {
  const std::vector<double> gbps{10, 25, 100, 400};
  const double d = static_cast<double>(layout.total_size());
  const double m = static_cast<double>(
      codec<scheme<C, layer_span>>(scheme<C, layer_span>{comp}, layout).max_encoded_bytes());
  std::vector<double> sharded, summed;
  for (int n = 8; n <= 1024; n *= 2) {
    sharded.push_back(sharded_bytes(comp, layout, n));
    summed.push_back(summable_bytes(comp, layout, n));
  }
  for (const double g : gbps) {
    std::printf("| %s | %.0f |", name, g);
    int i = 0;
    for (int n = 8; n <= 1024; n *= 2, ++i) {
      const step_model sm{d, m, sharded[i], summed[i], g * 1e9 / 8, n, r, compute};
      const std::pair<const char*, double> modes[] = {
          {"dense ring", sm.dense_ring()},
          {"all-reduce", sm.all_reduce()},
          {"param. server", sm.parameter_server()},
          {"sharded", sm.sharded_exchange()},
          {"summable all-reduce", summed[i] > 0 ? sm.summable_all_reduce() : 1e30}};
      const auto* win = &modes[0];
      for (const auto& md : modes) {
        if (md.second >= 1e30) {
          continue; // not available to this operator
        }
        win = md.second < win->second ? &md : win;
        std::fprintf(csv, "%s,%s,%s,%.0f,%d,%s,%.6f\n", model, compute > 0 ? "measured" : "none",
                     name, g, n, md.first, md.second);
      }
      if (n == 8 || n == 64 || n == 256 || n == 1024) {
        std::printf(" %s %.0f ms (ring %.0f) |", win->first, 1e3 * win->second,
                    1e3 * sm.dense_ring());
      }
    }
    std::printf("\n");
  }
}

template <class Ops>
void time_model(const char* title, const model_layout& layout, const Ops& ops, std::FILE* csv) {
  for (const double compute : {1.0, 0.0}) {
    std::printf("### %s, %s\n\n| operator | Gb/s | n=8 | n=64 | n=256 | n=1024 |\n"
                "|---|---|---|---|---|---|\n",
                title,
                compute > 0 ? "codec work at the measured CPU rates"
                            : "communication only (codec work left out)");
    std::apply(
        [&](const auto&... op) {
          (time_rows(title, op.name, op.comp, layout, op.r, compute, csv), ...);
        },
        ops);
    std::printf("\n");
  }
}

template <class C>
struct timed_op {
  const char* name;
  C comp;
  rates r;
};

void step_times(const char* csv_path) {
  const model_layout r50 = models::resnet50_imagenet();
  auto op = [&](const char* name, auto comp) {
    return timed_op<decltype(comp)>{name, comp, measure(comp, r50)};
  };
  const auto ops = std::make_tuple(op("fp32 through the codec", identity{}),
                                   op("stochastic rounding bf16", stochastic_rounding<bfloat16>{}),
                                   op("QSGD s=15", qsgd{15}), op("TernGrad", terngrad{}),
                                   op("top-k 1%", topk{0.01}));
  std::printf("## Step time, modeled\n\nMeasured rates on this machine (ResNet-50, layer-wise, "
              "one thread), in million elements per second:\n\n| operator | encode | decode |\n"
              "|---|---|---|\n");
  std::apply(
      [](const auto&... o) {
        (std::printf("| %s | %.0f | %.0f |\n", o.name, o.r.encode / 1e6, o.r.decode / 1e6), ...);
      },
      ops);
  std::printf("\nThe fastest mode per cell and its modeled step time (the dense ring's in "
              "brackets); Q_M = Q_W; alpha = %.0f us per round of exchanges, beta = %.1f us per "
              "message posted:\n\n",
              step_model::alpha * 1e6, step_model::beta * 1e6);
  std::FILE* csv = std::fopen(csv_path, "w");
  if (csv == nullptr) {
    std::fprintf(stderr, "cannot write %s\n", csv_path);
    return;
  }
  std::fprintf(csv, "model,compute,operator,gbps,ranks,mode,seconds\n");
  time_model("ResNet-50", r50, ops, csv);
  time_model("Transformer 1.1B", transformer_1b(), ops, csv);
  std::fclose(csv);
}

} // namespace

int main(int argc, char** argv) {
  report("ResNet-50 (ImageNet)", models::resnet50_imagenet());
  report("Transformer, 1.1B parameters (GPT-like, width 2048, 20 blocks)", transformer_1b());
  if (argc > 2 && std::strcmp(argv[1], "--time") == 0) {
    step_times(argv[2]);
  }
}
