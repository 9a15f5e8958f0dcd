// The worker thread: everything slow that the event loop must never wait for. It
// reclaims the contexts of clients that closed them or died, grows pools ahead of demand
// (prefaulting a tier can take hundreds of milliseconds), and publishes STATUS= once a
// second. The loop hands it work through queue_reclaim and nudge_growth; it answers
// through a wakeup the loop polls (done_fd), for closes whose client waits for `closed`.
//
// Threads: the loop thread calls everything here but round(); the worker thread runs
// round() in a loop. The worker alone uses each pool's daemon context (record 0).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <slab/platform/events.hpp>

#include "pool_owner.hpp"
#include "watchdog.hpp"

namespace shmd {

/// A context of a pool, as the loop tracks it per connection.
struct context_ref {
  std::uint32_t pool, ctx;
  std::uint64_t reply_to = 0; ///< serial of a connection awaiting `closed`, 0: none
};

class worker {
public:
  /// Throws slab::error when the wakeup (eventfd) cannot be had.
  worker(std::vector<std::unique_ptr<pool_owner>>& pools, watchdog& beats);
  ~worker(); ///< stops the thread and waits for it
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  /// Starts the thread. Signals the process must not take on this thread are blocked
  /// before this call: the thread inherits the caller's mask.
  void start();

  /// Reclaims these contexts, in order; those with a reply_to come back from
  /// take_closed once their record is free again.
  void queue_reclaim(const std::vector<context_ref>& refs);
  /// A client ran dry: grow `pool` now, whatever its occupancy.
  void nudge_growth(std::uint32_t pool);

  /// Readable (poll it) once closes have been reclaimed.
  [[nodiscard]] int done_fd() const noexcept { return done_.fd(); }
  /// The closes reclaimed since the last call; makes done_fd unreadable again.
  [[nodiscard]] std::vector<context_ref> take_closed();

  /// One round of the thread's work (reclaims queued so far, then growth), on the calling
  /// thread. For tests and the fuzz target, which run the daemon's parts without the
  /// thread: never call it once start() has been.
  void run_pending();

  /// STATUS= with each pool's occupancy.
  void publish_status();

private:
  void loop();
  void round(std::unique_lock<std::mutex>& lk); // lk held on entry and on return
  [[nodiscard]] bool has_work() const;          // under mu_

  std::vector<std::unique_ptr<pool_owner>>& pools_;
  watchdog& beats_;
  slab::platform::wakeup done_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<context_ref> reclaims_;
  std::vector<context_ref> closed_; // reclaimed, `closed` still to send (loop thread)
  std::vector<bool> urgent_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace shmd
