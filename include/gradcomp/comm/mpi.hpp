// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"
#include "exchange_envelope.hpp"

// the C API only: OpenMPI's deprecated C++ bindings do not compile warning-free
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <mpi.h>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

/// @file
/// The MPI transport of the distributed framework (comm/mpi_cluster.hpp): the collectives a step
/// of Algorithm 1 needs, on host buffers, each bounded by a timeout. It works on a duplicate of
/// the caller's communicator (no tag or ordering clash with the trainer's own traffic), with
/// MPI_ERRORS_RETURN so an MPI failure is a named gradcomp error (transport_error).
///
/// Every exchange posts non-blocking operations and polls them until they complete or the
/// timeout passes. Envelopes travel point to point, so a timeout names the ranks whose envelope
/// did not arrive (errc::timeout). Messages then travel by MPI_Iallgatherv, MPI_Igatherv and
/// MPI_Ibcast with the sizes the envelopes announced. After a timeout or a transport error
/// operations may still be pending: the communicator refuses further use (protocol_error) and the
/// job should end (MPI_Abort; see abort_on_error below). A checked mismatch or a rejected message
/// leaves nothing pending: every rank throws and the communicator stays usable.
///
/// MPI counts are int: one message may not exceed INT_MAX bytes, nor the sum of one exchange's
/// messages (an error names the size; MPI-4 large counts are not in Debian's OpenMPI 4.1).

namespace gradcomp {

class mpi_communicator {
public:
  struct options {
    std::chrono::milliseconds timeout{std::chrono::seconds(120)};
  };

