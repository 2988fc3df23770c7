// SPDX-License-Identifier: Apache-2.0
// PowerSGD (lowrank/powersgd.hpp): the matrix plan's rule; exact recovery of a rank-r matrix; one
// iteration from a known Q equals the closed-form projection computed in double; error feedback
// conserves the sum of the inputs; sums and results do not depend on message order; a restored
// checkpoint continues bit for bit; every hostile message and out-of-order call is refused by
// name and changes nothing.

#include <gradcomp/gradcomp.hpp>
#include <gradcomp/layout/models.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace gradcomp;

namespace {

using bytes = std::vector<std::byte>;

std::vector<float> normal(std::size_t n, std::uint64_t seed, float sigma = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) {
    x = d(rng);
  }
  return v;
}

/// A rows x cols matrix of rank r (row-major): A B^T with normal A, B.
std::vector<float> rank_r_matrix(std::size_t rows, std::size_t cols, std::size_t r,
                                 std::uint64_t seed) {
  const auto a = normal(rows * r, seed);
  const auto b = normal(cols * r, seed + 1);
  std::vector<float> m(rows * cols);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t k = 0; k < cols; ++k) {
      double s = 0;
      for (std::size_t j = 0; j < r; ++j) {
        s += static_cast<double>(a[i * r + j]) * b[k * r + j];
      }
      m[i * cols + k] = static_cast<float>(s);
    }
  }
  return m;
}

/// One step of n workers exchanging in process; returns each worker's output.
std::vector<std::vector<float>> run_step(std::vector<powersgd>& ws,
                                         const std::vector<std::vector<float>>& grads) {
  const std::size_t n = ws.size();
  std::vector<bytes> msgs(n);
  std::vector<std::span<const std::byte>> views(n);
  bytes sum;
  for (std::size_t w = 0; w < n; ++w) {
    ws[w].encode_p(grads[w], msgs[w]);
    views[w] = msgs[w];
  }
  ws[0].sum(lowrank_round::p, views, sum);
  for (std::size_t w = 0; w < n; ++w) {
    ws[w].encode_q(sum, msgs[w]);
    views[w] = msgs[w];
  }
  ws[0].sum(lowrank_round::q, views, sum);
  std::vector<std::vector<float>> outs(n, std::vector<float>(grads[0].size()));
  for (std::size_t w = 0; w < n; ++w) {
    ws[w].decode(sum, outs[w]);
  }
  return outs;
}

std::vector<powersgd> workers(const model_layout& l, const powersgd_options& o, std::size_t n) {
  std::vector<powersgd> ws;
  for (std::size_t w = 0; w < n; ++w) {
    ws.emplace_back(l, o, static_cast<std::uint32_t>(w));
  }
  return ws;
}

double rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0;
  double den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

/// The error code a call throws (nullopt: it returned), and its text in `what`.
std::optional<errc> code_of(const std::function<void()>& f, std::string* what = nullptr) {
  try {
    f();
  } catch (const gradcomp::error& e) {
    if (what != nullptr) {
      *what = e.what();
    }
    return e.code();
  }
  return std::nullopt;
}

model_layout one_matrix(std::size_t rows, std::size_t cols) {
  return model_layout::from_layers({{"w", 0, rows * cols, rows}});
}

} // namespace

