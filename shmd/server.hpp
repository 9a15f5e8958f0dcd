// The daemon's event loop: the listening socket, the signals that stop it, and the
// wake-ups of the worker, all on one poller. What the connections ask is control's job
// (control.hpp); what is slow is the worker's (worker.hpp).
//
// One thread runs the loop and never blocks on a client. Growth (prefaulting hundreds
// of MiB) and reclaim run on the worker thread, never in the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <slab/platform/events.hpp>
#include <slab/platform/segment.hpp>

#include "config.hpp"
#include "control.hpp"
#include "pool_owner.hpp"
#include "watchdog.hpp"
#include "worker.hpp"

namespace shmd {

class server {
public:
  /// Throws slab::error when the loop's descriptors (epoll, eventfd) cannot be had.
  server(daemon_config cfg, std::vector<std::unique_ptr<pool_owner>> pools);
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds the socket; throws slab::error with the path and the reason on failure.
  void listen();
  /// Runs until SIGTERM or SIGINT; returns the process exit code.
  int run();

private:
  void start();
  void accept_clients();
  void shed_connection();  ///< out of descriptors: takes one waiting connection and refuses it
  void pause_accepting();  ///< no spare either: the listening socket off the poller for 100 ms
  void resume_accepting(); ///< back on the poller once the pause is over
  [[nodiscard]] int accept_pause_ms() const; ///< until then, for the loop's wait; -1: none
  [[nodiscard]] bool stop_signalled();       ///< reads the signalfd; true for SIGTERM or SIGINT

  // Declared in the order they are built; destroyed the other way round, so the worker
  // thread stops before the pools, the poller and the watchdog it uses go away.
  daemon_config cfg_;
  std::vector<std::unique_ptr<pool_owner>> pools_;
  slab::platform::poller events_;
  watchdog watchdog_; // WATCHDOG=1 while the main loop and the worker both make progress
  worker worker_;
  control control_;
  slab::platform::unique_fd listen_;
  slab::platform::unique_fd spare_; // given up to accept a connection at EMFILE (accept_clients)
  std::chrono::steady_clock::time_point shed_logged_;
  std::uint64_t shed_unlogged_ = 0;
  bool accept_paused_ = false;
  std::chrono::steady_clock::time_point accept_resume_at_;
  std::uint64_t fd_limit_ = 0; // RLIMIT_NOFILE, raised to its hard limit by listen()
  std::optional<slab::platform::signal_fd> signals_;
};

} // namespace shmd