  /// Duplicates `comm`. MPI must be initialized.
  explicit mpi_communicator(MPI_Comm comm) : mpi_communicator(comm, options{}) {}
  mpi_communicator(MPI_Comm comm, options opt) : opt_(opt) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    detail::require(initialized != 0, errc::protocol_error,
                    "mpi_communicator needs MPI_Init first");
    check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  mpi_communicator(const mpi_communicator&) = delete;
  mpi_communicator& operator=(const mpi_communicator&) = delete;
  ~mpi_communicator() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm_ != MPI_COMM_NULL && finalized == 0 && !broken_) {
      MPI_Comm_free(&comm_);
    }
  }

  [[nodiscard]] std::size_t rank() const noexcept { return static_cast<std::size_t>(rank_); }
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(size_); }
  [[nodiscard]] std::chrono::milliseconds timeout() const noexcept { return opt_.timeout; }
  [[nodiscard]] MPI_Comm native() const noexcept { return comm_; }

  /// Every rank's envelope on every rank (index = rank), point to point.
  std::vector<exchange_envelope> exchange_envelopes(const exchange_envelope& mine) {
    return envelopes_p2p(mine, all_ranks);
  }

  /// Every rank's envelope at `root`; elsewhere only the caller's own (at its index).
  std::vector<exchange_envelope> gather_envelopes(const exchange_envelope& mine, std::size_t root) {
    return envelopes_p2p(mine, static_cast<int>(root));
  }

  /// The root's envelope on every rank.
  exchange_envelope broadcast_envelope(const exchange_envelope& e, std::size_t root) {
    usable();
    auto bytes = e.serialize();
    MPI_Request req = MPI_REQUEST_NULL;
    check(MPI_Ibcast(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, root_int(root), comm_,
                     &req),
          "MPI_Ibcast");
    wait(std::span<MPI_Request>(&req, 1),
         [&] { return "the verdict of root rank " + std::to_string(root) + " did not arrive"; });
    return exchange_envelope::parse(std::span<const std::byte, envelope_bytes>(bytes), root);
  }

  /// All ranks' messages, back to back in rank order, into `out`; sizes[r] = rank r's bytes
  /// (announced by its envelope). Returns the offsets (size + 1 entries).
  std::vector<std::size_t> allgatherv(std::span<const std::byte> mine,
                                      std::span<const std::size_t> sizes,
                                      std::vector<std::byte>& out) {
    usable();
    const auto [counts, displs, offsets] = layout_of(sizes);
    detail::require(mine.size() == sizes[rank()], errc::size_mismatch,
                    "this rank's message has " + std::to_string(mine.size()) +
                        " bytes, its envelope announced " + std::to_string(sizes[rank()]));
    out.resize(offsets.back());
    MPI_Request req = MPI_REQUEST_NULL;
    check(MPI_Iallgatherv(mine.data(), counts[rank()], MPI_BYTE, out.data(), counts.data(),
                          displs.data(), MPI_BYTE, comm_, &req),
          "MPI_Iallgatherv");
    wait(std::span<MPI_Request>(&req, 1), [] {
      return std::string(
          "the allgatherv of messages did not complete (every envelope had arrived)");
    });
    return offsets;
  }

  /// The messages at `root` as allgatherv; elsewhere `out` is left empty. `sizes` is read at the
  /// root only.
  std::vector<std::size_t> gatherv(std::span<const std::byte> mine,
                                   std::span<const std::size_t> sizes, std::size_t root,
                                   std::vector<std::byte>& out) {
    usable();
    const bool at_root = rank() == root;
    std::vector<int> counts, displs;
    std::vector<std::size_t> offsets;
    if (at_root) {
      auto l = layout_of(sizes);
      counts = std::move(l.counts);
      displs = std::move(l.displs);
      offsets = std::move(l.offsets);
      out.resize(offsets.back());
    }
    detail::require(mine.size() <= INT_MAX, errc::invalid_parameter,
                    "message of " + std::to_string(mine.size()) + " bytes exceeds MPI's int count");
    MPI_Request req = MPI_REQUEST_NULL;
    check(MPI_Igatherv(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, out.data(),
                       counts.data(), displs.data(), MPI_BYTE, root_int(root), comm_, &req),
          "MPI_Igatherv");
    wait(std::span<MPI_Request>(&req, 1), [&] {
      return "the gather of messages to root rank " + std::to_string(root) + " did not complete";
    });
    return offsets;
  }

  /// The root's buffer into every rank's `buf` (already sized by the root's verdict).
  void broadcast(std::span<std::byte> buf, std::size_t root) {
    usable();
    detail::require(buf.size() <= INT_MAX, errc::invalid_parameter,
                    "broadcast of " + std::to_string(buf.size()) +
                        " bytes exceeds MPI's int count");
    MPI_Request req = MPI_REQUEST_NULL;
    check(
        MPI_Ibcast(buf.data(), static_cast<int>(buf.size()), MPI_BYTE, root_int(root), comm_, &req),
        "MPI_Ibcast");
    wait(std::span<MPI_Request>(&req, 1), [&] {
      return "the broadcast from root rank " + std::to_string(root) + " did not complete";
    });
  }

  /// Elementwise maximum over ranks, in place.
  void allreduce_max(std::span<float> v) {
    usable();
    detail::require(v.size() <= INT_MAX, errc::invalid_parameter, "allreduce of too many floats");
    MPI_Request req = MPI_REQUEST_NULL;
    check(MPI_Iallreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_FLOAT, MPI_MAX,
                         comm_, &req),
          "MPI_Iallreduce");
    wait(std::span<MPI_Request>(&req, 1),
         [] { return std::string("the allreduce of scales did not complete"); });
  }

