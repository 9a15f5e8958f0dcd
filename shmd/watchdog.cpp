#include "watchdog.hpp"

#include <algorithm>
#include <string>

#include "log.hpp"
#include "systemd.hpp"

namespace shmd {

std::chrono::microseconds watchdog::interval_from_environment() noexcept {
  return systemd::watchdog_interval();
}

int watchdog::loop_timeout_ms() const noexcept {
  if (!enabled()) return -1;
  const auto quarter = std::chrono::duration_cast<std::chrono::milliseconds>(interval_ / 4);
  return static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(quarter.count(), 1, 60'000));
}

void watchdog::start() {
  if (!enabled() || thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { run(); });
  log_info("watchdog: WatchdogSec=" + std::to_string(interval_.count() / 1000) +
           " ms; pinging every " + std::to_string(interval_.count() / 2000) +
           " ms while the main loop and the worker both make progress");
}

void watchdog::stop() noexcept {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void watchdog::run() {
  const auto period = std::chrono::duration_cast<std::chrono::microseconds>(interval_ / 2);
  const auto retry = std::max(std::chrono::duration_cast<std::chrono::microseconds>(interval_ / 8),
                              std::chrono::microseconds{1000});
  std::uint64_t seen_main = main_.load(std::memory_order_relaxed);
  std::uint64_t seen_worker = worker_.load(std::memory_order_relaxed);
  auto wait = period;
  bool stalled = false;
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    if (cv_.wait_for(lk, wait, [this] { return stop_; })) return;
    const std::uint64_t m = main_.load(std::memory_order_relaxed);
    const std::uint64_t w = worker_.load(std::memory_order_relaxed);
    if (m != seen_main && w != seen_worker) {
      // Under the lock: stop() returns only once no ping can follow.
      systemd::notify("WATCHDOG=1");
      pings_.fetch_add(1, std::memory_order_relaxed);
      seen_main = m;
      seen_worker = w;
      wait = period;
      if (stalled) log_notice("watchdog: the main loop and the worker make progress again");
      stalled = false;
      continue;
    }
    if (!stalled) {
      const std::string who = m == seen_main && w == seen_worker ? "the main loop and the worker"
                              : m == seen_main                   ? "the main loop"
                                                                 : "the worker";
      log_warning("watchdog: " + who + " made no progress for " +
                  std::to_string(period.count() / 1000) +
                  " ms; not pinging systemd (it restarts shmd if this lasts WatchdogSec)");
    }
    stalled = true;
    wait = retry;
  }
}

} // namespace shmd