TEST_CASE("powersgd plan: which matrices are compressed, at which rank") {
  SECTION("PyTorch's rule: rate * r' (rows + cols) < rows * cols") {
    const auto l = model_layout::from_layers(
        {{"a", 0, 100, 10}, {"b", 100, 100, 0}, {"c", 200, 8, 1}, {"d", 208, 6, 3}});
    const lowrank_plan p2(l, {.rank = 2});
    REQUIRE(p2.matrices()[0].rank == 2); // 2 * 2 * 20 = 80 < 100
    REQUIRE(p2.matrices()[1].rank == 0); // unknown shape
    REQUIRE(p2.matrices()[2].rank == 0); // one row: a vector
    REQUIRE(p2.matrices()[3].rank == 0); // 3 x 2 is too small
    const lowrank_plan p3(l, {.rank = 3});
    REQUIRE(p3.matrices()[0].rank == 0); // 2 * 3 * 20 = 120 > 100
    REQUIRE(p2.p_floats() == 10 * 2 + 100 + 8 + 6);
    REQUIRE(p2.q_floats() == 10 * 2);
  }
  SECTION("ResNet-50: convolutions and fc compressed, batch norm raw") {
    const auto l = models::resnet50_imagenet();
    const lowrank_plan p(l, {.rank = 4});
    std::size_t compressed = 0;
    for (const auto& m : p.matrices()) {
      const bool bn = m.name.find("bn") != std::string::npos ||
                      m.name.find("downsample.1") != std::string::npos || m.name == "fc.bias";
      REQUIRE(m.compressed() == !bn);
      compressed += m.compressed() ? 1 : 0;
    }
    REQUIRE(compressed == 54); // 53 convolutions and fc
    REQUIRE(p.matrices()[0].rows == 64);
    REQUIRE(p.matrices()[0].cols == 3 * 7 * 7);
  }
  SECTION("entire model: ceil(sqrt(d)) rows, the last row short") {
    const auto l = model_layout::from_sizes({1000, 17, 30});
    const lowrank_plan p(l, {.rank = 1, .entire_model = true});
    REQUIRE(p.matrices().size() == 1);
    REQUIRE(p.matrices()[0].rows == 33); // 32^2 = 1024 < 1047 <= 33^2
    REQUIRE(p.matrices()[0].cols == 32);
    REQUIRE(p.matrices()[0].rank == 1);
    REQUIRE(p.granularity() == granularity_id::flat);
  }
  SECTION("bad parameters are named") {
    const auto l = one_matrix(4, 4);
    REQUIRE(code_of([&] { lowrank_plan(l, {.rank = 0}); }) == errc::invalid_parameter);
    REQUIRE(code_of([&] { lowrank_plan(l, {.rank = 9}); }) == errc::invalid_parameter);
    REQUIRE(code_of([&] { lowrank_plan(l, {.min_compression_rate = NAN}); }) ==
            errc::invalid_parameter);
    REQUIRE(code_of([] { model_layout::from_layers({{"w", 0, 10, 3}}); }) == errc::invalid_layout);
  }
}

TEST_CASE("low-rank kernels sum in their documented order, bit for bit") {
  // plain scalar references of backend/cpu/lowrank_kernels.hpp's orders, on shapes with short
  // rows, lane tails and a partly stored last row
  using namespace gradcomp::backend::cpu;
  constexpr std::size_t R = 3;
  for (const auto [rows, cols, size] : {std::array<std::size_t, 3>{7, 37, 7 * 37},
                                        {9, 100, 8 * 100 + 41},
                                        {5, 64, 5 * 64},
                                        {6, 3, 16}}) {
    INFO(rows << " x " << cols << ", " << size << " stored");
    const auto m = normal(size, rows + cols);
    const auto qt = normal(R * cols, 3);
    const auto p = normal(rows * R, 4);
    std::vector<float> got_p(rows * R);
    lowrank_multiply<R>(m.data(), rows, cols, size, qt.data(), got_p.data());
    std::vector<float> got_q(R * cols);
    lowrank_multiply_transposed<R>(m.data(), rows, cols, size, p.data(), got_q.data());
    std::vector<float> got_out(size);
    std::vector<float> got_res(size);
    lowrank_reconstruct<R>(p.data(), qt.data(), rows, cols, size, got_out.data());
    lowrank_reconstruct<R>(p.data(), qt.data(), rows, cols, size, got_res.data(), m.data());
    std::vector<float> want_q(R * cols, 0.0f);
    for (std::size_t i = 0; i < rows; ++i) {
      const std::size_t n = i * cols >= size ? 0 : std::min(cols, size - i * cols);
      for (std::size_t j = 0; j < R; ++j) {
        float lane[32] = {};
        for (std::size_t k = 0; k < n; ++k) {
          lane[k % 32] += m[i * cols + k] * qt[j * cols + k];
        }
        for (std::size_t w = 16; w > 0; w /= 2) {
          for (std::size_t l = 0; l < w; ++l) {
            lane[l] = lane[2 * l] + lane[2 * l + 1];
          }
        }
        REQUIRE(got_p[i * R + j] == lane[0]);
        for (std::size_t k = 0; k < n; ++k) {
          want_q[j * cols + k] += m[i * cols + k] * p[i * R + j];
        }
      }
      for (std::size_t k = 0; k < n; ++k) {
        float v = 0.0f;
        for (std::size_t j = 0; j < R; ++j) {
          v += p[i * R + j] * qt[j * cols + k];
        }
        REQUIRE(got_out[i * cols + k] == v);
        REQUIRE(got_res[i * cols + k] == m[i * cols + k] - v);
      }
    }
    REQUIRE(got_q == want_q);
  }
}

