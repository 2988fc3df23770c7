// SPDX-License-Identifier: Apache-2.0
// Algorithm 1 (SPECS.md §2.5 E and F): exact aggregation of encoded messages in any arrival order,
// majority vote, shared-seed random-k, error feedback that loses nothing, DGC masking, named
// errors for every protocol mistake with nothing partially applied, and the backend-generic
// Algorithm 1 (support/algorithm1_cases.hpp, also run by the CUDA suite) against codec calls.

#include "../support/algorithm1_cases.hpp"
#include "../support/generators.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

using namespace gradcomp;

namespace {

const model_layout small_layout = model_layout::from_sizes({37, 0, 130, 5}, {"a", "e", "b", "c"});

/// Small integers times a power of two: every sum of decoded values below is exact.
std::vector<float> dyadic(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> x(n);
  for (auto& v : x)
    v = static_cast<float>(static_cast<int>(rng() % 17) - 8) * 0.25f;
  return x;
}

template <class Scheme>
std::vector<std::byte> encode_msg(codec<Scheme>& c, const std::vector<float>& g,
                                  const stream_key& key, std::span<const float> scales = {}) {
  std::vector<std::byte> out(c.template max_encoded_bytes<float>());
  const std::span<const float> x(g);
  out.resize(scales.empty() ? c.encode(cpu, x, std::span<std::byte>(out), key)
                            : c.encode(cpu, x, std::span<std::byte>(out), key, scales));
  return out;
}

template <class Scheme>
std::vector<float> decoded(codec<Scheme>& c, const std::vector<std::byte>& m) {
  std::vector<float> out(c.layout().total_size());
  c.decode(cpu, std::span<const std::byte>(m), std::span<float>(out));
  return out;
}

/// Receives the messages in a random order and checks the master's sum bitwise against the sum of
/// the individually decoded messages (exact by construction).
template <class Scheme>
void check_exact_sum(Scheme s, std::size_t n, std::uint64_t seed, bool share = false) {
  codec<Scheme> c(s, small_layout);
  std::vector<std::vector<float>> g(n);
  for (std::size_t r = 0; r < n; ++r)
    g[r] = dyadic(small_layout.total_size(), seed * 31 + r);
  std::vector<float> shared;
  if (share) {
    for (std::size_t r = 0; r < n; ++r) {
      const auto local = c.local_scales(cpu, std::span<const float>(g[r]), {seed, 3, 0});
      if (shared.empty())
        shared = local;
      for (std::size_t i = 0; i < local.size(); ++i)
        shared[i] = std::max(shared[i], local[i]);
    }
  }
  std::vector<std::vector<std::byte>> msgs(n);
  std::vector<double> want(small_layout.total_size(), 0.0);
  for (std::size_t r = 0; r < n; ++r) {
    msgs[r] = encode_msg(c, g[r], {seed, 3, static_cast<std::uint32_t>(r)}, shared);
    const auto d = decoded(c, msgs[r]);
    for (std::size_t i = 0; i < d.size(); ++i)
      want[i] += d[i];
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 3; ++trial) {
    std::shuffle(order.begin(), order.end(), rng);
    master m(s, scheme<identity, flat_span>{}, small_layout, n, {seed, aggregation::mean, false});
    m.begin(3);
    for (std::size_t r : order)
      m.receive(cpu, std::span<const std::byte>(msgs[r]));
    for (std::size_t i = 0; i < want.size(); ++i)
      REQUIRE(m.sum()[i] == static_cast<float>(want[i]));
  }
}

} // namespace

TEST_CASE("aggregation of encoded messages is exact in any arrival order", "[framework][E1]") {
  for (std::size_t n : {1u, 2u, 3u, 4u, 8u}) {
    CAPTURE(n);
    check_exact_sum(scheme<topk, layer_span>{{0.3}}, n, 1);       // sparse scatter-add
    check_exact_sum(scheme<threshold_v, flat_span>{{1.0}}, n, 2); // sparse, flat
    check_exact_sum(scheme<terngrad, layer_span>{}, n, 3, true);  // TernGrad scaler sharing
    check_exact_sum(scheme<sign_sgd, layer_span>{}, n, 4);        // +-1
    check_exact_sum(scheme<random_k, layer_span>{{0.25, false, true}}, n, 5); // shared seed
  }
}

TEST_CASE("QSGD with a shared power-of-two norm sums integer levels exactly", "[framework][E1]") {
  codec c(scheme<qsgd, flat_span>{{4}}, small_layout);
  const std::vector<float> shared{4.0f}; // value = 4 * level / 4 = level
  std::vector<double> want(small_layout.total_size(), 0.0);
  master m(scheme<qsgd, flat_span>{{4}}, scheme<identity, flat_span>{}, small_layout, 5, {});
  m.begin(0);
  for (std::uint32_t r = 0; r < 5; ++r) {
    const auto msg = encode_msg(c, dyadic(small_layout.total_size(), 70 + r), {0, 0, r}, shared);
    const auto d = decoded(c, msg);
    for (std::size_t i = 0; i < d.size(); ++i) {
      REQUIRE(d[i] == std::round(d[i])); // integer levels
      want[i] += d[i];
    }
    m.receive(cpu, std::span<const std::byte>(msg));
  }
  for (std::size_t i = 0; i < want.size(); ++i)
    REQUIRE(m.sum()[i] == static_cast<float>(want[i]));
}

