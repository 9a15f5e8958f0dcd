// shmd's watchdog in-process: it pings systemd (here a socket standing in for it, named
// by NOTIFY_SOCKET) only while both heartbeats advance, stops pinging when either
// stalls, resumes when it recovers, and sends nothing once stopped. Bounds are loose
// (counts over windows, never exact instants) so that a loaded machine or a sanitizer
// does not fail it.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include <slabtest/shmd.hpp>

#include "shmd/watchdog.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

/// The stand-in for systemd's notify socket, exported as NOTIFY_SOCKET while it lives.
class notify_listener {
public:
  notify_listener() : socket_(dir_.file("notify.sock")) {
    ::setenv("NOTIFY_SOCKET", socket_.path().c_str(), 1);
  }
  ~notify_listener() { ::unsetenv("NOTIFY_SOCKET"); }
  notify_listener(const notify_listener&) = delete;
  notify_listener& operator=(const notify_listener&) = delete;

  /// WATCHDOG=1 datagrams received within `window`.
  int count_pings(std::chrono::milliseconds window) {
    std::vector<slabtest::notification> got;
    const auto end = clock_type::now() + window;
    for (auto now = clock_type::now(); now < end; now = clock_type::now()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - now);
      socket_.receive(got, left + 1ms);
    }
    return static_cast<int>(std::count_if(got.begin(), got.end(),
                                          [](const auto& n) { return n.text == "WATCHDOG=1"; }));
  }

private:
  slabtest::temp_dir dir_;
  slabtest::notify_socket socket_;
};

/// Beats the main and worker heartbeats every 5 ms, each while its flag is set.
class beater {
public:
  explicit beater(shmd::watchdog& w)
      : t_([this, &w] {
          while (!quit_.load()) {
            if (main_.load()) w.beat_main();
            if (worker_.load()) w.beat_worker();
            std::this_thread::sleep_for(5ms);
          }
        }) {}
  ~beater() {
    quit_.store(true);
    t_.join();
  }
  beater(const beater&) = delete;
  beater& operator=(const beater&) = delete;

  void main_alive(bool b) { main_.store(b); }
  void worker_alive(bool b) { worker_.store(b); }

private:
  std::atomic<bool> quit_{false}, main_{true}, worker_{true};
  std::thread t_;
};

TEST(watchdog, pings_while_both_heartbeats_advance_and_only_then) {
  notify_listener systemd;
  shmd::watchdog w(200ms); // pings every 100 ms when healthy
  ASSERT_TRUE(w.enabled());
  EXPECT_EQ(w.loop_timeout_ms(), 50);
  beater b(w);
  w.start();

  EXPECT_GE(systemd.count_pings(1000ms), 4) << "healthy: about 10 per second expected";

  b.main_alive(false);              // the main loop is stuck, the worker is fine
  (void)systemd.count_pings(300ms); // a ping already earned may still come
  EXPECT_EQ(systemd.count_pings(600ms), 0) << "pinged while the main loop made no progress";

  b.main_alive(true);
  b.worker_alive(false); // now the worker is stuck
  (void)systemd.count_pings(300ms);
  EXPECT_EQ(systemd.count_pings(600ms), 0) << "pinged while the worker made no progress";

  b.worker_alive(true);
  EXPECT_GE(systemd.count_pings(1000ms), 4) << "did not resume once both advanced again";

  w.stop();
  EXPECT_EQ(systemd.count_pings(400ms), 0) << "pinged after stop()";
  EXPECT_GE(w.pings(), 8U);
}

TEST(watchdog, disabled_without_an_interval) {
  shmd::watchdog w(0us);
  EXPECT_FALSE(w.enabled());
  EXPECT_EQ(w.loop_timeout_ms(), -1); // the main loop may sleep in epoll_wait for ever
  w.start();                          // does nothing
  w.beat_main();
  w.stop();
  EXPECT_EQ(w.pings(), 0U);
}

TEST(watchdog, interval_comes_from_systemd_only_for_this_process) {
  ::unsetenv("WATCHDOG_PID");
  ::unsetenv("WATCHDOG_USEC");
  EXPECT_EQ(shmd::watchdog::interval_from_environment(), 0us);

  ::setenv("WATCHDOG_USEC", "500000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  EXPECT_EQ(shmd::watchdog::interval_from_environment(), 500000us);

  // Meant for another process (systemd sets WATCHDOG_PID to the main pid): not ours.
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  EXPECT_EQ(shmd::watchdog::interval_from_environment(), 0us);

  ::unsetenv("WATCHDOG_PID");
  ::unsetenv("WATCHDOG_USEC");
}

} // namespace