TEST_CASE("powersgd recovers a rank-r matrix exactly and projects like the closed form") {
  const std::size_t rows = 96;
  const std::size_t cols = 70;
  for (std::size_t r : {1, 3, 8}) {
    const auto l = one_matrix(rows, cols);
    const auto m = rank_r_matrix(rows, cols, r, 7 + r);
    SECTION("rank " + std::to_string(r) + ": one worker, one step") {
      auto ws = workers(l, {.rank = r, .min_compression_rate = 1}, 1);
      const auto out = run_step(ws, {m})[0];
      std::vector<double> want(m.begin(), m.end());
      REQUIRE(rel_error(out, want) < 1e-5);
      double e = 0;
      for (const float v : ws[0].residual()) {
        e = std::max(e, std::abs(static_cast<double>(v)));
      }
      REQUIRE(e < 1e-4);
    }
  }
  SECTION("a full-rank matrix: P^ P^T M for P^ = orth(M Q0), computed in double") {
    const std::size_t r = 4;
    const auto l = one_matrix(rows, cols);
    const auto m = normal(rows * cols, 3);
    auto ws = workers(l, {.rank = r, .seed = 11}, 3);
    const std::vector<float> q0(ws[0].warm_start().begin(), ws[0].warm_start().end());
    // three workers whose inputs average to m
    std::vector<std::vector<float>> g(3, m);
    for (std::size_t i = 0; i < m.size(); ++i) {
      g[0][i] = m[i] + 0.5f;
      g[1][i] = m[i] - 0.25f;
      g[2][i] = m[i] - 0.25f;
    }
    const auto outs = run_step(ws, g);
    // reference: P = M Q0, Gram-Schmidt, out = P^ (P^T M)
    std::vector<double> p(rows * r, 0.0);
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t j = 0; j < r; ++j) {
        for (std::size_t k = 0; k < cols; ++k) {
          p[i * r + j] += static_cast<double>(m[i * cols + k]) * q0[j * cols + k];
        }
      }
    }
    for (std::size_t j = 0; j < r; ++j) {
      for (std::size_t l2 = 0; l2 < j; ++l2) {
        double d = 0;
        for (std::size_t i = 0; i < rows; ++i) {
          d += p[i * r + j] * p[i * r + l2];
        }
        for (std::size_t i = 0; i < rows; ++i) {
          p[i * r + j] -= d * p[i * r + l2];
        }
      }
      double nrm = 0;
      for (std::size_t i = 0; i < rows; ++i) {
        nrm += p[i * r + j] * p[i * r + j];
      }
      for (std::size_t i = 0; i < rows; ++i) {
        p[i * r + j] /= std::sqrt(nrm);
      }
    }
    std::vector<double> want(rows * cols, 0.0);
    for (std::size_t k = 0; k < cols; ++k) {
      for (std::size_t j = 0; j < r; ++j) {
        double c = 0; // (P^T M)[j][k]
        for (std::size_t i = 0; i < rows; ++i) {
          c += p[i * r + j] * m[i * cols + k];
        }
        for (std::size_t i = 0; i < rows; ++i) {
          want[i * cols + k] += p[i * r + j] * c;
        }
      }
    }
    for (const auto& out : outs) {
      REQUIRE(out == outs[0]);
      REQUIRE(rel_error(out, want) < 1e-4);
    }
    // and it is a real approximation: much of M is left out at rank 4
    std::vector<double> md(m.begin(), m.end());
    REQUIRE(rel_error(outs[0], md) > 0.5);
  }
}

