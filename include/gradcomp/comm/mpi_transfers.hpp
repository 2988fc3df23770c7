// SPDX-License-Identifier: Apache-2.0
#pragma once

// the C API only: OpenMPI's deprecated C++ bindings do not compile warning-free
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <mpi.h>
#include <span>
#include <string>
#include <thread>
#include <vector>

/// @file
/// The point-to-point operations an exchange of mpi_communicator (comm/mpi.hpp) posts: how a
/// transfer is cut into MPI messages of int counts, how the peers a timeout leaves pending are
/// named, and how pending operations are cancelled.

namespace gradcomp::detail {

/// One point-to-point operation of an exchange.
struct mpi_transfer {
  int peer;
  bool send;
  std::byte* data;
  std::size_t bytes;
};

/// The transfers cut into MPI messages of at most max_bytes (1 .. INT_MAX), in order; an empty
/// transfer stays one empty message.
[[nodiscard]] inline std::vector<mpi_transfer> in_chunks(const std::vector<mpi_transfer>& whole,
                                                         std::size_t max_bytes) {
  std::vector<mpi_transfer> out;
  out.reserve(whole.size());
  for (const mpi_transfer& t : whole) {
    std::size_t done = 0;
    do {
      const std::size_t b = std::min(t.bytes - done, max_bytes);
      out.push_back({t.peer, t.send, t.data + done, b});
      done += b;
    } while (done < t.bytes);
  }
  return out;
}

/// "rank 0 got no envelope from rank 2, 3" for the receives still pending (reqs[i] not
/// MPI_REQUEST_NULL), else "rank 0's envelope was not taken by rank 1" for the sends.
[[nodiscard]] inline std::string pending_peers(const std::vector<mpi_transfer>& ts,
                                               const std::vector<MPI_Request>& reqs,
                                               const char* what, int rank) {
  std::string recv, send;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i] != MPI_REQUEST_NULL) {
      std::string& list = ts[i].send ? send : recv;
      const std::string peer = std::to_string(ts[i].peer);
      const bool listed = list == peer || list.ends_with(", " + peer); // one name per chunked peer
      list += listed ? "" : (list.empty() ? "" : ", ") + peer;
    }
  }
  const std::string me = "rank " + std::to_string(rank);
  if (!recv.empty()) {
    return me + " got no " + what + " from rank " + recv;
  }
  return me + "'s " + what + " was not taken by rank " + send;
}

/// Polls `reqs` until all complete (true) or `deadline` passes (false). Each MPI_Test's return
/// code goes through check(rc, "MPI_Test"), which throws on failure. After 2000 polls a rank
/// that waits for a late peer sleeps between polls, leaving the core to the others.
template <class Check>
bool poll_until(std::span<MPI_Request> reqs, std::chrono::steady_clock::time_point deadline,
                Check&& check) {
  for (long polls = 0;; ++polls) {
    bool pending = false;
    for (MPI_Request& r : reqs) {
      if (r != MPI_REQUEST_NULL) { // MPI_Test sets a completed request to MPI_REQUEST_NULL
        int flag = 0;
        check(MPI_Test(&r, &flag, MPI_STATUS_IGNORE), "MPI_Test");
        pending = pending || r != MPI_REQUEST_NULL;
      }
    }
    if (!pending) {
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    if (polls > 2000) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

/// After a timeout: cancels the pending operations, so no late message is written into a buffer
/// that is gone.
inline void cancel_pending(std::span<MPI_Request> reqs) noexcept {
  for (MPI_Request& r : reqs) {
    if (r == MPI_REQUEST_NULL) {
      continue;
    }
    MPI_Cancel(&r);
    int flag = 0;
    MPI_Test(&r, &flag, MPI_STATUS_IGNORE);
    if (flag == 0) {
      MPI_Request_free(&r);
    }
  }
}

} // namespace gradcomp::detail
