// SPDX-License-Identifier: Apache-2.0
// Algorithm 1 over MPI (run under mpirun with 2-4 ranks): every operator, in all-reduce and
// parameter-server mode, equals the in-process simulation bit for bit; sparse messages of
// different sizes, empty selections and zero-length layers; and the faults: another layout,
// scheme, seed or step on one rank, a corrupted message, a rank whose compression fails, and an
// exchange that times out, each a named error on every rank with nothing left hanging.

#define CATCH_CONFIG_RUNNER
#include <gradcomp/comm/mpi_cluster.hpp>
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

/// Four steps of the MPI cluster against the in-process simulation of the same run, with error
/// feedback on both sides: updates and byte counts equal, bit for bit, on every rank.
template <class W, class M>
void check_against_simulation(const W& q_w, const M& q_m, topology mode, bool share = false,
                              aggregation rule = aggregation::mean) {
  const std::size_t n = world_size(), me = world_rank();
  mpi_communicator comm(MPI_COMM_WORLD, test_timeout());
  typename mpi_cluster<W, M>::options opt;
  opt.seed = 77;
  opt.rule = rule;
  opt.worker_feedback = rule == aggregation::mean;
  opt.master_feedback = true;
  opt.share_scales = share;
  opt.mode = mode;
  opt.root = n - 1;
  mpi_cluster<W, M> cluster(q_w, q_m, layout, comm, opt);
  in_process_cluster<W, M> sim(q_w, q_m, layout, n,
                               {opt.seed, rule, opt.worker_feedback, true, share, false});
  std::vector<float> got(layout.total_size()), want(layout.total_size());
  for (std::uint64_t step = 0; step < 4; ++step) {
    std::vector<std::vector<float>> g(n);
    std::vector<std::span<const float>> views;
    for (std::size_t r = 0; r < n; ++r) {
      g[r] = gradient(r, step);
      views.emplace_back(g[r]);
    }
    const step_stats s = cluster.step(cpu, views[me], step, 0.5f, std::span<float>(got));
    const step_stats t = sim.step(cpu, std::span<const std::span<const float>>(views), step, 0.5f,
                                  std::span<float>(want));
    INFO("step " << step << ", rank " << me << " of " << n);
    REQUIRE(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
    REQUIRE(s.bytes_up == t.bytes_up);
    REQUIRE(s.bytes_down == t.bytes_down);
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
    check_against_simulation(scheme<sign_sgd, flat_span>{}, scheme<sign_sgd, flat_span>{},
                             topology::all_reduce, false, aggregation::majority_vote);
  }
}

TEST_CASE("a rank with another layout, scheme, seed or step fails the step on every rank",
          "[mpi][faults]") {
  const std::size_t me = world_rank(), odd = world_size() - 1;
  mpi_communicator comm(MPI_COMM_WORLD, test_timeout());
  for (const topology mode : {topology::all_reduce, topology::parameter_server}) {
    INFO((mode == topology::all_reduce ? "all-reduce" : "parameter server"));
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

TEST_CASE("a corrupted message is rejected by its receivers, a failed rank stops everyone",
          "[mpi][faults]") {
  const std::size_t me = world_rank(), n = world_size();
  mpi_communicator comm(MPI_COMM_WORLD, test_timeout());
  for (const topology mode : {topology::all_reduce, topology::parameter_server}) {
    INFO((mode == topology::all_reduce ? "all-reduce" : "parameter server"));
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
    if (mode == topology::all_reduce || me == opt.root) {
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

TEST_CASE("a rank that hangs is named by every other rank, in both topologies", "[mpi][faults]") {
  const std::size_t me = world_rank(), hung = 1;
  for (const topology mode : {topology::all_reduce, topology::parameter_server}) {
    INFO((mode == topology::all_reduce ? "all-reduce" : "parameter server") << ", rank " << me);
    {
      // the root is rank 0: the hung rank is a worker that the root, not everyone, waits for
      mpi_communicator comm(MPI_COMM_WORLD, {std::chrono::milliseconds(300)});
      mpi_cluster<topk_lw, dense_down> cluster(topk_lw{{0.05}}, dense_down{}, layout, comm,
                                               options_for(4, mode));
      const auto g = gradient(me, 0);
      std::vector<float> u(layout.total_size());
      good_step(cluster, 0);
      if (me == hung) { // stopped (as by SIGSTOP) long enough for every other rank to give up
        std::this_thread::sleep_for(std::chrono::milliseconds(2000));
        try { // it finds the others gone; what it says is not the point here
          cluster.step(cpu, std::span<const float>(g), 1, 1.0f, std::span<float>(u));
        } catch (const error&) {
        }
      } else {
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

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const int rc = Catch::Session().run(argc, argv);
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