TEST_CASE("shared-seed random-k: one mask for every rank, compact sum equals the dense one",
          "[framework][E4]") {
  const scheme<random_k, layer_span> s{{0.2, false, true}};
  codec c(s, small_layout);
  std::vector<std::uint8_t> mask0(small_layout.total_size()), mask(mask0.size());
  std::vector<double> dense(mask0.size(), 0.0);
  master m(s, scheme<identity, flat_span>{}, small_layout, 4, {9});
  m.begin(2);
  for (std::uint32_t r = 0; r < 4; ++r) {
    auto g = dyadic(mask0.size(), 100 + r);
    for (auto& v : g)
      v = v == 0.0f ? 0.5f : v; // no zero values: the mask is visible in the output
    const auto msg = encode_msg(c, g, {9, 2, r});
    c.sent_elements(cpu, std::span<const std::byte>(msg),
                    std::span<std::uint8_t>(r ? mask : mask0));
    if (r)
      REQUIRE(mask == mask0);
    for (std::size_t i = 0; i < g.size(); ++i)
      dense[i] += mask0[i] ? g[i] : 0.0f;
    m.receive(cpu, std::span<const std::byte>(msg));
  }
  for (std::size_t i = 0; i < dense.size(); ++i)
    REQUIRE(m.sum()[i] == static_cast<float>(dense[i]));
}

TEST_CASE("majority vote: ties go to +1, all-equal inputs pass through", "[framework][E3]") {
  const model_layout l = model_layout::from_sizes({6});
  const scheme<sign_sgd, flat_span> s{};
  codec c(s, l);
  const std::vector<std::vector<float>> votes{
      {1, -1, 1, -1, 0.5f, -0.0f}, {-1, -1, 1, 1, -2, -3}, {-1, 1, 1, -1, -2, -3}};
  for (std::size_t n = 1; n <= 3; ++n) {
    master m(s, scheme<sign_sgd, flat_span>{}, l, n, {0, aggregation::majority_vote, false});
    m.begin(0);
    for (std::uint32_t r = 0; r < n; ++r)
      m.receive(cpu, std::span<const std::byte>(encode_msg(c, votes[r], {0, 0, r})));
    (void)m.broadcast(cpu);
    for (std::size_t i = 0; i < 6; ++i) {
      int sum = 0;
      for (std::size_t r = 0; r < n; ++r)
        sum += votes[r][i] >= 0.0f ? 1 : -1; // sign(+-0) = +1
      CAPTURE(n, i);
      REQUIRE(m.aggregate()[i] == (sum >= 0 ? 1.0f : -1.0f));
    }
  }
  REQUIRE_THROWS_AS(master(scheme<topk, flat_span>{{0.5}}, scheme<sign_sgd, flat_span>{}, l, 2,
                           {0, aggregation::majority_vote, false}),
                    gradcomp::error);
}

