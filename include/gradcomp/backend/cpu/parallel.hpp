// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../tags.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

/// @file
/// How the CPU primitives use more than one thread (cpu_policy::threads): a call's items (code
/// blocks, reduction chunks, groups, filter chunks) are cut into contiguous parts of at least
/// `min_items`, at most one per thread; part 0 runs on the calling thread, the others on worker
/// threads, and the call returns when all parts are done. Each part writes only its
/// own outputs, and callers combine per-part results in part order, so the result is the same
/// for every thread count. Workers come from a pool kept for the program (cpu_worker_pool).

namespace gradcomp::detail {

/// The thread count a policy stands for (0: the hardware's, at least 1).
[[nodiscard]] inline unsigned policy_threads(const cpu_policy& exec) noexcept {
  if (exec.threads != 0) {
    return exec.threads;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

/// How many parts parallel_parts() cuts `count` items into.
[[nodiscard]] inline std::size_t part_count(const cpu_policy& exec, std::size_t count,
                                            std::size_t min_items) noexcept {
  const std::size_t by_size = count / std::max<std::size_t>(min_items, 1);
  return std::max<std::size_t>(1, std::min<std::size_t>(policy_threads(exec), by_size));
}

/// Busy-waits (with a pause hint) up to about 50 microseconds for done() to hold: waking a thread
/// that sleeps takes tens of microseconds, more than a layer's share of work.
template <class Done>
bool spin_until(Done&& done) noexcept {
  for (int i = 0; i < 1024; ++i) {
    if (done()) {
      return true;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }
  return done();
}

/// Worker threads kept for the whole program, so a call that splits (two passes per layer, 161
/// layers in ResNet-50) pays neither a thread start nor, between back-to-back calls, a sleep:
/// workers spin briefly before they block. One caller at a time uses it; run() answers false
/// when another caller, or the same one nested, holds it (that caller starts its own threads).
class cpu_worker_pool {
public:
  static cpu_worker_pool& instance() {
    static cpu_worker_pool pool;
    return pool;
  }
  cpu_worker_pool() = default;
  cpu_worker_pool(const cpu_worker_pool&) = delete;
  cpu_worker_pool& operator=(const cpu_worker_pool&) = delete;
  ~cpu_worker_pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) {
      t.join();
    }
  }

  /// Runs job(1) .. job(parts - 1) on pool workers and job(0) on the calling thread; returns
  /// when all are done. job must not throw. False (nothing run) if the pool is busy or cannot
  /// start its workers.
  template <class Job>
  bool run(std::size_t parts, Job& job) {
    bool idle = false;
    if (!busy_.compare_exchange_strong(idle, true)) {
      return false;
    }
    struct release {
      std::atomic<bool>& busy;
      ~release() { busy = false; }
    } owner{busy_};
    if (!ensure_workers(parts - 1)) {
      return false;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      call_ = [](void* j, std::size_t p) { (*static_cast<Job*>(j))(p); };
      parts_ = parts;
      pending_.store(parts - 1);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    job(std::size_t{0});
    if (!spin_until([this] { return pending_.load() == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return pending_.load() == 0; });
    }
    return true;
  }

private:
  bool ensure_workers(std::size_t count) {
    try {
      while (workers_.size() < count) {
        const std::uint64_t now = generation_.load();
        workers_.emplace_back([this, part = workers_.size() + 1, now] { work(part, now); });
      }
    } catch (...) { // no more threads: the caller falls back
      return false;
    }
    return true;
  }
  /// Worker `part`: runs its part of every job announced after generation `seen`.
  void work(std::size_t part, std::uint64_t seen) {
    for (;;) {
      const auto announced = [&] { return stop_.load() || generation_.load() != seen; };
      if (!spin_until(announced)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, announced);
      }
      if (stop_.load()) {
        return;
      }
      // the job of one generation, read together: a worker that sits out a job with fewer parts
      // must not mistake the next job's part count for this one's (it would run a part twice)
      std::size_t parts = 0;
      void* job = nullptr;
      void (*call)(void*, std::size_t) = nullptr;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        seen = generation_.load();
        parts = parts_;
        job = job_;
        call = call_;
      }
      if (part >= parts) {
        continue;
      }
      call(job, part);
      if (pending_.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lock(mutex_); // the caller may be about to wait
        done_.notify_one();
      }
    }
  }

  std::atomic<bool> busy_{false}; // set by the caller using the pool
  std::mutex mutex_;              // announcing a job, stopping, sleeping
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  // the job: written with generation_ under mutex_, read by workers under mutex_
  void* job_ = nullptr;
  void (*call_)(void*, std::size_t) = nullptr;
  std::size_t parts_ = 0;
  std::atomic<std::size_t> pending_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

/// Runs f(begin, end, part) for the parts of [0, count) (part_count() of them, sizes differing
/// by at most one item) and returns when all are done: on the pool's workers, or on threads
/// started for the call when the pool is in use. An exception thrown by a part is rethrown
/// after every part has finished (the lowest part's, if several throw).
template <class F>
void parallel_parts(const cpu_policy& exec, std::size_t count, std::size_t min_items, F&& f) {
  const std::size_t parts = part_count(exec, count, min_items);
  const auto bound = [&](std::size_t p) { return count / parts * p + std::min(p, count % parts); };
  if (parts == 1) {
    f(std::size_t{0}, count, std::size_t{0});
    return;
  }
  std::vector<std::exception_ptr> errors(parts);
  auto run_part = [&](std::size_t p) {
    try {
      f(bound(p), bound(p + 1), p);
    } catch (...) {
      errors[p] = std::current_exception();
    }
  };
  if (!cpu_worker_pool::instance().run(parts, run_part)) {
    std::vector<std::thread> threads;
    threads.reserve(parts - 1);
    try {
      for (std::size_t p = 1; p < parts; ++p) {
        threads.emplace_back(run_part, p);
      }
    } catch (...) { // could not start a thread: the calling thread does the remaining parts
      for (std::size_t p = threads.size() + 1; p < parts; ++p) {
        run_part(p);
      }
    }
    run_part(0);
    for (std::thread& t : threads) {
      t.join();
    }
  }
  for (const std::exception_ptr& e : errors) {
    if (e) {
      std::rethrow_exception(e);
    }
  }
}

/// parallel_parts() for parts that each return a value (f(begin, end)), folded in part order
/// by combine, starting from init; a call that runs as one part allocates nothing.
template <class R, class F, class Combine>
R parallel_reduce(const cpu_policy& exec, std::size_t count, std::size_t min_items, R init, F&& f,
                  Combine&& combine) {
  const std::size_t parts = part_count(exec, count, min_items);
  if (parts == 1) {
    return combine(init, f(std::size_t{0}, count));
  }
  std::vector<R> results(parts, init);
  parallel_parts(exec, count, min_items,
                 [&](std::size_t b, std::size_t e, std::size_t p) { results[p] = f(b, e); });
  for (const R& r : results) {
    init = combine(init, r);
  }
  return init;
}

} // namespace gradcomp::detail
