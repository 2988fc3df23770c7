// SPDX-License-Identifier: Apache-2.0
// Algorithm 1 over MPI (run under mpirun with 2-4 ranks): every operator, in all-reduce and
// parameter-server mode, equals the in-process simulation bit for bit; sparse messages of
// different sizes, empty selections and zero-length layers; and the faults: another layout,
// scheme, seed or step on one rank, a corrupted message, a rank whose compression fails, and an
// exchange that times out, each a named error on every rank with nothing left hanging; and
// PowerSGD's two all-reduce rounds against the in-process exchange.

#define CATCH_CONFIG_RUNNER
#include <gradcomp/comm/in_process_sharded.hpp>
#include <gradcomp/comm/mpi_cluster.hpp>
#include <gradcomp/comm/mpi_powersgd.hpp>
#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

using namespace gradcomp;

namespace {

// a zero-length layer, tiny layers and one large enough for several selections
const model_layout layout =
    model_layout::from_sizes({37, 0, 130, 5, 1000}, {"conv", "empty", "fc1", "bias", "fc2"});

/// Rank r's gradient at `step`: Gaussian with a per-rank scale, so sparsifiers keep different
/// counts on different ranks; rank 1 sends zeros every third step (an empty selection for
/// threshold sparsifiers).
std::vector<float> gradient(std::size_t rank, std::uint64_t step) {
  std::vector<float> g(layout.total_size());
  if (rank == 1 && step % 3 == 0) {
    return g;
  }
  std::mt19937_64 rng(1000 * step + rank);
  std::normal_distribution<float> nd(0.0f, 0.01f * static_cast<float>(rank + 1));
  for (auto& v : g) {
    v = nd(rng);
  }
  return g;
}

/// Short enough that a failed assertion on one rank (the others then wait for it) ends the run
/// soon, long enough for 4 ranks on 2 cores.
mpi_communicator::options test_timeout() {
  return {std::chrono::seconds(20)};
}

std::size_t world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return static_cast<std::size_t>(r);
}
std::size_t world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return static_cast<std::size_t>(n);
}

/// The in-process simulation of an MPI run in `mode` (sharded: one shard per rank).
template <class W, class M, class Sim>
step_stats simulate(Sim& sim, const std::vector<std::span<const float>>& views, std::uint64_t step,
                    std::span<float> out) {
  return sim.step(cpu, std::span<const std::span<const float>>(views), step, 0.5f, out);
}

