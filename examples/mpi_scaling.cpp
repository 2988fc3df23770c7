// SPDX-License-Identifier: Apache-2.0
// Bytes on the wire and decode work per rank for each exchange mode of mpi_cluster, measured
// under mpirun (the communicator counts every byte a rank sends and receives, envelopes
// included), next to a dense MPI_Allreduce of the same gradient. One markdown row per scheme
// and mode, the maximum over ranks of each figure (the rank that bounds the step):
//
//   mpirun -np 4 ./mpi_scaling --model resnet50 --steps 2
//   mpirun -np 8 --oversubscribe ./mpi_scaling --specs 'topk:0.01/layer,terngrad/layer'
//
// The summable all-reduce rows appear for schemes whose codes add (TernGrad, QSGD, sign); its
// all-reduce bytes are those of a bandwidth-optimal all-reduce, 2 (n-1)/n of the level words.
// Q_W and Q_M are the same scheme (bidirectional compression), without error feedback; the
// gradient is Gaussian, a different one per rank. Step times are wall times on this machine
// (meaningless when ranks are oversubscribed); bytes and decoded elements are exact.

#include <gradcomp/comm/mpi_cluster.hpp>
#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/any_codec.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace gradcomp;

namespace {

struct config {
  std::string model = "resnet50";
  std::vector<std::string> specs = {"identity/layer", "topk:0.01/layer", "terngrad/layer",
                                    "qsgd:15/layer", "sr_bf16/layer"};
  int steps = 2;
};

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model") {
      c.model = v;
    } else if (a == "--steps") {
      c.steps = std::stoi(v);
    } else if (a == "--specs") {
      c.specs.clear();
      std::stringstream ss(v);
      for (std::string s; std::getline(ss, s, ',');) {
        c.specs.push_back(s);
      }
    } else {
      throw std::invalid_argument("usage: mpi_scaling [--model resnet50|resnet9|alexnet] "
                                  "[--steps N] [--specs 'spec,spec,...']");
    }
  }
  return c;
}

model_layout layout_of(const std::string& name) {
  if (name == "resnet9") {
    return models::resnet9_cifar10();
  }
  if (name == "alexnet") {
    return models::alexnet_cifar10();
  }
  return models::resnet50_imagenet();
}

/// The maximum over ranks, in place.
void max_over_ranks(std::vector<double>& v) {
  MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_MAX,
                MPI_COMM_WORLD);
}

void print_row(const char* scheme, const char* mode, std::size_t n, const std::vector<double>& m) {
  std::printf("| %s | %s | %zu | %.3f | %.3f | %.3f | %.3f |\n", scheme, mode, n, m[0] / 1e6,
              m[1] / 1e6, m[2] / 1e6, m[3]);
}

} // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const int rc = abort_on_error(MPI_COMM_WORLD, [&] {
    const config c = parse(argc, argv);
    mpi_communicator comm(MPI_COMM_WORLD, {std::chrono::minutes(10)});
    const std::size_t n = comm.size(), me = comm.rank();
    const model_layout layout = layout_of(c.model);
    const std::size_t d = layout.total_size();
    std::vector<float> g(d), u(d);
    std::mt19937_64 rng(1 + me);
    std::normal_distribution<float> nd(0.0f, 1e-3f);
    for (float& x : g) {
      x = nd(rng);
    }
    if (me == 0) {
      std::printf("%s, %zu elements, %zu ranks; maxima over ranks of one step\n\n"
                  "| Q_W = Q_M | mode | ranks | MB sent per rank | MB received per rank "
                  "| M elements decoded per rank | step s |\n|---|---|---|---|---|---|---|\n",
                  c.model.c_str(), d, n);
    }
    // the dense baseline: MPI's own all-reduce; bytes are the ring algorithm's 2 (n-1)/n 4d
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = std::chrono::steady_clock::now();
    MPI_Allreduce(g.data(), u.data(), static_cast<int>(d), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    const double ring = 2.0 * static_cast<double>(n - 1) / static_cast<double>(n) * 4.0 * d;
    std::vector<double> dense{
        ring, ring, 0.0,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
    max_over_ranks(dense);
    if (me == 0) {
      print_row("dense fp32 (MPI_Allreduce, ring model)", "-", n, dense);
    }
    const std::pair<topology, const char*> modes[] = {
        {topology::all_reduce, "all-reduce"},
        {topology::parameter_server, "param. server"},
        {topology::sharded, "sharded"},
        {topology::summable_all_reduce, "summable all-reduce"}};
    for (const std::string& spec : c.specs) {
      const bool summable = any_codec(spec, layout).level_spans().summable();
      for (const auto& [mode, name] : modes) {
        if (mode == topology::summable_all_reduce && !summable) {
          continue; // its codes do not add
        }
        mpi_cluster<runtime_scheme, runtime_scheme>::options opt;
        opt.seed = 17;
        opt.mode = mode;
        mpi_cluster<runtime_scheme, runtime_scheme> cluster(
            runtime_scheme{spec}, runtime_scheme{spec}, layout, comm, opt);
        std::vector<double> worst(4, 0.0);
        for (int step = 0; step < c.steps; ++step) {
          const step_stats st =
              cluster.step(cpu, std::span<const float>(g), static_cast<std::uint64_t>(step), 1.0f,
                           std::span<float>(u));
          const double secs = st.seconds_compress + st.seconds_aggregate + st.seconds_decompress;
          worst = {static_cast<double>(st.rank_bytes_sent),
                   static_cast<double>(st.rank_bytes_received),
                   static_cast<double>(st.rank_elements_decoded), secs};
        }
        max_over_ranks(worst);
        if (me == 0) {
          print_row(spec.c_str(), name, n, worst);
          std::fflush(stdout);
        }
      }
    }
    return 0;
  });
  MPI_Finalize();
  return rc;
}