TEST_CASE("error feedback loses nothing", "[memory][F1][F2]") {
  const std::size_t d = small_layout.total_size();
  SECTION("top-k: e + Delta == p bitwise every step; telescoping sum exact on dyadic inputs") {
    error_feedback ef(scheme<topk, layer_span>{{0.1}}, small_layout);
    std::vector<std::byte> out(ef.max_encoded_bytes());
    std::vector<double> sum_sent(d, 0.0), sum_in(d, 0.0);
    for (std::uint64_t t = 0; t < 20; ++t) {
      const auto g = dyadic(d, 500 + t);
      (void)ef.encode(cpu, std::span<const float>(g), 0.5f, std::span<std::byte>(out), {1, t});
      for (std::size_t i = 0; i < d; ++i) {
        REQUIRE(ef.residual()[i] + ef.last_sent()[i] == ef.last_input()[i]);
        sum_sent[i] += ef.last_sent()[i];
        sum_in[i] += 0.5 * g[i];
      }
    }
    for (std::size_t i = 0; i < d; ++i)
      REQUIRE(sum_sent[i] + ef.residual()[i] == sum_in[i]);
  }
  SECTION("quantizers: e == p - Delta in fp32, telescoping within T ulps") {
    error_feedback ef(scheme<qsgd, layer_span>{{15}}, small_layout);
    std::vector<std::byte> out(ef.max_encoded_bytes());
    std::vector<double> sum_sent(d, 0.0), sum_in(d, 0.0);
    const auto x = test::make_input(d, test::distribution::normal, 4);
    for (std::uint64_t t = 0; t < 30; ++t) {
      (void)ef.encode(cpu, std::span<const float>(x), 1.0f, std::span<std::byte>(out), {2, t});
      for (std::size_t i = 0; i < d; ++i) {
        REQUIRE(ef.residual()[i] == ef.last_input()[i] - ef.last_sent()[i]);
        sum_sent[i] += ef.last_sent()[i];
        sum_in[i] += x[i];
      }
    }
    for (std::size_t i = 0; i < d; ++i)
      REQUIRE(std::fabs(sum_sent[i] + ef.residual()[i] - sum_in[i]) <=
              30 * 4e-7 * (std::fabs(sum_in[i]) + 1.0));
  }
  SECTION("identity compressor: EF-SGD is plain SGD bit for bit") {
    error_feedback ef(scheme<identity, layer_span>{}, small_layout);
    std::vector<std::byte> out(ef.max_encoded_bytes());
    std::vector<float> x_ef(d, 1.0f), x_sgd(d, 1.0f);
    for (std::uint64_t t = 0; t < 10; ++t) {
      const auto g = test::make_input(d, test::distribution::normal, 40 + t);
      (void)ef.encode(cpu, std::span<const float>(g), 0.1f, std::span<std::byte>(out), {3, t});
      for (std::size_t i = 0; i < d; ++i) {
        x_ef[i] -= ef.last_sent()[i];
        x_sgd[i] -= 0.1f * g[i];
        REQUIRE(ef.residual()[i] == 0.0f);
      }
    }
    REQUIRE(x_ef == x_sgd);
  }
  SECTION("a failing step leaves the residual unchanged; checkpoints restore it") {
    error_feedback ef(scheme<topk, flat_span>{{0.05}}, small_layout);
    std::vector<std::byte> out(ef.max_encoded_bytes());
    const auto g = dyadic(d, 9);
    (void)ef.encode(cpu, std::span<const float>(g), 1.0f, std::span<std::byte>(out), {});
    const std::vector<float> saved(ef.residual().begin(), ef.residual().end());
    auto bad = g;
    bad[3] = NAN;
    REQUIRE_THROWS_AS(
        ef.encode(cpu, std::span<const float>(bad), 1.0f, std::span<std::byte>(out), {}),
        gradcomp::error);
    REQUIRE(std::equal(saved.begin(), saved.end(), ef.residual().begin()));
    std::vector<std::byte> tiny(10);
    REQUIRE_THROWS_AS(
        ef.encode(cpu, std::span<const float>(g), 1.0f, std::span<std::byte>(tiny), {}),
        gradcomp::error);
    REQUIRE(std::equal(saved.begin(), saved.end(), ef.residual().begin()));
    ef.reset();
    ef.restore(std::span<const float>(saved));
    REQUIRE(std::equal(saved.begin(), saved.end(), ef.residual().begin()));
    REQUIRE_THROWS_AS(ef.restore(std::span<const float>(saved.data(), 3)), gradcomp::error);
  }
}

TEST_CASE("DGC momentum correction: masking, and the ratio-1 limits", "[memory][F3][F4]") {
  const std::size_t d = small_layout.total_size();
  SECTION("sent coordinates restart u and v; the others keep accumulating") {
    dgc_momentum dgc(scheme<topk, layer_span>{{0.1}}, small_layout, {0.9f, 0.0f, true});
    std::vector<std::byte> out(dgc.max_encoded_bytes());
    std::vector<float> u(d, 0.0f), v(d, 0.0f);
    for (std::uint64_t t = 0; t < 5; ++t) {
      const auto g = test::make_input(d, test::distribution::normal, 60 + t);
      (void)dgc.encode(cpu, std::span<const float>(g), std::span<std::byte>(out), {0, t});
      for (std::size_t i = 0; i < d; ++i) {
        u[i] = 0.9f * u[i] + g[i];
        v[i] = v[i] + u[i];
        if (dgc.last_sent_mask()[i]) {
          u[i] = 0.0f;
          v[i] = 0.0f;
        }
        REQUIRE(dgc.momentum()[i] == u[i]);
        REQUIRE(dgc.accumulation()[i] == v[i]);
      }
    }
  }
  SECTION("ratio 1 without momentum masking is momentum SGD bit for bit") {
    dgc_momentum dgc(scheme<topk, layer_span>{{1.0}}, small_layout, {0.9f, 0.0f, false});
    std::vector<std::byte> out(dgc.max_encoded_bytes());
    codec<scheme<topk, layer_span>> c({{1.0}}, small_layout);
    std::vector<float> u(d, 0.0f), step(d);
    for (std::uint64_t t = 0; t < 8; ++t) {
      const auto g = test::make_input(d, test::distribution::normal, 80 + t);
      const std::size_t bytes =
          dgc.encode(cpu, std::span<const float>(g), std::span<std::byte>(out), {0, t});
      c.decode(cpu, std::span<const std::byte>(out.data(), bytes), std::span<float>(step));
      for (std::size_t i = 0; i < d; ++i) {
        u[i] = 0.9f * u[i] + g[i];
        REQUIRE(step[i] == u[i]);
      }
    }
  }
  SECTION("local clipping scales g by clip / ||g|| when the norm exceeds clip") {
    // g = 0.5 everywhere: ||g||^2 = d / 4 exactly, so the scale has one correct value
    const std::vector<float> g(d, 0.5f);
    const double norm = std::sqrt(static_cast<double>(d) / 4.0);
    for (const float clip : {1.0f, static_cast<float>(norm) * 2.0f}) {
      CAPTURE(clip);
      dgc_momentum dgc(scheme<topk, layer_span>{{1.0}}, small_layout, {0.9f, clip, false});
      std::vector<std::byte> out(dgc.max_encoded_bytes());
      (void)dgc.encode(cpu, std::span<const float>(g), std::span<std::byte>(out), {0, 0});
      const float scale = norm > clip ? static_cast<float>(clip / norm) : 1.0f;
      for (std::size_t i = 0; i < d; ++i) {
        REQUIRE(dgc.momentum()[i] == 0.5f * scale);
      }
    }
  }
  REQUIRE_THROWS_AS(dgc_momentum(scheme<topk, flat_span>{{0.1}}, small_layout, {1.5f}),
                    gradcomp::error);
}