/// Four steps of the MPI cluster against the in-process simulation of the same run, with error
/// feedback on both sides: updates and byte counts equal, bit for bit, on every rank; each rank's
/// decode work as the mode promises.
template <class W, class M>
void check_against_simulation(const W& q_w, const M& q_m, topology mode, bool share = false,
                              aggregation rule = aggregation::mean,
                              mpi_communicator::options comm_opt = test_timeout()) {
  const std::size_t n = world_size(), me = world_rank();
  mpi_communicator comm(MPI_COMM_WORLD, comm_opt);
  typename mpi_cluster<W, M>::options opt;
  opt.seed = 77;
  opt.rule = rule;
  opt.worker_feedback = rule == aggregation::mean;
  opt.master_feedback = true;
  opt.share_scales = share;
  opt.mode = mode;
  opt.root = n - 1;
  mpi_cluster<W, M> cluster(q_w, q_m, layout, comm, opt);
  // summable mode shares scales itself, and its master sums levels
  const bool summable = mode == topology::summable_all_reduce;
  const typename in_process_cluster<W, M>::options sim_opt{
      opt.seed, rule, opt.worker_feedback, true, share || summable, false, summable};
  in_process_cluster<W, M> sim(q_w, q_m, layout, n, sim_opt);
  in_process_sharded_cluster<W, M> sharded_sim(q_w, q_m, layout, n, sim_opt);
  const std::size_t d = layout.total_size();
  std::vector<float> got(d), want(d);
  for (std::uint64_t step = 0; step < 4; ++step) {
    std::vector<std::vector<float>> g(n);
    std::vector<std::span<const float>> views;
    for (std::size_t r = 0; r < n; ++r) {
      g[r] = gradient(r, step);
      views.emplace_back(g[r]);
    }
    const step_stats s = cluster.step(cpu, views[me], step, 0.5f, std::span<float>(got));
    const step_stats t = mode == topology::sharded
                             ? simulate<W, M>(sharded_sim, views, step, std::span<float>(want))
                             : simulate<W, M>(sim, views, step, std::span<float>(want));
    INFO("step " << step << ", rank " << me << " of " << n);
    REQUIRE(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
    REQUIRE(s.bytes_up == t.bytes_up);
    REQUIRE(s.bytes_down == t.bytes_down);
    const bool aggregates = mode == topology::all_reduce || me == opt.root;
    const std::size_t decoded = mode == topology::sharded ? n * sharded_sim.shards()[me].size + d
                                : summable                ? 2 * d
                                                          : (aggregates ? n + 1 : 1) * d;
    REQUIRE(s.rank_elements_decoded == decoded);
    REQUIRE(s.rank_bytes_received > 0);
  }
}

template <class W, class M = scheme<identity, flat_span>>
void both_modes(const W& q_w, const M& q_m = {}, bool share = false) {
  SECTION("all-reduce") {
    check_against_simulation(q_w, q_m, topology::all_reduce, share);
  }
  SECTION("parameter server") {
    check_against_simulation(q_w, q_m, topology::parameter_server, share);
  }
  SECTION("sharded") {
    check_against_simulation(q_w, q_m, topology::sharded, share);
  }
}

/// Runs `body` (a step that must fail on this rank) and returns the error's code.
template <class Body>
errc failure_of(Body&& body) {
  try {
    body();
  } catch (const error& e) {
    UNSCOPED_INFO("rank " << world_rank() << ": " << e.what());
    return e.code();
  }
  FAIL("rank " << world_rank() << ": the step did not fail");
  return errc::invalid_parameter;
}

using topk_lw = scheme<topk, layer_span>;
constexpr topology all_modes[] = {topology::all_reduce, topology::parameter_server,
                                  topology::sharded};
const char* mode_name(topology mode) {
  return mode == topology::all_reduce            ? "all-reduce"
         : mode == topology::sharded             ? "sharded"
         : mode == topology::summable_all_reduce ? "summable all-reduce"
                                                 : "parameter server";
}
using dense_down = scheme<identity, flat_span>;

/// Cluster options: a seed, a topology, optionally TernGrad scaler sharing.
template <class W = topk_lw>
typename mpi_cluster<W, dense_down>::options options_for(std::uint64_t seed, topology mode,
                                                         bool share = false) {
  typename mpi_cluster<W, dense_down>::options opt;
  opt.seed = seed;
  opt.mode = mode;
  opt.share_scales = share;
  return opt;
}

/// One good step on `cluster` (the communicator is still usable after a checked fault).
template <class C>
void good_step(C& cluster, std::uint64_t step) {
  const auto g = gradient(world_rank(), step);
  std::vector<float> u(layout.total_size());
  REQUIRE_NOTHROW(cluster.step(cpu, std::span<const float>(g), step, 1.0f, std::span<float>(u)));
}

/// A good step 0, then step 1 with rank `hung` stopped (as by SIGSTOP) long enough for every
/// other rank to give up: each of them must fail with a timeout that names it.
template <class C>
void check_hung_rank_named(C& cluster, std::size_t hung) {
  const std::size_t me = world_rank();
  const auto g = gradient(me, 0);
  std::vector<float> u(layout.total_size());
  good_step(cluster, 0);
  if (me == hung) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    try { // it finds the others gone; what it says is not the point here
      cluster.step(cpu, std::span<const float>(g), 1, 1.0f, std::span<float>(u));
    } catch (const error&) {
    }
    return;
  }
  try {
    cluster.step(cpu, std::span<const float>(g), 1, 1.0f, std::span<float>(u));
    FAIL("rank " << me << ": the step did not fail");
  } catch (const error& e) {
    INFO(e.what());
    CHECK(e.code() == errc::timeout);
    // every rank names the rank that hung, never only the root
    CHECK_THAT(e.what(), Catch::Contains("from rank " + std::to_string(hung)));
  }
}

} // namespace

