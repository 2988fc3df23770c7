// SPDX-License-Identifier: Apache-2.0
// Data-parallel training of an MLP on Fashion-MNIST with compressed gradients, over MPI (one
// worker per rank) or simulated in one process (--simulate N): the same run, bit for bit.
//
//   mpirun -np 4 ./mpi_train --method topk --ratio 0.01 --granularity layer --epochs 2
//   ./mpi_train --simulate 4 --method topk --ratio 0.01 --granularity layer --epochs 2
//   mpirun -np 4 ./mpi_train --scheme 'compose(topk:0.01,terngrad)/layer' --feedback --mode ps
//
// Each step draws a global batch, rank r takes its r-th share, computes the mean gradient on it
// and sends Q_W of it (with error feedback if asked); the mean of the decoded messages, Q_M'd,
// is the update every rank applies (SGD with optional Nesterov momentum, learning rate warmed up
// linearly to its peak and decayed linearly to zero). Prints per-epoch loss, test accuracy and
// bytes per step, and at the end a digest of the parameters (equal across ranks, and equal to the
// simulation's for the same arguments).

#include "support/command_line.hpp"
#include "support/fashion_mnist.hpp"
#include "support/mlp.hpp"

#include <gradcomp/comm/mpi_cluster.hpp>
#include <gradcomp/gradcomp.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace gradcomp;
namespace ex = gradcomp::examples;

namespace {

struct config {
  ex::training_options t;
  std::string master = "identity";   // identity | qsgd | a spec (Q_M of the aggregate)
  std::string mode = "allreduce";    // allreduce | ps | sharded | summable
  std::uint32_t master_levels = 255; // QSGD (Q_M)
  bool share_scales = false;         // TernGrad scaler sharing
  std::size_t simulate = 0;          // > 0: that many workers in this process, no MPI
  long timeout_ms = 120000;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "mpi_train: %s\noptions:\n%s"
               "  --master identity|qsgd|SPEC --master-levels S --mode "
               "allreduce|ps|sharded|summable --share-scales\n"
               "  --simulate N --timeout-ms T\n",
               why.c_str(), ex::training_usage);
  std::exit(2);
}

config parse(int argc, char** argv) {
  config c;
  ex::arguments a(argc, argv, usage);
  while (a.next()) {
    if (ex::read_training_option(a, c.t))
      continue;
    if (a.is("--master"))
      c.master = a.value();
    else if (a.is("--mode"))
      c.mode = a.value();
    else if (a.is("--master-levels"))
      c.master_levels = static_cast<std::uint32_t>(a.count());
    else if (a.is("--share-scales"))
      c.share_scales = true;
    else if (a.is("--simulate"))
      c.simulate = a.count();
    else if (a.is("--timeout-ms"))
      c.timeout_ms = static_cast<long>(a.count());
    else
      a.unknown();
  }
  if (const std::string why = ex::check_training_options(c.t); !why.empty())
    usage(why);
  if (c.mode != "allreduce" && c.mode != "ps" && c.mode != "sharded" && c.mode != "summable")
    usage("--mode allreduce|ps|sharded|summable");
  return c;
}

/// FNV-1a of the parameters' bytes: equal digests mean bitwise-equal models.
std::uint64_t digest(std::span<const float> p) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  const auto* b = reinterpret_cast<const unsigned char*>(p.data());
  for (std::size_t i = 0; i < p.size_bytes(); ++i) {
    h = (h ^ b[i]) * 0x100000001b3ull;
  }
  return h;
}

/// The trainer: data, model, schedule and optimizer; `exchange(step, shards, update)` does one
/// round of Algorithm 1 for the shards this process owns and returns its statistics.
class trainer {
public:
  trainer(const config& c, std::size_t workers, std::size_t rank)
      : c_(c), workers_(workers), rank_(rank), model_({784, 128, 64, 10}) {
    if (c.t.batch % workers != 0) {
      throw std::runtime_error("--batch " + std::to_string(c.t.batch) +
                               " is not a multiple of the " + std::to_string(workers) + " workers");
    }
    train_ = ex::load_fashion_mnist(c.t.data, "train", c.t.train_limit);
    test_ = ex::load_fashion_mnist(c.t.data, "t10k", c.t.test_limit);
    model_.init(c.t.seed);
    velocity_.assign(model_.params().size(), 0.0f);
    update_.assign(velocity_.size(), 0.0f);
    steps_per_epoch_ = train_.count / c.t.batch;
    if (c.t.steps != 0) {
      steps_per_epoch_ = std::min(steps_per_epoch_, c.t.steps);
    }
  }