TEST_CASE("protocol mistakes are named errors and change nothing", "[framework][errors]") {
  using W = scheme<topk, layer_span>;
  using M = scheme<identity, flat_span>;
  const std::size_t d = small_layout.total_size();
  worker<W, M> w0({{0.2}}, {}, small_layout, 0, {7}), w1({{0.2}}, {}, small_layout, 1, {7});
  master<W, M> m({{0.2}}, {}, small_layout, 2, {7});
  const auto g = dyadic(d, 3);
  auto errc_of = [](auto&& f) {
    try {
      f();
    } catch (const gradcomp::error& e) {
      return e.code();
    }
    FAIL("no error");
    return errc::invalid_parameter;
  };
  REQUIRE(errc_of([&] { master<W, M>({{0.2}}, {}, small_layout, 0, {}); }) ==
          errc::invalid_parameter);
  m.begin(5);
  const auto m0 = [&] {
    const auto s = w0.compress(cpu, std::span<const float>(g), 5);
    return std::vector<std::byte>(s.begin(), s.end());
  }();
  const auto stale = [&] {
    const auto s = w1.compress(cpu, std::span<const float>(g), 4);
    return std::vector<std::byte>(s.begin(), s.end());
  }();
  REQUIRE(errc_of([&] { (void)m.broadcast(cpu); }) == errc::protocol_error);
  REQUIRE(errc_of([&] { m.receive(cpu, std::span<const std::byte>(stale)); }) == errc::wrong_step);
  m.receive(cpu, std::span<const std::byte>(m0));
  const std::vector<float> after_one(m.sum().begin(), m.sum().end());
  REQUIRE(errc_of([&] { m.receive(cpu, std::span<const std::byte>(m0)); }) ==
          errc::duplicate_message);
  // another scheme's message (the digest differs), another seed
  worker<W, M> other({{0.3}}, {}, small_layout, 1, {7});
  const auto s_other = other.compress(cpu, std::span<const float>(g), 5);
  REQUIRE(errc_of([&] { m.receive(cpu, s_other); }) == errc::scheme_mismatch);
  worker<W, M> seeded({{0.2}}, {}, small_layout, 1, {8});
  const auto s_seed = seeded.compress(cpu, std::span<const float>(g), 5);
  REQUIRE(errc_of([&] { m.receive(cpu, s_seed); }) == errc::scheme_mismatch);
  worker<W, M> far({{0.2}}, {}, small_layout, 9, {7});
  const auto s_far = far.compress(cpu, std::span<const float>(g), 5);
  REQUIRE(errc_of([&] { m.receive(cpu, s_far); }) == errc::invalid_parameter);
  REQUIRE(std::equal(after_one.begin(), after_one.end(), m.sum().begin()));
  // the broadcast: a worker rejects another step's, and its update is untouched
  const auto s1 = w1.compress(cpu, std::span<const float>(g), 5);
  m.receive(cpu, s1);
  const auto bcast = m.broadcast(cpu);
  std::vector<float> update(d, 42.0f);
  REQUIRE(errc_of([&] { w0.decompress(cpu, bcast, 6, std::span<float>(update)); }) ==
          errc::wrong_step);
  REQUIRE(std::all_of(update.begin(), update.end(), [](float v) { return v == 42.0f; }));
  REQUIRE(errc_of([&] {
            w0.decompress(cpu, std::span<const std::byte>(m0), 5, std::span<float>(update));
          }) == errc::scheme_mismatch);
  w0.decompress(cpu, bcast, 5, std::span<float>(update));
  for (std::size_t i = 0; i < d; ++i)
    REQUIRE(update[i] == m.sum()[i] / 2.0f);
}

TEST_CASE("the in-process cluster counts bytes and errors exactly", "[framework][stats]") {
  using W = scheme<topk, layer_span>;
  using M = scheme<qsgd, layer_span>;
  const std::size_t d = small_layout.total_size();
  in_process_cluster<W, M> cl({{0.25}}, {{15}}, small_layout, 3, {11, aggregation::mean, true});
  std::vector<std::vector<float>> g;
  for (int r = 0; r < 3; ++r)
    g.push_back(test::make_input(d, test::distribution::normal, 200 + r));
  const std::vector<std::span<const float>> views(g.begin(), g.end());
  std::vector<float> update(d);
  const step_stats st = cl.step(cpu, std::span<const std::span<const float>>(views), 0, 1.0f,
                                std::span<float>(update));
  REQUIRE(st.up.size() == 4);
  REQUIRE(st.up[2].name == "b");
  std::size_t payload = 0;
  for (const auto& s : st.up)
    payload += s.payload_bytes;
  // three messages, each a header, 4 directory entries and the payloads
  REQUIRE(st.bytes_up == payload + 3 * (wire_header_bytes + 4 * wire_directory_entry_bytes));
  REQUIRE(st.up[2].payload_bytes == 3 * sparse_coo<float>::bytes(130, 33, false));
  REQUIRE(st.up[0].error > 0.0);
  REQUIRE(st.up[0].error < 1.0);
  REQUIRE(st.bytes_down > 0);
  // error feedback on the workers: residual = p - sent
  auto& mem = cl.worker_at(1).memory();
  for (std::size_t i = 0; i < d; ++i)
    REQUIRE(mem.residual()[i] == mem.last_input()[i] - mem.last_sent()[i]);
  REQUIRE_THROWS_AS(cl.step(cpu, std::span<const std::span<const float>>(views.data(), 2), 1, 1.0f,
                            std::span<float>(update)),
                    gradcomp::error);
}