TEST_CASE("every operator over MPI equals the in-process simulation", "[mpi]") {
  SECTION("identity") {
    both_modes(scheme<identity, layer_span>{});
  }
  SECTION("top-k layer-wise") {
    both_modes(topk_lw{{0.05}});
  }
  SECTION("top-k entire-model") {
    both_modes(scheme<topk, flat_span>{{0.05}});
  }
  SECTION("random-k, own seeds") {
    both_modes(scheme<random_k, layer_span>{{0.1}});
  }
  SECTION("random-k, shared seed") {
    both_modes(scheme<random_k, flat_span>{{0.1, false, true}});
  }
  SECTION("threshold-v: different and empty selections") {
    both_modes(scheme<threshold_v, layer_span>{{0.015}});
  }
  SECTION("adaptive threshold") {
    both_modes(scheme<adaptive_threshold, layer_span>{});
  }
  SECTION("TernGrad with scaler sharing") {
    both_modes(scheme<terngrad, layer_span>{}, dense_down{}, true);
  }
  SECTION("TernGrad entire-model") {
    both_modes(scheme<terngrad, flat_span>{});
  }
  SECTION("QSGD s=15") {
    both_modes(scheme<qsgd, layer_span>{{15}});
  }
  SECTION("QSGD bucketed") {
    both_modes(scheme<qsgd, bucket_span>{{255, 128}, {256}});
  }
  SECTION("natural") {
    both_modes(scheme<natural, layer_span>{});
  }
  SECTION("scaled sign") {
    both_modes(scheme<sign_sgd, layer_span>{});
  }
  SECTION("stochastic rounding bf16") {
    both_modes(scheme<stochastic_rounding<bfloat16>, layer_span>{});
  }
  SECTION("top-k then QSGD") {
    both_modes(scheme<compose<topk, qsgd>, layer_span>{{{0.1}, {15}}});
  }
  SECTION("Q_W != Q_M: top-k up, QSGD down") {
    both_modes(topk_lw{{0.05}}, scheme<qsgd, flat_span>{{255}});
  }
  SECTION("majority vote of signs") {
    for (const topology mode : {topology::all_reduce, topology::sharded}) {
      check_against_simulation(scheme<sign_sgd, flat_span>{}, scheme<sign_sgd, flat_span>{}, mode,
                               false, aggregation::majority_vote);
    }
  }
}

TEST_CASE("summable all-reduce: levels summed by MPI equal the simulation", "[mpi][summable]") {
  const topology mode = topology::summable_all_reduce;
  using tern = scheme<terngrad, layer_span>;
  SECTION("TernGrad, scales shared by the mode itself") {
    check_against_simulation(tern{}, dense_down{}, mode);
  }
  SECTION("TernGrad entire-model, share_scales set") {
    check_against_simulation(scheme<terngrad, flat_span>{}, dense_down{}, mode, true);
  }
  SECTION("QSGD s=15") {
    check_against_simulation(scheme<qsgd, layer_span>{{15}}, dense_down{}, mode);
  }
  SECTION("QSGD bucketed") {
    check_against_simulation(scheme<qsgd, bucket_span>{{255, 128}, {256}}, dense_down{}, mode);
  }
  SECTION("scaled sign") {
    check_against_simulation(scheme<scaled_sign, flat_span>{}, dense_down{}, mode);
  }
  SECTION("sign, mean and majority vote") {
    check_against_simulation(scheme<sign_sgd, layer_span>{}, dense_down{}, mode);
    check_against_simulation(scheme<sign_sgd, flat_span>{}, scheme<sign_sgd, flat_span>{}, mode,
                             false, aggregation::majority_vote);
  }
  SECTION("Q_W != Q_M: TernGrad up, QSGD down") {
    check_against_simulation(tern{}, scheme<qsgd, flat_span>{{255}}, mode);
  }
  SECTION("in 61-byte pieces") {
    mpi_communicator::options small = test_timeout();
    small.max_transfer_bytes = 61;
    check_against_simulation(tern{}, dense_down{}, mode, false, aggregation::mean, small);
  }
}