  [[nodiscard]] ex::mlp& model() noexcept { return model_; }
  /// The schemes' specs, for the banner.
  void describe(std::string q_w, std::string q_m) {
    q_w_ = std::move(q_w);
    q_m_ = std::move(q_m);
  }
  [[nodiscard]] std::size_t shard() const noexcept { return c_.t.batch / workers_; }

  /// Runs every epoch; `exchange(step, grads, update)` gets the gradients of the workers this
  /// process plays (all of them when simulating, its own over MPI).
  template <class Exchange, class SumOverProcesses>
  void run(Exchange&& exchange, SumOverProcesses&& sum_over_processes, bool print) {
    const std::size_t total = c_.t.epochs * steps_per_epoch_;
    const std::size_t warmup = std::max<std::size_t>(1, total / 10);
    const std::size_t first = c_.simulate ? 0 : rank_, last = c_.simulate ? workers_ : rank_ + 1;
    std::vector<std::vector<float>> grads(last - first, std::vector<float>(model_.params().size()));
    if (print) {
      std::printf("mpi_train: %zu workers (%s), Q_W %s, Q_M %s, %zu parameters in %zu tensors, "
                  "%zu steps/epoch of batch %zu\n",
                  workers_, c_.simulate ? "simulated" : c_.mode.c_str(), q_w_.c_str(), q_m_.c_str(),
                  model_.params().size(), model_.layout().num_layers(), steps_per_epoch_,
                  c_.t.batch);
    }
    std::uint64_t step = 0;
    for (std::size_t epoch = 0; epoch < c_.t.epochs; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<std::size_t> order(train_.count);
      std::iota(order.begin(), order.end(), 0);
      std::mt19937_64 rng(c_.t.seed * 1000003 + epoch);
      std::shuffle(order.begin(), order.end(), rng);
      double loss = 0, up = 0, down = 0;
      for (std::size_t s = 0; s < steps_per_epoch_; ++s, ++step) {
        for (std::size_t w = first; w < last; ++w) {
          const std::span<const std::size_t> idx(order.data() + s * c_.t.batch + w * shard(),
                                                 shard());
          loss += model_.gradient(train_, idx, grads[w - first]);
        }
        const step_stats st = exchange(step, grads, std::span<float>(update_));
        up += static_cast<double>(st.bytes_up);
        down += static_cast<double>(st.bytes_down);
        apply(learning_rate(step, total, warmup));
      }
      loss = sum_over_processes(loss);
      const double acc = model_.accuracy(test_);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (print) {
        const double n = static_cast<double>(steps_per_epoch_);
        std::printf("epoch %zu/%zu  train loss %.4f  test accuracy %.2f%%  "
                    "up %.1f KB/step (%.1f KB per rank)  down %.1f KB/step  dense %.1f KB per "
                    "rank  %.1f s\n",
                    epoch + 1, c_.t.epochs, loss / (n * static_cast<double>(c_.t.batch)), 100 * acc,
                    up / n / 1e3, up / n / 1e3 / static_cast<double>(workers_), down / n / 1e3,
                    4.0 * static_cast<double>(model_.params().size()) / 1e3, secs);
        std::fflush(stdout);
      }
    }
    if (print) {
      std::printf("parameters digest %016llx\n",
                  static_cast<unsigned long long>(digest(model_.params())));
    }
  }

private:
  double learning_rate(std::size_t t, std::size_t total, std::size_t warmup) const {
    if (t < warmup) {
      return c_.t.lr * static_cast<double>(t + 1) / static_cast<double>(warmup);
    }
    return c_.t.lr * static_cast<double>(total - t) / static_cast<double>(total - warmup + 1);
  }