TEST_CASE("powersgd error feedback conserves the inputs; warm start improves the estimate") {
  const auto l = model_layout::from_layers(
      {{"conv", 0, 64 * 27, 64}, {"bias", 64 * 27, 64, 0}, {"fc", 64 * 27 + 64, 10 * 64, 10}});
  for (bool entire : {false, true}) {
    SECTION(entire ? "entire model" : "layer-wise") {
      const std::size_t n = 4;
      auto ws = workers(l, {.rank = 2, .entire_model = entire, .seed = 5}, n);
      std::vector<double> inputs(l.total_size(), 0.0);
      std::vector<double> sent(l.total_size(), 0.0);
      for (std::uint64_t t = 0; t < 6; ++t) {
        std::vector<std::vector<float>> g;
        for (std::size_t w = 0; w < n; ++w) {
          g.push_back(normal(l.total_size(), 100 * t + w, 0.01f));
          for (std::size_t i = 0; i < g[w].size(); ++i) {
            inputs[i] += g[w][i];
          }
        }
        const auto outs = run_step(ws, g);
        for (std::size_t i = 0; i < outs[0].size(); ++i) {
          sent[i] += static_cast<double>(n) * outs[0][i];
        }
        REQUIRE(ws[0].step() == t + 1);
      }
      double worst = 0;
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        double left = 0;
        for (const auto& w : ws) {
          left += w.residual()[i];
        }
        worst = std::max(worst, std::abs(sent[i] + left - inputs[i]));
      }
      REQUIRE(worst < 1e-5);
      if (!entire) { // the bias layer is sent raw: nothing of it is left
        for (std::size_t i = 64 * 27; i < 64 * 27 + 64; ++i) {
          REQUIRE(ws[1].residual()[i] == 0.0f);
        }
      }
    }
  }
  SECTION("a fixed low-rank gradient: the warm start converges to it") {
    const auto l1 = one_matrix(80, 60);
    const auto m = normal(80 * 60, 9); // full rank; the top-2 subspace is what PowerSGD finds
    powersgd_options o{.rank = 2, .error_feedback = false};
    auto ws = workers(l1, o, 1);
    const double first = rel_error(run_step(ws, {m})[0], {m.begin(), m.end()});
    double last = first;
    for (int t = 0; t < 30; ++t) {
      last = rel_error(run_step(ws, {m})[0], {m.begin(), m.end()});
    }
    REQUIRE(last < first);
  }
}

TEST_CASE("powersgd is deterministic: message order, runs and checkpoints") {
  const auto l = models::resnet9_cifar10();
  const std::size_t n = 3;
  const powersgd_options o{.rank = 2, .seed = 21};
  std::vector<std::vector<float>> g;
  for (std::size_t w = 0; w < n; ++w) {
    g.push_back(normal(l.total_size(), 50 + w, 0.01f));
  }
  SECTION("sums in any order are the same bytes") {
    auto ws = workers(l, o, n);
    std::vector<bytes> m(n);
    for (std::size_t w = 0; w < n; ++w) {
      ws[w].encode_p(g[w], m[w]);
    }
    bytes a;
    bytes b;
    const std::vector<std::span<const std::byte>> fwd{m[0], m[1], m[2]};
    const std::vector<std::span<const std::byte>> rev{m[2], m[0], m[1]};
    ws[1].sum(lowrank_round::p, fwd, a);
    ws[2].sum(lowrank_round::p, rev, b);
    REQUIRE(a == b);
    REQUIRE(inspect_message(a).compressor == compressor_id::powersgd);
  }
  SECTION("a restored checkpoint continues bit for bit") {
    auto ws = workers(l, o, n);
    for (int t = 0; t < 2; ++t) {
      run_step(ws, g);
    }
    auto copies = workers(l, o, n);
    for (std::size_t w = 0; w < n; ++w) {
      const std::vector<float> q(ws[w].warm_start().begin(), ws[w].warm_start().end());
      const std::vector<float> e(ws[w].residual().begin(), ws[w].residual().end());
      copies[w].restore(ws[w].step(), q, e);
    }
    REQUIRE(run_step(ws, g) == run_step(copies, g));
    REQUIRE(code_of([&] { copies[0].restore(0, {}, {}); }) == errc::size_mismatch);
  }
}

