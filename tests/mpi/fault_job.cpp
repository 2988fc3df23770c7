// SPDX-License-Identifier: Apache-2.0
// A training job with one fault, to show that it ends (MPI_Abort through abort_on_error) with a
// named error instead of hanging:
//   late     rank 1 arrives 5 s late; the others time out after 0.5 s naming it
//   layout   rank 1 has another model layout
//   corrupt  rank 1's message is altered on the way
//   nan      rank 1's gradient has a NaN
// Usage: mpiexec -np N fault_job MODE [allreduce|ps|sharded]

#include <gradcomp/comm/mpi_cluster.hpp>
#include <gradcomp/gradcomp.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

using namespace gradcomp;

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const std::string fault = argc > 1 ? argv[1] : "late";
  const std::string mode = argc > 2 ? argv[2] : "allreduce";
  const int rc = abort_on_error(MPI_COMM_WORLD, [&] {
    mpi_communicator comm(MPI_COMM_WORLD, {std::chrono::milliseconds(500)});
    const bool faulty = comm.rank() == 1;
    const auto layout =
        model_layout::from_sizes(faulty && fault == "layout" ? std::vector<std::size_t>{300, 700}
                                                             : std::vector<std::size_t>{500, 500});
    using W = scheme<topk, layer_span>;
    using M = scheme<identity, flat_span>;
    mpi_cluster<W, M>::options opt;
    opt.seed = 3;
    opt.mode = mode == "ps"        ? topology::parameter_server
               : mode == "sharded" ? topology::sharded
                                   : topology::all_reduce;
    if (faulty && fault == "corrupt") {
      opt.on_send = [](std::span<std::byte> m) { m[m.size() / 2] ^= std::byte{1}; };
    }
    mpi_cluster<W, M> cluster(W{{0.1}}, M{}, layout, comm, opt);
    std::vector<float> g(1000), u(1000);
    for (std::uint64_t step = 0; step < 3; ++step) {
      for (std::size_t i = 0; i < g.size(); ++i) {
        g[i] = std::sin(static_cast<float>(i + 7 * step + comm.rank()));
      }
      if (faulty && step == 1 && fault == "nan") {
        g[10] = std::nanf("");
      }
      if (faulty && step == 1 && fault == "late") {
        std::this_thread::sleep_for(std::chrono::seconds(5));
      }
      cluster.step(cpu, std::span<const float>(g), step, 1.0f, std::span<float>(u));
      if (comm.rank() == 0) {
        std::printf("step %llu done\n", static_cast<unsigned long long>(step));
      }
    }
    std::printf("rank %zu: no fault happened\n", comm.rank());
    return 0;
  });
  MPI_Finalize();
  return rc;
}