  /// SGD with (Nesterov) momentum on the decoded update.
  void apply(double lr) {
    auto p = model_.params();
    const auto m = static_cast<float>(c_.t.momentum), a = static_cast<float>(lr);
    for (std::size_t i = 0; i < p.size(); ++i) {
      velocity_[i] = m * velocity_[i] + update_[i];
      const float d = c_.t.nesterov ? update_[i] + m * velocity_[i] : velocity_[i];
      p[i] -= a * d;
    }
  }

  config c_;
  std::size_t workers_, rank_;
  ex::mlp model_;
  ex::image_set train_, test_;
  std::vector<float> velocity_, update_;
  std::string q_w_, q_m_;
  std::size_t steps_per_epoch_ = 0;
};

/// Q_M's spec for --master.
std::string master_spec(const config& c) {
  if (c.master == "qsgd") {
    return "qsgd:" + std::to_string(c.master_levels) + "/flat";
  }
  return c.master;
}

int run(const config& c) {
  using W = runtime_scheme;
  using M = runtime_scheme;
  if (c.simulate > 0) {
    trainer t(c, c.simulate, 0);
    const W q_w = ex::worker_scheme(c.t, t.model().layout());
    const M q_m{master_spec(c)};
    t.describe(q_w.spec, q_m.spec);
    // summable mode: the master sums levels, on scales the workers share
    const bool summable = c.mode == "summable";
    const in_process_cluster<W, M>::options opt{c.t.seed, aggregation::mean,          c.t.feedback,
                                                false,    c.share_scales || summable, false,
                                                summable};
    auto simulate = [&](auto& cluster) {
      t.run(
          [&](std::uint64_t step, const std::vector<std::vector<float>>& g, std::span<float> u) {
            std::vector<std::span<const float>> views(g.begin(), g.end());
            return cluster.step(cpu, std::span<const std::span<const float>>(views), step, 1.0f, u);
          },
          [](double x) { return x; }, true);
    };
    if (c.mode == "sharded") { // the same sharding as the MPI run's
      in_process_sharded_cluster<W, M> cluster(q_w, q_m, t.model().layout(), c.simulate, opt);
      simulate(cluster);
    } else {
      in_process_cluster<W, M> cluster(q_w, q_m, t.model().layout(), c.simulate, opt);
      simulate(cluster);
    }
    return 0;
  }
  return abort_on_error(MPI_COMM_WORLD, [&] {
    mpi_communicator comm(MPI_COMM_WORLD, {std::chrono::milliseconds(c.timeout_ms)});
    trainer t(c, comm.size(), comm.rank());
    const W q_w = ex::worker_scheme(c.t, t.model().layout());
    const M q_m{master_spec(c)};
    t.describe(q_w.spec, q_m.spec);
    typename mpi_cluster<W, M>::options opt;
    opt.seed = c.t.seed;
    opt.worker_feedback = c.t.feedback;
    opt.share_scales = c.share_scales;
    opt.mode = c.mode == "ps"         ? topology::parameter_server
               : c.mode == "sharded"  ? topology::sharded
               : c.mode == "summable" ? topology::summable_all_reduce
                                      : topology::all_reduce;
    mpi_cluster<W, M> cluster(q_w, q_m, t.model().layout(), comm, opt);
    t.run(
        [&](std::uint64_t step, const std::vector<std::vector<float>>& g, std::span<float> u) {
          return cluster.step(cpu, std::span<const float>(g.front()), step, 1.0f, u);
        },
        [&](double x) {
          double sum = 0;
          MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, comm.native());
          return sum;
        },
        comm.rank() == 0);
    return 0;
  });
}

} // namespace

int main(int argc, char** argv) {
  const config c = parse(argc, argv);
  if (c.simulate == 0) {
    MPI_Init(&argc, &argv);
  }
  int rc = 0;
  try {
    rc = run(c);
  } catch (const std::exception& e) { // the simulation's errors (MPI runs abort on theirs)
    std::fprintf(stderr, "mpi_train: %s\n", e.what());
    rc = 1;
  }
  if (c.simulate == 0) {
    MPI_Finalize();
  }
  return rc;
}
