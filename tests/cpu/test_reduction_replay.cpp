// SPDX-License-Identifier: Apache-2.0
// The probe/replay policy the CUDA backend uses to turn batched reductions into scales: a scan()
// replayed from separately computed canonical reductions gives the scales of a direct scan(),
// bit for bit, for every compressor with scales; a replay that asks for another reduction than
// the probe did is refused.
#include "../support/generators.hpp"

#include <gradcomp/detail/reduction_replay.hpp>
#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <vector>

using namespace gradcomp;

namespace {

/// Probes c.scan on n elements, computes the requested reductions with the CPU backend, replays,
/// and compares the scales and the returned max bits with a direct scan.
template <class C>
void check_replay(const C& c, const std::vector<float>& x) {
  const std::size_t n = x.size();
  detail::reduction_log log;
  std::vector<float> probe_scales(c.num_scales(n)), direct(c.num_scales(n)),
      replayed(c.num_scales(n));
  std::vector<double> sums;
  (void)c.scan(detail::reduction_replay{&log}, static_cast<const float*>(nullptr), n,
               probe_scales.data(), sums);
  std::vector<std::vector<double>> results;
  std::uint32_t max_bits = 0;
  for (const detail::reduction_request& r : log.requests) {
    std::vector<double> g(r.kind == math::sum_kind::none ? 0 : detail::ceil_div(n, r.group));
    max_bits = detail::run<detail::reduce_groups>(cpu, x.data(), n, r.group, r.kind, g.data());
    results.push_back(std::move(g));
  }
  for (const auto& g : results)
    log.sums.push_back(g.data());
  log.start_replay(max_bits);
  const std::uint32_t mb_replay =
      c.scan(detail::reduction_replay{&log}, x.data(), n, replayed.data(), sums);
  const std::uint32_t mb_direct = c.scan(cpu, x.data(), n, direct.data(), sums);
  REQUIRE(mb_replay == mb_direct);
  for (std::size_t i = 0; i < direct.size(); ++i)
    REQUIRE(detail::float_bits(replayed[i]) == detail::float_bits(direct[i]));
}

} // namespace

TEST_CASE("replayed scans give the direct scan's scales bit for bit", "[replay]") {
  for (std::size_t n : {0, 1, 7, 2048, 2049, 10000}) {
    for (test::distribution d : test::all_distributions) {
      CAPTURE(n, test::to_string(d));
      const auto x = test::make_input(n, d, 3 + n);
      check_replay(terngrad{}, x);
      check_replay(terngrad{true, 2.5}, x);
      check_replay(qsgd{255}, x);
      check_replay(qsgd{7, 128}, x);
      check_replay(scaled_sign{}, x);
      check_replay(sign_sgd{}, x);
      check_replay(identity{}, x);
    }
  }
}

TEST_CASE("a replay that departs from the probe is refused", "[replay]") {
  detail::reduction_log log;
  std::vector<float> s(1);
  std::vector<double> sums;
  (void)qsgd{255}.scan(detail::reduction_replay{&log}, static_cast<const float*>(nullptr), 100,
                       s.data(), sums);
  REQUIRE(log.requests.size() == 1);
  REQUIRE(log.requests[0].kind == math::sum_kind::square);
  const double fake = 4.0;
  log.sums = {&fake};
  log.start_replay(0x3f800000u);
  // terngrad asks for max |x| (kind none), not the squares the probe recorded
  try {
    (void)terngrad{}.scan(detail::reduction_replay{&log}, static_cast<const float*>(nullptr), 100,
                          s.data(), sums);
    FAIL("accepted");
  } catch (const gradcomp::error& e) {
    REQUIRE(e.code() == errc::invalid_parameter);
  }
  log.start_replay(0x3f800000u);
  (void)qsgd{255}.scan(detail::reduction_replay{&log}, static_cast<const float*>(nullptr), 100,
                       s.data(), sums);
  REQUIRE(s[0] == 2.0f); // sqrt of the replayed sum of squares
}