private:
  static constexpr int all_ranks = -1;
  static constexpr int envelope_tag = 0x4743; // "GC"

  struct message_layout {
    std::vector<int> counts, displs;
    std::vector<std::size_t> offsets;
  };

  message_layout layout_of(std::span<const std::size_t> sizes) const {
    detail::require(sizes.size() == size(), errc::size_mismatch,
                    std::to_string(sizes.size()) + " message sizes for " + std::to_string(size()) +
                        " ranks");
    message_layout l;
    l.offsets.assign(1, 0);
    for (std::size_t r = 0; r < sizes.size(); ++r) {
      detail::require(sizes[r] <= INT_MAX && l.offsets.back() + sizes[r] <= INT_MAX,
                      errc::invalid_parameter,
                      "the messages of one exchange total more than MPI's int count (INT_MAX "
                      "bytes) at rank " +
                          std::to_string(r));
      l.counts.push_back(static_cast<int>(sizes[r]));
      l.displs.push_back(static_cast<int>(l.offsets.back()));
      l.offsets.push_back(l.offsets.back() + sizes[r]);
    }
    return l;
  }

  int root_int(std::size_t root) const {
    detail::require(root < size(), errc::invalid_parameter,
                    "root rank " + std::to_string(root) + " of " + std::to_string(size()));
    return static_cast<int>(root);
  }

  /// Sends `mine` to every other rank (to == all_ranks) or to `to`, and receives every other
  /// rank's envelope where this rank is a receiver; the result is indexed by rank.
  std::vector<exchange_envelope> envelopes_p2p(const exchange_envelope& mine, int to) {
    usable();
    const bool receiver = to == all_ranks || to == rank_;
    std::vector<exchange_envelope::bytes> in(receiver ? size() : 0);
    const auto out = mine.serialize();
    std::vector<MPI_Request> reqs;
    std::vector<int> peer;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) {
        continue;
      }
      if (receiver) {
        reqs.emplace_back();
        peer.push_back(r);
        check(MPI_Irecv(in[static_cast<std::size_t>(r)].data(), static_cast<int>(envelope_bytes),
                        MPI_BYTE, r, envelope_tag, comm_, &reqs.back()),
              "MPI_Irecv");
      }
      if (to == all_ranks || to == r) {
        reqs.emplace_back();
        peer.push_back(-1 - r);
        check(MPI_Isend(out.data(), static_cast<int>(envelope_bytes), MPI_BYTE, r, envelope_tag,
                        comm_, &reqs.back()),
              "MPI_Isend");
      }
    }
    wait(
        std::span<MPI_Request>(reqs), [&] { return missing_ranks(reqs, peer); }, true);
    std::vector<exchange_envelope> envs(size());
    envs[rank()] = mine;
    for (std::size_t r = 0; r < in.size(); ++r) {
      if (r != rank()) {
        envs[r] = exchange_envelope::parse(in[r], r);
      }
    }
    return envs;
  }

  /// "no envelope from rank 2, 3 within 1000 ms" for the receives still pending.
  std::string missing_ranks(const std::vector<MPI_Request>& reqs,
                            const std::vector<int>& peer) const {
    std::string recv, send;
    for (std::size_t i = 0; i < reqs.size(); ++i) {
      if (reqs[i] == MPI_REQUEST_NULL) {
        continue;
      }
      std::string& list = peer[i] >= 0 ? recv : send;
      list += (list.empty() ? "" : ", ") + std::to_string(peer[i] >= 0 ? peer[i] : -1 - peer[i]);
    }
    if (!recv.empty()) {
      return "rank " + std::to_string(rank_) + " got no envelope from rank " + recv;
    }
    return "rank " + std::to_string(rank_) + "'s envelope was not taken by rank " + send;
  }

  /// Polls `reqs` until all complete (completed ones become MPI_REQUEST_NULL) or the timeout
  /// passes: then errc::timeout with describe()'s text, the point-to-point operations are
  /// cancelled, and the communicator is broken.
  template <class Describe>
  void wait(std::span<MPI_Request> reqs, Describe&& describe, bool point_to_point = false) {
    const auto deadline = std::chrono::steady_clock::now() + opt_.timeout;
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
        return;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        broken_ = true;
        const std::string what = describe();
        if (point_to_point) {
          cancel_pending(reqs);
        }
        detail::fail(errc::timeout,
                     what + " within " + std::to_string(opt_.timeout.count()) + " ms");
      }
      if (polls > 2000) { // a peer is late: stop spinning on a core the others may need
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }

  /// After a timeout: cancels the pending point-to-point operations, so no late envelope is
  /// written into a buffer that is gone (collectives cannot be cancelled: the communicator stays
  /// broken).
  static void cancel_pending(std::span<MPI_Request> reqs) noexcept {
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

  void usable() const {
    detail::require(!broken_, errc::protocol_error,
                    "this communicator failed earlier (timeout or transport error) and may have "
                    "operations pending; end the job (MPI_Abort)");
  }

  void check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) {
      return;
    }
    broken_ = true;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    detail::fail(errc::transport_error, std::string(call) + " failed: " + std::string(text, len));
  }

  options opt_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  bool broken_ = false;
};

/// Runs `body()`; on a gradcomp error (or any exception) prints "rank R: what" to stderr and
/// calls MPI_Abort, so a failure on one rank ends the whole job instead of leaving the others
/// waiting. Returns body()'s result otherwise.
template <class Body>
int abort_on_error(MPI_Comm comm, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    int rank = -1;
    MPI_Comm_rank(comm, &rank);
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    std::fflush(stderr);
    MPI_Abort(comm, 3);
    return 3;
  }
}

} // namespace gradcomp