namespace {

std::vector<std::uint32_t> bits_of(const std::vector<float>& v) {
  std::vector<std::uint32_t> b(v.size());
  std::transform(v.begin(), v.end(), b.begin(), [](float x) { return detail::float_bits(x); });
  return b;
}

/// Algorithm 1 with error feedback on both sides, computed directly from codec calls: the
/// messages, broadcasts, updates and residuals a backend's run must have produced.
template <class W, class M>
void check_against_reference(const W& q_w, const M& q_m, const model_layout& layout,
                             const test::algorithm1_setup& setup,
                             const test::algorithm1_record& rec) {
  const std::size_t n = layout.total_size();
  codec<W> cw(q_w, layout);
  codec<M> cm(q_m, layout);
  std::vector<std::vector<float>> e(setup.workers, std::vector<float>(n, 0.0f));
  std::vector<float> em(n, 0.0f), p(n), d(n), sum(n), pm(n), dm(n);
  for (std::uint64_t step = 0; step < setup.steps; ++step) {
    std::fill(sum.begin(), sum.end(), 0.0f);
    for (std::size_t r = 0; r < setup.workers; ++r) {
      const std::size_t at = step * setup.workers + r;
      for (std::size_t i = 0; i < n; ++i)
        p[i] = setup.lr * rec.grads[at][i] + e[r][i]; // dyadic g, lr 2^-3: the product is exact
      std::vector<std::byte> msg(cw.max_encoded_bytes());
      const stream_key key{setup.seed, step, static_cast<std::uint32_t>(r), role::worker};
      msg.resize(cw.encode(cpu, std::span<const float>(p), std::span<std::byte>(msg), key));
      REQUIRE(msg == rec.worker_messages[at]);
      cw.decode(cpu, std::span<const std::byte>(msg), std::span<float>(d));
      for (std::size_t i = 0; i < n; ++i) {
        e[r][i] = p[i] - d[i];
        sum[i] += d[i];
      }
    }
    for (std::size_t i = 0; i < n; ++i)
      pm[i] = sum[i] / static_cast<float>(setup.workers) + em[i];
    std::vector<std::byte> bc(cm.max_encoded_bytes());
    const stream_key mkey{setup.seed, step, 0, role::master};
    bc.resize(cm.encode(cpu, std::span<const float>(pm), std::span<std::byte>(bc), mkey));
    REQUIRE(bc == rec.broadcasts[step]);
    cm.decode(cpu, std::span<const std::byte>(bc), std::span<float>(dm));
    REQUIRE(bits_of(dm) == bits_of(rec.updates[step]));
    for (std::size_t i = 0; i < n; ++i)
      em[i] = pm[i] - dm[i];
  }
  for (std::size_t r = 0; r < setup.workers; ++r)
    REQUIRE(bits_of(e[r]) == bits_of(rec.worker_residuals[r]));
  REQUIRE(bits_of(em) == bits_of(rec.master_residual));
}

template <class W, class M>
void check_cpu_algorithm1(const W& q_w, const M& q_m) {
  test::cpu_fixture fx;
  const test::algorithm1_setup setup;
  const test::algorithm1_record rec = test::run_algorithm1(fx, q_w, q_m, small_layout, setup);
  check_against_reference(q_w, q_m, small_layout, setup, rec);
  // the in-process cluster runs the same roles: the same updates, its traffic the messages' sizes
  const test::cluster_record cl = test::run_cluster(fx, q_w, q_m, small_layout, setup);
  for (std::uint64_t step = 0; step < setup.steps; ++step) {
    CAPTURE(step);
    REQUIRE(bits_of(cl.updates[step]) == bits_of(rec.updates[step]));
    std::size_t up = 0;
    for (std::size_t r = 0; r < setup.workers; ++r) {
      up += rec.worker_messages[step * setup.workers + r].size();
    }
    REQUIRE(cl.stats[step].bytes_up == up);
    REQUIRE(cl.stats[step].bytes_down == rec.broadcasts[step].size() * setup.workers);
  }
}

} // namespace