TEST_CASE("powersgd writes the same bytes with any thread count") {
  // a matrix, a raw vector and a matrix with a partly used last block, each large enough to split
  const auto l = model_layout::from_layers(
      {{"w", 0, 300 * 500, 300}, {"b", 150000, 100000, 0}, {"fc", 250000, 97 * 1031, 97}});
  for (const bool entire : {false, true}) {
    INFO((entire ? "entire model" : "layer-wise"));
    const powersgd_options o{.rank = 3, .entire_model = entire, .seed = 8};
    // two workers, two steps; every message, output and residual of each thread count
    auto run = [&](const cpu_policy& exec) {
      std::vector<bytes> trace;
      auto ws = workers(l, o, 2);
      for (std::uint64_t t = 0; t < 2; ++t) {
        std::vector<bytes> m(2);
        bytes sum;
        for (std::size_t w = 0; w < 2; ++w) {
          ws[w].encode_p(exec, normal(l.total_size(), 10 * t + w, 0.01f), m[w]);
        }
        ws[0].sum(lowrank_round::p, std::vector<std::span<const std::byte>>{m[0], m[1]}, sum);
        const bytes p_sum = sum;
        for (std::size_t w = 0; w < 2; ++w) {
          ws[w].encode_q(exec, p_sum, m[w]);
        }
        ws[0].sum(lowrank_round::q, std::vector<std::span<const std::byte>>{m[0], m[1]}, sum);
        std::vector<float> out(l.total_size());
        ws[1].decode(exec, sum, out);
        ws[0].decode(exec, sum, out);
        trace.insert(trace.end(), {m[0], m[1], p_sum, sum});
        const auto* o8 = reinterpret_cast<const std::byte*>(out.data());
        trace.emplace_back(o8, o8 + 4 * out.size());
        const auto* e8 = reinterpret_cast<const std::byte*>(ws[0].residual().data());
        trace.emplace_back(e8, e8 + 4 * ws[0].residual().size());
      }
      return trace;
    };
    const auto one = run(cpu);
    const bool two_threads_same = run(cpu_threads(2)) == one; // (not the bytes in a failure)
    REQUIRE(two_threads_same);
    const bool three_threads_same = run(cpu_threads(3)) == one;
    REQUIRE(three_threads_same);
  }
}