TEST_CASE("summable all-reduce: codes that do not add, altered sums, failed and hung ranks",
          "[mpi][summable][faults]") {
  const std::size_t me = world_rank(), n = world_size();
  const topology mode = topology::summable_all_reduce;
  using tern = scheme<terngrad, layer_span>;
  std::vector<float> u(layout.total_size());
  auto g = gradient(me, 1);
  {
    mpi_communicator comm(MPI_COMM_WORLD, test_timeout());
    // top-k's values do not add: refused when the cluster is built, on every rank
    REQUIRE(failure_of([&] {
              mpi_cluster<topk_lw, dense_down>(topk_lw{{0.05}}, dense_down{}, layout, comm,
                                               options_for(3, mode));
            }) == errc::invalid_parameter);

    // rank 1 alters a field of its contribution beyond 2 L n: every rank sees the same bad sum
    auto opt = options_for<tern>(3, mode);
    opt.worker_feedback = true;
    opt.on_send = [&](std::span<std::byte> words) {
      if (me == 1 % n) {
        words[0] |= std::byte{0xff};
      }
    };
    mpi_cluster<tern, dense_down> altered(tern{}, dense_down{}, layout, comm, opt);
    CHECK(failure_of([&] {
            altered.step(cpu, std::span<const float>(g), 1, 1.0f, std::span<float>(u));
          }) == errc::corrupt_payload);
    // nothing of what this rank sent is lost: its message went back to the residual
    const auto last = altered.local_worker().memory().last_input();
    const auto after = altered.local_worker().memory().residual();
    CHECK(std::equal(after.begin(), after.end(), last.begin()));

    // a NaN on the last rank: it throws non_finite_input, the others peer_failed
    mpi_cluster<tern, dense_down> c2(tern{}, dense_down{}, layout, comm,
                                     options_for<tern>(3, mode));
    auto bad = g;
    if (me == n - 1) {
      bad[40] = std::nanf("");
    }
    CHECK(failure_of([&] {
            c2.step(cpu, std::span<const float>(bad), 1, 1.0f, std::span<float>(u));
          }) == (me == n - 1 ? errc::non_finite_input : errc::peer_failed));
    good_step(c2, 2);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  {
    const std::size_t hung = 1;
    mpi_communicator comm(MPI_COMM_WORLD, {std::chrono::milliseconds(300)});
    mpi_cluster<tern, dense_down> cluster(tern{}, dense_down{}, layout, comm,
                                          options_for<tern>(4, mode));
    check_hung_rank_named(cluster, hung);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_CASE("messages larger than one MPI transfer travel in pieces, in every mode", "[mpi]") {
  // 61-byte MPI messages: every exchange of a step is cut into pieces, as one over 2 GiB would be
  mpi_communicator::options small = test_timeout();
  small.max_transfer_bytes = 61;
  for (const topology mode :
       {topology::all_reduce, topology::parameter_server, topology::sharded}) {
    check_against_simulation(scheme<qsgd, layer_span>{{15}}, scheme<identity, flat_span>{}, mode,
                             false, aggregation::mean, small);
  }
  mpi_communicator::options zero = test_timeout();
  zero.max_transfer_bytes = 0;
  REQUIRE(failure_of([&] { mpi_communicator bad(MPI_COMM_WORLD, zero); }) ==
          errc::invalid_parameter);
}

TEST_CASE("sharded mode: bytes per rank do not grow with the rank count", "[mpi]") {
  // sharded: a rank sends (n-1)/n of its Q_W messages and its shard's broadcast n-1 times, and
  // receives n-1 shard messages and n-1 broadcasts, besides 2 envelopes and 2 size words per
  // peer; all-reduce mode receives n-1 whole messages
  const std::size_t n = world_size();
  mpi_communicator comm(MPI_COMM_WORLD, test_timeout());
  using W = scheme<qsgd, layer_span>;
  using M = scheme<qsgd, flat_span>;
  const model_layout big = model_layout::from_sizes({5000, 3000, 40000});
  std::vector<float> g(big.total_size()), u(big.total_size());
  std::mt19937_64 rng(world_rank());
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : g) {
    v = nd(rng);
  }
  auto one_step = [&](topology mode) {
    mpi_cluster<W, M>::options opt;
    opt.seed = 5;
    opt.mode = mode;
    mpi_cluster<W, M> cluster(W{{15}}, M{{15}}, big, comm, opt);
    return cluster.step(cpu, std::span<const float>(g), 1, 1.0f, std::span<float>(u));
  };
  const step_stats sharded = one_step(topology::sharded);
  const step_stats gathered = one_step(topology::all_reduce);
  const std::size_t m = sharded.bytes_up / n;            // one rank's Q_W messages
  const std::size_t broadcasts = sharded.bytes_down / n; // the n shard broadcasts
  const std::size_t control = (n - 1) * (2 * envelope_bytes + 2 * 8);
  INFO("rank " << world_rank() << " of " << n << ": m " << m << ", broadcasts " << broadcasts);
  REQUIRE(sharded.rank_bytes_sent - control <= m + broadcasts);
  REQUIRE(sharded.rank_bytes_received - control <= m + broadcasts);
  REQUIRE(gathered.rank_bytes_received ==
          (n - 1) * (envelope_bytes + gathered.bytes_up / n)); // same-size QSGD messages
  if (n >= 3) {
    REQUIRE(sharded.rank_bytes_received < gathered.rank_bytes_received);
  }
}

TEST_CASE("a rank with another layout, scheme, seed or step fails the step on every rank",
          "[mpi][faults]") {
  const std::size_t me = world_rank(), odd = world_size() - 1;
  mpi_communicator comm(MPI_COMM_WORLD, test_timeout());
  for (const topology mode : all_modes) {
    INFO(mode_name(mode));
    auto opt = options_for(5, mode);
    mpi_cluster<topk_lw, dense_down> good(topk_lw{{0.05}}, dense_down{}, layout, comm, opt);
    std::vector<float> u(layout.total_size());
    const auto g = gradient(me, 0);
    const std::span<const float> gs(g);

    // another layout (same total size: only the layer split differs)
    const model_layout other = model_layout::from_sizes({37, 0, 130, 500, 505});
    auto odd_layout = opt;
    mpi_cluster<topk_lw, dense_down> c1(topk_lw{{0.05}}, dense_down{}, me == odd ? other : layout,
                                        comm, odd_layout);
    const errc e1 = failure_of([&] { c1.step(cpu, gs, 0, 1.0f, std::span<float>(u)); });
    CHECK((e1 == errc::layout_mismatch || e1 == errc::peer_failed));

    // another compressor parameter
    mpi_cluster<topk_lw, dense_down> c2(topk_lw{{me == odd ? 0.1 : 0.05}}, dense_down{}, layout,
                                        comm, opt);
    const errc e2 = failure_of([&] { c2.step(cpu, gs, 0, 1.0f, std::span<float>(u)); });
    CHECK((e2 == errc::scheme_mismatch || e2 == errc::peer_failed));

    // another seed
    auto seeded = opt;
    seeded.seed = me == odd ? 6 : 5;
    mpi_cluster<topk_lw, dense_down> c3(topk_lw{{0.05}}, dense_down{}, layout, comm, seeded);
    const errc e3 = failure_of([&] { c3.step(cpu, gs, 0, 1.0f, std::span<float>(u)); });
    CHECK((e3 == errc::scheme_mismatch || e3 == errc::peer_failed));

    // another step
    const errc e4 =
        failure_of([&] { good.step(cpu, gs, me == odd ? 2 : 1, 1.0f, std::span<float>(u)); });
    CHECK((e4 == errc::wrong_step || e4 == errc::peer_failed));

    good_step(good, 3); // nothing was left pending
  }
}

TEST_CASE("a rank with a gradient of the wrong size fails the step on every rank",
          "[mpi][faults]") {
  const std::size_t me = world_rank(), n = world_size();
  mpi_communicator comm(MPI_COMM_WORLD, test_timeout());
  for (const topology mode : all_modes) {
    for (const bool share : {false, true}) {
      INFO(mode_name(mode) << (share ? ", shared scales" : "") << ", rank " << me);
      using tern = scheme<terngrad, layer_span>;
      mpi_cluster<tern, dense_down> cluster(tern{}, dense_down{}, layout, comm,
                                            options_for<tern>(14, mode, share));
      auto g = gradient(me, 1);
      if (me == n - 1) {
        g.pop_back();
      }
      std::vector<float> u(layout.total_size());
      const errc e = failure_of(
          [&] { cluster.step(cpu, std::span<const float>(g), 1, 1.0f, std::span<float>(u)); });
      CHECK(e == (me == n - 1 ? errc::size_mismatch : errc::peer_failed));
      good_step(cluster, 2);
    }
  }
}

TEST_CASE("a corrupted message is rejected by its receivers, a failed rank stops everyone",
          "[mpi][faults]") {
  const std::size_t me = world_rank(), n = world_size();
  mpi_communicator comm(MPI_COMM_WORLD, test_timeout());
  for (const topology mode : all_modes) {
    INFO(mode_name(mode));
    std::vector<float> u(layout.total_size());
    auto g = gradient(me, 1);

    auto opt = options_for(9, mode);
    opt.on_send = [&](std::span<std::byte> m) {
      if (me == 1 % n) {
        m[m.size() - 1] ^= std::byte{0x20}; // one bit of the last value
      }
    };
    mpi_cluster<topk_lw, dense_down> corrupt(topk_lw{{0.05}}, dense_down{}, layout, comm, opt);
    const errc e1 = failure_of(
        [&] { corrupt.step(cpu, std::span<const float>(g), 1, 1.0f, std::span<float>(u)); });
    // the last bytes of rank 1's messages: the last shard's, which its master rank decodes
    const bool decodes =
        mode == topology::sharded ? me == n - 1 : mode == topology::all_reduce || me == opt.root;
    if (decodes) {
      CHECK(e1 == errc::checksum_mismatch);
    } else {
      CHECK(e1 == errc::peer_failed);
    }

    // a NaN on the last rank: it throws non_finite_input, the others peer_failed
    mpi_cluster<topk_lw, dense_down> c2(topk_lw{{0.05}}, dense_down{}, layout, comm,
                                        options_for(9, mode));
    if (me == n - 1) {
      g[40] = std::nanf("");
    }
    const errc e2 =
        failure_of([&] { c2.step(cpu, std::span<const float>(g), 1, 1.0f, std::span<float>(u)); });
    CHECK(e2 == (me == n - 1 ? errc::non_finite_input : errc::peer_failed));

    // the same with TernGrad scaler sharing (the failure happens before the scales meet)
    using tern = scheme<terngrad, layer_span>;
    mpi_cluster<tern, dense_down> c3(tern{}, dense_down{}, layout, comm,
                                     options_for<tern>(9, mode, true));
    const errc e3 =
        failure_of([&] { c3.step(cpu, std::span<const float>(g), 1, 1.0f, std::span<float>(u)); });
    CHECK(e3 == (me == n - 1 ? errc::non_finite_input : errc::peer_failed));

    good_step(c2, 2);
  }
}

namespace {
/// The worker residuals of this rank (one per shard in sharded mode) and the inputs they last
/// compressed, back to back.
template <class C>
std::pair<std::vector<float>, std::vector<float>> residuals_of(C& cluster, topology mode) {
  std::pair<std::vector<float>, std::vector<float>> out;
  auto add = [&](auto& w) {
    const auto r = w.memory().residual();
    const auto p = w.memory().last_input();
    out.first.insert(out.first.end(), r.begin(), r.end());
    out.second.insert(out.second.end(), p.begin(), p.end());
  };
  if (mode == topology::sharded) {
    for (std::size_t s = 0; s < world_size(); ++s) {
      add(cluster.shard_worker(s));
    }
  } else {
    add(cluster.local_worker());
  }
  return out;
}
} // namespace

TEST_CASE("a failed step returns what each rank sent to its residual", "[mpi][faults]") {
  const std::size_t me = world_rank(), n = world_size();
  mpi_communicator comm(MPI_COMM_WORLD, test_timeout());
  for (const topology mode : all_modes) {
    INFO(mode_name(mode) << ", rank " << me);
    auto opt = options_for(12, mode);
    opt.worker_feedback = true;
    mpi_cluster<topk_lw, dense_down> cluster(topk_lw{{0.05}}, dense_down{}, layout, comm, opt);
    good_step(cluster, 0);
    const std::vector<float> before = residuals_of(cluster, mode).first;
    auto g = gradient(me, 1);
    if (me == n - 1) {
      g[40] = std::nanf("");
    }
    std::vector<float> u(layout.total_size());
    const errc e = failure_of(
        [&] { cluster.step(cpu, std::span<const float>(g), 1, 1.0f, std::span<float>(u)); });
    CHECK(e == (me == n - 1 ? errc::non_finite_input : errc::peer_failed));
    const auto [after, sent_input] = residuals_of(cluster, mode);
    if (me == n - 1) { // its compression failed: the residual it had
      CHECK(std::memcmp(after.data(), before.data(), after.size() * sizeof(float)) == 0);
    } else { // its message went nowhere: the residual is everything it compressed
      CHECK(std::memcmp(after.data(), sent_input.data(), after.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(after.data(), before.data(), after.size() * sizeof(float)) != 0);
    }
    good_step(cluster, 2);
  }
}

TEST_CASE("sharded: masters whose broadcast was not delivered keep it in their residual",
          "[mpi][faults]") {
  const std::size_t me = world_rank(), n = world_size();
  mpi_communicator comm(MPI_COMM_WORLD, test_timeout());
  using lossy_down = scheme<qsgd, layer_span>;
  mpi_cluster<topk_lw, lossy_down>::options opt;
  opt.seed = 13;
  opt.mode = topology::sharded;
  opt.worker_feedback = true;
  opt.master_feedback = true;
  bool corrupt = false;
  opt.on_send = [&](std::span<std::byte> m) { // the last shard's message, which rank n-1 decodes
    if (corrupt && me == 1 % n) {
      m[m.size() - 1] ^= std::byte{0x20};
    }
  };
  mpi_cluster<topk_lw, lossy_down> cluster(topk_lw{{0.05}}, lossy_down{{15}}, layout, comm, opt);
  const auto g0 = gradient(me, 0);
  std::vector<float> u(layout.total_size());
  REQUIRE_NOTHROW(cluster.step(cpu, std::span<const float>(g0), 0, 1.0f, std::span<float>(u)));
  auto& m = cluster.coordinator();
  const auto residual = [&] {
    const auto r = m.memory().residual();
    return std::vector<float>(r.begin(), r.end());
  };
  const std::vector<float> before = residual();
  corrupt = true;
  const auto g1 = gradient(me, 1);
  const errc e = failure_of(
      [&] { cluster.step(cpu, std::span<const float>(g1), 1, 1.0f, std::span<float>(u)); });
  CHECK(e == (me == n - 1 ? errc::checksum_mismatch : errc::peer_failed));
  const std::vector<float> after = residual();
  if (me == n - 1) { // its master stopped at the corrupted message: the residual it had
    CHECK(std::memcmp(after.data(), before.data(), after.size() * sizeof(float)) == 0);
  } else { // its broadcast went nowhere: the residual is everything Q_M compressed
    const auto p = m.memory().last_input();
    CHECK(std::memcmp(after.data(), p.data(), after.size() * sizeof(float)) == 0);
  }
  corrupt = false;
  good_step(cluster, 2);
}

TEST_CASE("an exchange that does not complete names the missing rank", "[mpi][faults]") {
  const std::size_t me = world_rank();
  {
    mpi_communicator::options fast{std::chrono::milliseconds(300)};
    mpi_communicator comm(MPI_COMM_WORLD, fast);
    exchange_envelope env;
    env.rank = static_cast<std::uint32_t>(me);
    if (me == 1) { // late: the others give up before it arrives
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      try { // completes or times out, depending on whether MPI could cancel the others' sends
        (void)comm.exchange_envelopes(env);
      } catch (const error& e) {
        CHECK(e.code() == errc::timeout);
      }
    } else {
      try {
        comm.exchange_envelopes(env);
        FAIL("no timeout");
      } catch (const error& e) {
        CHECK(e.code() == errc::timeout);
        CHECK_THAT(e.what(), Catch::Contains("no envelope from rank 1"));
      }
      // the communicator refuses further use
      try {
        comm.exchange_envelopes(env);
        FAIL("a broken communicator was used");
      } catch (const error& e) {
        CHECK(e.code() == errc::protocol_error);
      }
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_CASE("a rank that hangs is named by every other rank, in every topology", "[mpi][faults]") {
  const std::size_t me = world_rank(), hung = 1;
  for (const topology mode : all_modes) {
    INFO(mode_name(mode) << ", rank " << me);
    {
      // the root is rank 0: the hung rank is a worker that the root, not everyone, waits for
      mpi_communicator comm(MPI_COMM_WORLD, {std::chrono::milliseconds(300)});
      mpi_cluster<topk_lw, dense_down> cluster(topk_lw{{0.05}}, dense_down{}, layout, comm,
                                               options_for(4, mode));
      check_hung_rank_named(cluster, hung);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
}

TEST_CASE("envelopes: every field is checked, with the sender named", "[mpi][envelope]") {
  exchange_envelope mine;
  mine.rank = 0;
  mine.layout_digest = layout_digest(layout);
  mine.step = 4;
  mine.payload_bytes = 100;
  const auto roundtrip = exchange_envelope::parse(mine.serialize(), 0);
  CHECK(roundtrip.layout_digest == mine.layout_digest);
  CHECK(roundtrip.step == 4);
  auto peer = mine;
  peer.rank = 2;
  CHECK_NOTHROW(check_peer_envelope(mine, peer, 2, 1000));
  auto expect = [&](exchange_envelope e, errc code, const char* text) {
    try {
      check_peer_envelope(mine, exchange_envelope::parse(e.serialize(), 2), 2, 1000);
      FAIL("accepted");
    } catch (const error& err) {
      CHECK(err.code() == code);
      CHECK_THAT(err.what(), Catch::Contains(text));
    }
  };
  auto e = peer;
  e.step = 5;
  expect(e, errc::wrong_step, "rank 2 is at step 5");
  e = peer;
  e.layout_digest ^= 1;
  expect(e, errc::layout_mismatch, "rank 2 has another model layout");
  e = peer;
  e.worker_plan ^= 1;
  expect(e, errc::scheme_mismatch, "other compressor parameters");
  e = peer;
  e.payload_bytes = 1001;
  expect(e, errc::corrupt_payload, "bound of 1000");
  e = peer;
  e.rank = 3;
  expect(e, errc::invalid_parameter, "calls itself rank 3");
  e = peer;
  e.set_failure(error(errc::non_finite_input, "layer 'fc1' element 3 is NaN"));
  expect(e, errc::peer_failed, "rank 2 failed: non_finite_input: layer 'fc1'");

  auto bytes = peer.serialize();
  bytes[4] = std::byte{9}; // another protocol version
  CHECK_THROWS_MATCHES(exchange_envelope::parse(bytes, 2), error,
                       Catch::Predicate<error>(
                           [](const error& x) { return x.code() == errc::unsupported_version; }));
  bytes[0] = std::byte{'X'};
  CHECK_THROWS_MATCHES(
      exchange_envelope::parse(bytes, 2), error,
      Catch::Predicate<error>([](const error& x) { return x.code() == errc::bad_magic; }));
}

TEST_CASE("PowerSGD over MPI equals the in-process exchange; a failed rank stops everyone",
          "[mpi][powersgd]") {
  const std::size_t me = world_rank(), n = world_size();
  const model_layout lowrank_layout = model_layout::from_layers(
      {{"conv", 0, 16 * 27, 16}, {"bias", 16 * 27, 16, 0}, {"fc", 16 * 28, 10 * 16, 10}});
  auto grad = [&](std::size_t rank, std::uint64_t step) {
    std::vector<float> g(lowrank_layout.total_size());
    std::mt19937_64 rng(1000 * step + rank);
    std::normal_distribution<float> nd(0.0f, 0.01f);
    for (auto& v : g) {
      v = nd(rng);
    }
    return g;
  };
  for (const bool entire : {false, true}) {
    INFO((entire ? "entire model" : "layer-wise") << ", rank " << me);
    const powersgd_options opt{.rank = 2, .entire_model = entire, .seed = 17};
    mpi_powersgd job(MPI_COMM_WORLD, lowrank_layout, opt, test_timeout());
    std::vector<powersgd> sim;
    for (std::size_t r = 0; r < n; ++r) {
      sim.emplace_back(lowrank_layout, opt, static_cast<std::uint32_t>(r));
    }
    std::vector<float> out(lowrank_layout.total_size());
    std::vector<float> want(out.size());
    for (std::uint64_t step = 0; step < 3; ++step) {
      const step_stats st = job.step(grad(me, step), out);
      CHECK(st.bytes_up == n * job.worker().message_bytes(lowrank_round::p) +
                               n * job.worker().message_bytes(lowrank_round::q));
      std::vector<std::vector<std::byte>> m(n);
      std::vector<std::span<const std::byte>> views(n);
      std::vector<std::byte> sum;
      for (std::size_t r = 0; r < n; ++r) {
        sim[r].encode_p(grad(r, step), m[r]);
        views[r] = m[r];
      }
      sim[0].sum(lowrank_round::p, views, sum);
      const std::vector<std::byte> p_sum = sum;
      for (std::size_t r = 0; r < n; ++r) {
        sim[r].encode_q(p_sum, m[r]);
        views[r] = m[r];
      }
      sim[0].sum(lowrank_round::q, views, sum);
      std::vector<float> other(out.size());
      for (std::size_t r = 0; r < n; ++r) {
        sim[r].decode(sum, r == me ? want : other);
      }
      REQUIRE(out == want);
    }
    // a NaN on the last rank: it names the element, every other rank names it; nothing changes
    const std::vector<float> before(job.worker().residual().begin(), job.worker().residual().end());
    auto g = grad(me, 3);
    if (me == n - 1) {
      g[5] = NAN;
    }
    const errc e = failure_of([&] { job.step(g, out); });
    CHECK(e == (me == n - 1 ? errc::non_finite_input : errc::peer_failed));
    CHECK(std::equal(before.begin(), before.end(), job.worker().residual().begin()));
    CHECK(job.worker().step() == 3);
    job.step(grad(me, 3), out); // the communicator is still usable
  }
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const int rc = Catch::Session().run(argc, argv);
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