TEST_CASE("Algorithm 1 with error feedback on both sides equals its codec-call reference, in "
          "roles and in the in-process cluster",
          "[framework][backends]") {
  SECTION("top-k layer-wise up, QSGD down") {
    check_cpu_algorithm1(scheme<topk, layer_span>{{0.1}}, scheme<qsgd, layer_span>{{15}});
  }
  SECTION("TernGrad entire-model up, identity down") {
    check_cpu_algorithm1(scheme<terngrad, flat_span>{}, scheme<identity, flat_span>{});
  }
  SECTION("top-k + QSGD composition up, random-k down") {
    check_cpu_algorithm1(scheme<compose<topk, qsgd>, layer_span>{{{0.2}, {7}}},
                         scheme<random_k, flat_span>{{0.3}});
  }
}

TEST_CASE("the sharded simulation runs Algorithm 1 per shard, with the shard's layout and seed",
          "[framework][sharding]") {
  using W = scheme<topk, layer_span>;
  using M = scheme<qsgd, flat_span>;
  const model_layout layout = model_layout::from_sizes({37, 0, 130, 5, 600});
  const std::size_t n = 3, d = layout.total_size();
  const in_process_cluster<W, M>::options opt{21, aggregation::mean, true, true, false, true};
  in_process_sharded_cluster<W, M> sharded(W{{0.1}}, M{{15}}, layout, n, opt);
  REQUIRE(sharded.size() == n);
  // the reference: one plain cluster per shard, fed the shard's slices by hand
  std::vector<std::unique_ptr<in_process_cluster<W, M>>> per_shard;
  for (const model_shard& sh : sharded.shards()) {
    auto o = opt;
    o.seed = sh.seed;
    per_shard.push_back(
        std::make_unique<in_process_cluster<W, M>>(W{{0.1}}, M{{15}}, sh.layout, n, o));
  }
  std::vector<float> got(d), want(d);
  for (std::uint64_t step = 0; step < 3; ++step) {
    std::vector<std::vector<float>> g(n);
    std::vector<std::span<const float>> views;
    for (std::size_t r = 0; r < n; ++r) {
      g[r] = dyadic(d, 100 * step + r);
      views.emplace_back(g[r]);
    }
    const step_stats st = sharded.step(cpu, std::span<const std::span<const float>>(views), step,
                                       0.5f, std::span<float>(got));
    std::size_t up = 0, down = 0, spans = 0;
    for (std::size_t s = 0; s < n; ++s) {
      const model_shard& sh = sharded.shards()[s];
      std::vector<std::span<const float>> part;
      for (const auto& v : views) {
        part.push_back(v.subspan(sh.begin, sh.size));
      }
      const step_stats one =
          per_shard[s]->step(cpu, std::span<const std::span<const float>>(part), step, 0.5f,
                             std::span<float>(want).subspan(sh.begin, sh.size));
      up += one.bytes_up;
      down += one.bytes_down;
      spans += one.up.size();
    }
    INFO("step " << step);
    REQUIRE(std::memcmp(got.data(), want.data(), d * sizeof(float)) == 0);
    REQUIRE(st.bytes_up == up);
    REQUIRE(st.bytes_down == down);
    REQUIRE(st.up.size() == spans);
  }
}

TEST_CASE("sharding a lossless exchange changes nothing: the mean, bit for bit",
          "[framework][sharding]") {
  using S = scheme<identity, layer_span>;
  const model_layout layout = model_layout::from_sizes({37, 0, 130, 5, 600});
  const std::size_t n = 4, d = layout.total_size();
  const in_process_cluster<S, S>::options opt{3, aggregation::mean, false, false, false, false};
  in_process_cluster<S, S> whole(S{}, S{}, layout, n, opt);
  in_process_sharded_cluster<S, S> sharded(S{}, S{}, layout, n, opt);
  std::vector<std::vector<float>> g(n);
  std::vector<std::span<const float>> views;
  for (std::size_t r = 0; r < n; ++r) {
    g[r] = dyadic(d, r + 7);
    views.emplace_back(g[r]);
  }
  std::vector<float> a(d), b(d);
  const auto grads = std::span<const std::span<const float>>(views);
  (void)whole.step(cpu, grads, 0, 1.0f, std::span<float>(a));
  (void)sharded.step(cpu, grads, 0, 1.0f, std::span<float>(b));
  REQUIRE(std::memcmp(a.data(), b.data(), d * sizeof(float)) == 0);
  // wrong sizes are named errors, and change nothing
  std::vector<float> short_update(d - 1);
  CHECK_THROWS_WITH(sharded.step(cpu, grads, 1, 1.0f, std::span<float>(short_update)),
                    Catch::Contains("update of 771 elements"));
  CHECK_THROWS_WITH(sharded.step(cpu, grads.first(3), 1, 1.0f, std::span<float>(b)),
                    Catch::Contains("3 gradients for 4 workers"));
}