TEST_CASE("powersgd refuses hostile messages and out-of-order calls, and changes nothing") {
  const auto l = model_layout::from_layers({{"w", 0, 32 * 24, 32}, {"b", 32 * 24, 32, 0}});
  const powersgd_options o{.rank = 2, .seed = 3};
  const auto g0 = normal(l.total_size(), 1);
  const auto g1 = normal(l.total_size(), 2);
  auto ws = workers(l, o, 2);
  bytes m0;
  bytes m1;
  bytes sum;
  std::string what;
  REQUIRE(code_of([&] { ws[0].encode_q(sum, m0); }, &what) == errc::protocol_error);
  REQUIRE_THAT(what, Catch::Contains("encode_q"));
  auto too_large = g0;
  std::fill(too_large.begin(), too_large.begin() + 32 * 24, 3e38f);
  REQUIRE(code_of([&] { ws[0].encode_p(too_large, m0); }, &what) == errc::value_out_of_range);
  REQUIRE_THAT(what, Catch::Contains("P factor of matrix 'w'"));
  auto bad = g0;
  bad[32 * 24 + 5] = INFINITY;
  REQUIRE(code_of([&] { ws[0].encode_p(bad, m0); }, &what) == errc::non_finite_input);
  REQUIRE_THAT(what, Catch::Contains("layer 'b' at element 5"));
  ws[0].encode_p(g0, m0);
  ws[1].encode_p(g1, m1);
  const std::vector<std::span<const std::byte>> both{m0, m1};
  // the sum refuses a duplicate rank and a message of another round
  REQUIRE(code_of([&] {
            ws[0].sum(lowrank_round::p, std::vector<std::span<const std::byte>>{m0, m0}, sum);
          }) == errc::duplicate_message);
  REQUIRE(code_of([&] { ws[0].sum(lowrank_round::q, both, sum); }) == errc::scheme_mismatch);
  ws[0].sum(lowrank_round::p, both, sum);

  auto resealed = [](bytes m, auto&& edit) {
    edit(m);
    gradcomp::detail::seal_message(m);
    return m;
  };
  const std::size_t payload = wire_header_bytes + 2 * wire_directory_entry_bytes;
  struct hostile {
    const char* what;
    bytes msg;
    errc code;
  };
  const std::vector<hostile> cases = {
      {"truncated", bytes(sum.begin(), sum.end() - 4), errc::checksum_mismatch},
      {"empty", bytes{}, errc::truncated_message},
      {"bit flip",
       [&] {
         bytes m = sum;
         m[payload + 9] ^= std::byte{1};
         return m;
       }(),
       errc::checksum_mismatch},
      {"NaN value",
       resealed(sum,
                [&](bytes& m) {
                  gradcomp::detail::store_le<std::uint32_t>(m.data() + payload + 8, 0x7fc00000u);
                }),
       errc::corrupt_payload},
      {"a worker's message", m0, errc::protocol_error},
      {"another step",
       resealed(sum,
                [](bytes& m) {
                  gradcomp::detail::store_le<std::uint64_t>(m.data() + 32,
                                                            std::uint64_t{7} << 24 | 2u << 4 | 8u);
                }),
       errc::wrong_step},
      {"zero contributions",
       resealed(sum,
                [](bytes& m) { gradcomp::detail::store_le<std::uint64_t>(m.data() + 32, 8u); }),
       errc::corrupt_payload},
      {"another seed",
       resealed(sum,
                [](bytes& m) { gradcomp::detail::store_le<std::uint64_t>(m.data() + 24, 4u); }),
       errc::scheme_mismatch},
      {"another plan", resealed(sum, [](bytes& m) { m[40] ^= std::byte{1}; }),
       errc::scheme_mismatch},
      {"another round", resealed(sum, [](bytes& m) { m[7] = std::byte{18}; }),
       errc::scheme_mismatch},
      {"span bytes moved",
       resealed(sum,
                [](bytes& m) {
                  const std::size_t e0 = wire_header_bytes;
                  const std::size_t e1 = wire_header_bytes + wire_directory_entry_bytes;
                  gradcomp::detail::store_le<std::uint64_t>(m.data() + e0 + 8, 32 * 2 * 4 + 4);
                  gradcomp::detail::store_le<std::uint64_t>(m.data() + e1 + 8, 32 * 4 - 4);
                }),
       errc::corrupt_payload},
  };
  for (const auto& h : cases) {
    INFO(h.what);
    REQUIRE(code_of([&] { ws[0].encode_q(h.msg, m0); }, &what) == h.code);
  }
  // nothing changed: the honest exchange gives what a fresh pair of workers gives
  ws[0].encode_q(sum, m0);
  ws[1].encode_q(sum, m1);
  REQUIRE(code_of([&] { ws[0].encode_p(g0, m0); }) == errc::protocol_error);
  bytes qsum;
  ws[0].sum(lowrank_round::q, std::vector<std::span<const std::byte>>{m0, m1}, qsum);
  std::vector<float> out(l.total_size());
  // a Q sum of one contribution where the P sum had two
  bytes lone;
  ws[0].sum(lowrank_round::q, std::vector<std::span<const std::byte>>{m0}, lone);
  REQUIRE(code_of([&] { ws[0].decode(lone, out); }) == errc::protocol_error);
  // a finite Q sum whose reconstruction would overflow fp32
  const bytes huge = resealed(qsum, [&](bytes& m) {
    gradcomp::detail::store_le<std::uint32_t>(m.data() + payload,
                                              std::bit_cast<std::uint32_t>(3e38f));
  });
  REQUIRE(code_of([&] { ws[0].decode(huge, out); }) == errc::value_out_of_range);
  REQUIRE(code_of([&] { ws[0].decode(qsum, std::span<float>(out).first(3)); }) ==
          errc::size_mismatch);
  ws[0].decode(qsum, out);
  auto fresh = workers(l, o, 2);
  REQUIRE(run_step(fresh, {g0, g1})[0] == out);
  // abort_step drops a step and keeps the residual
  const std::vector<float> e(ws[0].residual().begin(), ws[0].residual().end());
  ws[0].encode_p(g1, m0);
  ws[0].abort_step();
  REQUIRE(std::equal(e.begin(), e.end(), ws[0].residual().begin()));
  REQUIRE(ws[0].step() == 1);
}
