// The systemd watchdog: WATCHDOG=1 pings that mean the daemon is really alive.
//
// With WatchdogSec= systemd kills and restarts a service that stops pinging. A thread
// that pinged on a timer alone would keep a daemon whose event loop is stuck looking
// healthy, so the pinger first checks two heartbeats: the main loop's (it wakes at
// least every loop_timeout_ms(), even with no client) and the worker's (it wakes every
// millisecond). It pings every half interval while both advanced since its last ping.
// When one did not, it skips the ping, logs which one once, and checks again every
// eighth of the interval: a short stall costs a late ping, a stall as long as the
// interval gets the daemon restarted, which is the point.
//
// Threads: beat_main() from the main loop, beat_worker() from the worker, the rest from
// the main thread. start() after READY=1 (systemd arms the watchdog once start-up is
// complete); stop() before STOPPING=1, so that no ping follows it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace shmd {

class watchdog {
public:
  /// What systemd asked for: WATCHDOG_USEC when WATCHDOG_PID is unset or this process
  /// (sd_watchdog_enabled), else zero (disabled).
  static std::chrono::microseconds interval_from_environment() noexcept;

  /// Disabled when `interval` is zero.
  explicit watchdog(std::chrono::microseconds interval = interval_from_environment()) noexcept
      : interval_(interval) {}
  ~watchdog() { stop(); }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  [[nodiscard]] bool enabled() const noexcept { return interval_.count() > 0; }
  [[nodiscard]] std::chrono::microseconds interval() const noexcept { return interval_; }
  /// The longest the main loop may sleep in epoll_wait: a quarter of the interval
  /// (at least 1 ms), or -1 (no limit) when disabled.
  [[nodiscard]] int loop_timeout_ms() const noexcept;

  void beat_main() noexcept { main_.fetch_add(1, std::memory_order_relaxed); }
  void beat_worker() noexcept { worker_.fetch_add(1, std::memory_order_relaxed); }

  /// Starts the pinging thread; does nothing when disabled or already started.
  void start();
  /// Stops it (idempotent); no ping is sent once this returns.
  void stop() noexcept;

  /// Pings sent so far (for tests and the log).
  [[nodiscard]] std::uint64_t pings() const noexcept {
    return pings_.load(std::memory_order_relaxed);
  }

private:
  void run();

  const std::chrono::microseconds interval_;
  // Relaxed: a counter only has to move; nothing else is published through it.
  std::atomic<std::uint64_t> main_{0}, worker_{0}, pings_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace shmd