namespace {

/// Gaussian gradients with a per-rank spread: scales are not powers of two, so fp32 sums of the
/// decoded values depend on their order, while level sums must not.
std::vector<std::vector<float>> gaussian_ranks(std::size_t n, std::size_t d, std::uint64_t seed) {
  std::vector<std::vector<float>> g(n, std::vector<float>(d));
  for (std::size_t r = 0; r < n; ++r) {
    std::mt19937_64 rng(seed * 131 + r);
    std::normal_distribution<float> nd(0.0f, 0.3f * static_cast<float>(r + 1));
    for (auto& v : g[r])
      v = nd(rng);
  }
  return g;
}

/// The elementwise max of every rank's scales (TernGrad's scaler sharing).
template <class Scheme>
std::vector<float> max_scales(codec<Scheme>& c, const std::vector<std::vector<float>>& g) {
  std::vector<float> shared;
  for (const auto& x : g) {
    const auto local = c.local_scales(cpu, std::span<const float>(x), {5, 1, 0});
    if (shared.empty())
      shared = local;
    for (std::size_t i = 0; i < local.size(); ++i)
      shared[i] = std::max(shared[i], local[i]);
  }
  return shared;
}

/// An element's level from its decoded value alone (a reference independent of level_sums):
/// value / (scale / unit), rounded (exact for these magnitudes).
double level_of(float decoded, double scale, double unit, bool scaled) {
  const double step = scaled ? scale / unit : 1.0 / unit;
  return step == 0.0 ? 0.0 : std::round(static_cast<double>(decoded) / step);
}

/// Master with sum_levels over n ranks' messages in three random orders: the aggregate is the
/// same bit for bit each time, and equals fp32(scale * sum of levels / unit) / n per element.
template <class Scheme>
void check_level_sums(Scheme s, std::size_t n, std::uint64_t seed, double unit, bool scaled,
                      std::size_t group) {
  codec<Scheme> c(s, small_layout);
  const std::size_t d = small_layout.total_size();
  const auto g = gaussian_ranks(n, d, seed);
  const auto shared = max_scales(c, g);
  std::vector<std::vector<std::byte>> msgs(n);
  std::vector<double> levels(d, 0.0);
  for (std::size_t r = 0; r < n; ++r) {
    msgs[r] = encode_msg(c, g[r], {5, 1, static_cast<std::uint32_t>(r)}, shared);
    const auto dec = decoded(c, msgs[r]);
    for (std::size_t i = 0; i < d; ++i) {
      const double scale = shared.empty() ? 1.0 : shared[i / group];
      levels[i] += level_of(dec[i], scale, unit, scaled);
    }
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 3; ++trial) {
    std::shuffle(order.begin(), order.end(), rng);
    master m(s, scheme<identity, flat_span>{}, small_layout, n,
             {5, aggregation::mean, false, true});
    m.begin(1);
    for (std::size_t r : order)
      m.receive(cpu, std::span<const std::byte>(msgs[r]));
    (void)m.broadcast(cpu);
    for (std::size_t i = 0; i < d; ++i) {
      const double scale = shared.empty() || !scaled ? 1.0 : shared[i / group];
      const auto sum = static_cast<float>(scale * levels[i] / unit);
      CAPTURE(n, trial, i);
      REQUIRE(m.sum()[i] == sum);
      REQUIRE(m.aggregate()[i] == sum / static_cast<float>(n));
    }
  }
}

} // namespace

TEST_CASE("level sums: exact in any order, whatever the shared scale", "[framework][E1][levels]") {
  for (std::size_t n : {1u, 2u, 3u, 4u, 8u}) {
    check_level_sums(scheme<terngrad, flat_span>{}, n, 1, 1.0, true, 172);
    check_level_sums(scheme<qsgd, flat_span>{{15}}, n, 2, 15.0, true, 172);
    check_level_sums(scheme<qsgd, bucket_span>{{255, 16}, {172}}, n, 3, 255.0, true, 16);
    check_level_sums(scheme<scaled_sign, flat_span>{}, n, 4, 1.0, true, 172);
    check_level_sums(scheme<sign_sgd, layer_span>{}, n, 5, 1.0, false, 1);
  }
}

TEST_CASE("level sums: majority vote and saturated levels", "[framework][E3][levels]") {
  const scheme<sign_sgd, layer_span> s{};
  codec c(s, small_layout);
  for (std::size_t n : {1u, 2u, 3u, 4u}) {
    const auto g = gaussian_ranks(n, small_layout.total_size(), 9 + n);
    master plain(s, s, small_layout, n, {0, aggregation::majority_vote, false});
    master summed(s, s, small_layout, n, {0, aggregation::majority_vote, false, true});
    plain.begin(0);
    summed.begin(0);
    for (std::uint32_t r = 0; r < n; ++r) {
      const auto msg = encode_msg(c, g[r], {0, 0, r});
      plain.receive(cpu, std::span<const std::byte>(msg));
      summed.receive(cpu, std::span<const std::byte>(msg));
    }
    (void)plain.broadcast(cpu);
    (void)summed.broadcast(cpu);
    REQUIRE(
        std::equal(plain.aggregate().begin(), plain.aggregate().end(), summed.aggregate().begin()));
  }
  // every rank at the largest level of one sign: the fields hold 2 L n and 0 without overflow
  const model_layout one = model_layout::from_sizes({200});
  const scheme<qsgd, flat_span> q{{255}};
  codec qc(q, one);
  for (std::size_t n : {1u, 7u, 8u, 64u}) {
    for (const float sign : {1.0f, -1.0f}) {
      std::vector<float> x(200, 0.0f);
      x[101] = sign * 3.0f; // the one non-zero element: level 255 (norm 3)
      master m(q, scheme<identity, flat_span>{}, one, n, {0, aggregation::mean, false, true});
      m.begin(0);
      for (std::uint32_t r = 0; r < n; ++r)
        m.receive(cpu, std::span<const std::byte>(encode_msg(qc, x, {0, 0, r})));
      (void)m.broadcast(cpu);
      CAPTURE(n, sign);
      REQUIRE(m.sum()[101] == sign * 3.0f * static_cast<float>(n));
      REQUIRE(m.aggregate()[101] == sign * 3.0f);
      REQUIRE(m.sum()[100] == 0.0f);
    }
  }
  level_sums ls(qc.level_spans(), 8);       // 2 * 255 * 8 = 4080: 12-bit fields, 5 per word
  REQUIRE(ls.words() == (200 + 4) / 5 + 2); // and the two check words
  REQUIRE(ls.num_scales() == 1);
  REQUIRE(ls.scaled());
}

TEST_CASE("level sums: codes that do not add, other scales and bad sums are named errors",
          "[framework][levels][errors]") {
  const auto is_invalid = [](auto&& make) {
    try {
      make();
    } catch (const gradcomp::error& e) {
      return e.code() == errc::invalid_parameter;
    }
    return false;
  };
  const scheme<identity, flat_span> down{};
  REQUIRE(is_invalid([&] {
    master(scheme<topk, flat_span>{{0.1}}, down, small_layout, 2,
           {0, aggregation::mean, false, true});
  }));
  REQUIRE(is_invalid([&] {
    master(scheme<natural, flat_span>{}, down, small_layout, 2,
           {0, aggregation::mean, false, true});
  }));
  REQUIRE(is_invalid([&] {
    master(scheme<identity, flat_span>{}, down, small_layout, 2,
           {0, aggregation::mean, false, true});
  }));
  REQUIRE(is_invalid([&] {
    master(scheme<stochastic_rounding<bfloat16>, flat_span>{}, down, small_layout, 2,
           {0, aggregation::mean, false, true});
  }));
  scheme<terngrad, layer_span> raw_bias{};
  raw_bias.rules.identity_below = 6; // layer "c" (5 elements) travels as fp32
  REQUIRE(is_invalid([&] {
    master(raw_bias, down, small_layout, 2, {0, aggregation::mean, false, true});
  }));
  REQUIRE(is_invalid([&] {
    in_process_cluster<scheme<terngrad, flat_span>, scheme<identity, flat_span>>(
        {}, {}, small_layout, 2, {0, aggregation::mean, false, false, false, true, true});
  }));
  REQUIRE_NOTHROW(in_process_cluster<scheme<sign_sgd, flat_span>, scheme<identity, flat_span>>(
      {}, {}, small_layout, 2, {0, aggregation::mean, false, false, false, true, true}));

  // a message on other scales is rejected and adds nothing; the right one is taken after it
  const scheme<terngrad, flat_span> t{};
  codec c(t, small_layout);
  const auto g = gaussian_ranks(2, small_layout.total_size(), 4);
  const auto shared = max_scales(c, g);
  master m(t, down, small_layout, 2, {0, aggregation::mean, false, true});
  m.begin(0);
  m.receive(cpu, std::span<const std::byte>(encode_msg(c, g[0], {0, 0, 0}, shared)));
  try {
    m.receive(cpu, std::span<const std::byte>(encode_msg(c, g[0], {0, 0, 1}))); // own scale
    FAIL("a message on other scales was summed");
  } catch (const gradcomp::error& e) {
    REQUIRE(e.code() == errc::scheme_mismatch);
  }
  REQUIRE(m.received() == 1);
  m.receive(cpu, std::span<const std::byte>(encode_msg(c, g[1], {0, 0, 1}, shared)));
  REQUIRE_NOTHROW(m.broadcast(cpu));

  // sums from elsewhere: a field above 2 L n, or set spare bits, is corrupt_payload
  const level_sums& ls = *m.sums_of_levels();
  std::vector<std::uint64_t> words(ls.words(), 0);
  std::vector<float> scales;
  ls.add(std::span<const std::byte>(encode_msg(c, g[0], {0, 0, 0}, shared)), words, scales);
  ls.add(std::span<const std::byte>(encode_msg(c, g[1], {0, 0, 1}, shared)), words, scales);
  const auto whole = encode_msg(c, g[0], {0, 0, 0}, shared);
  REQUIRE_THROWS_AS(
      ls.add(std::span<const std::byte>(whole).first(whole.size() - 1), words, scales),
      gradcomp::error);
  m.begin(1);
  REQUIRE_NOTHROW(m.receive_sums(words, scales)); // 3-bit fields (2 L n = 4), 21 per word
  REQUIRE_THROWS_AS(m.receive_sums(words, scales), gradcomp::error); // twice in a step
  for (const std::uint64_t bad : {std::uint64_t{5}, std::uint64_t{1} << 63}) {
    auto corrupt = words;
    corrupt[2] = (corrupt[2] & ~std::uint64_t{7}) | bad;
    m.begin(2);
    try {
      m.receive_sums(corrupt, scales);
      FAIL("out-of-range level sums were taken");
    } catch (const gradcomp::error& e) {
      REQUIRE(e.code() == errc::corrupt_payload);
    }
    REQUIRE(m.received() == 0);
  }
}
