// shmd under a stand-in for systemd: the test binds the datagram socket that
// NOTIFY_SOCKET names, starts the daemon from this build tree with WATCHDOG_USEC and
// WATCHDOG_PID set as systemd sets them for a Type=notify service with WatchdogSec=,
// and checks what arrives: READY=1, then STATUS= with occupancy, WATCHDOG=1 at about
// the rate asked for, and STOPPING=1 on SIGTERM, last. Rates are checked as counts over
// windows ("at least 2 in a second"), never as instants.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include <slabtest/daemon.hpp>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using slabtest::notification;

/// shmd on a small pool of normal pages, segments as memfds (nothing left behind), its
/// notify socket read to the end; `watchdog_usec` > 0 sets WATCHDOG_USEC (WATCHDOG_PID
/// its own pid unless `for_another`, then pid 1: a watchdog meant for another process).
/// The constructor returns once READY=1 came (it throws if none within 20 s).
slabtest::daemon_cfg under_systemd(unsigned watchdog_usec, bool for_another = false) {
  slabtest::daemon_cfg cfg;
  cfg.pools[0].name = "notify";
  cfg.segment_dir = "";
  cfg.keep_notify = true;
  if (watchdog_usec > 0) cfg.watchdog_usec = watchdog_usec;
  cfg.watchdog_for_another = for_another;
  return cfg;
}

bool is(const std::string& text, const char* what) { return text == what; }
bool starts(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

std::string dump(const std::vector<notification>& ms) {
  std::string s;
  const auto t0 = ms.empty() ? clock_type::now() : ms.front().at;
  for (const auto& m : ms) {
    s += "  +" +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(m.at - t0).count()) +
         " ms " + m.text + "\n";
  }
  return s;
}

bool stopping(const std::string& t) { return is(t, "STOPPING=1"); }
bool nothing(const std::string&) { return false; }

TEST(notify, ready_status_watchdog_stopping_in_order_and_on_time) {
  slabtest::daemon d(under_systemd(200000)); // WatchdogSec=200ms: a ping every ~100 ms
  const std::vector<notification> first = d.notifications();
  const auto ready_note = std::find_if(first.begin(), first.end(),
                                       [](const notification& n) { return is(n.text, "READY=1"); });
  ASSERT_NE(ready_note, first.end()) << dump(first);
  const auto ready_at = ready_note->at;
  // The worker publishes STATUS= every second; the watchdog pings meanwhile.
  d.await_notification(nothing, 2500ms);
  d.signal(SIGTERM);
  const auto term_at = clock_type::now();
  ASSERT_TRUE(d.await_notification(stopping, 10s)) << "no STOPPING=1 within 10 s of SIGTERM:\n"
                                                   << dump(d.notifications());
  const slabtest::exit_status ended = d.wait_exit(10s);
  EXPECT_TRUE(ended.ok()) << "shmd did not exit cleanly on SIGTERM: " << ended.describe();
  d.await_notification(nothing, 300ms); // nothing may follow STOPPING=1

  const std::vector<notification> ms = d.notifications();
  const std::string all = dump(ms);
  std::size_t ready = ms.size(), status = ms.size(), stopping = ms.size();
  int pings = 0, pings_first_second = 0;
  for (std::size_t i = 0; i < ms.size(); ++i) {
    const std::string& t = ms[i].text;
    if (is(t, "READY=1")) {
      EXPECT_EQ(ready, ms.size()) << "READY=1 twice:\n" << all;
      ready = i;
    } else if (starts(t, "STATUS=") && ready < ms.size() && status == ms.size()) {
      status = i;
    } else if (is(t, "WATCHDOG=1")) {
      EXPECT_LT(ready, ms.size()) << "WATCHDOG=1 before READY=1:\n" << all;
      EXPECT_EQ(stopping, ms.size()) << "WATCHDOG=1 after STOPPING=1:\n" << all;
      ++pings;
      if (ms[i].at - ready_at <= 1s) ++pings_first_second;
    } else if (is(t, "STOPPING=1")) {
      stopping = i;
    }
  }
  ASSERT_LT(status, ms.size()) << "no STATUS= after READY=1:\n" << all;
  EXPECT_LT(ready, status);
  EXPECT_LT(status, stopping);
  EXPECT_EQ(stopping, ms.size() - 1) << "STOPPING=1 is not the last message:\n" << all;
  // Occupancy: "STATUS=notify 0.0% of 4096 slots live".
  const std::string& st = ms[status].text;
  EXPECT_NE(st.find("notify "), std::string::npos) << st;
  EXPECT_NE(st.find("% of "), std::string::npos) << st;
  EXPECT_NE(st.find(" slots live"), std::string::npos) << st;
  // About 10 per second asked for; loose bounds against a loaded machine.
  EXPECT_GE(pings_first_second, 2) << all;
  EXPECT_GE(pings, 5) << all;
  EXPECT_LE(pings, 100) << "pinging far more often than half the interval:\n" << all;
  EXPECT_LT(ms[stopping].at - term_at, 5s);
}

/// Runs shmd under `cfg` for a second and stops it: it must have sent no WATCHDOG=1.
void expect_no_pings(const slabtest::daemon_cfg& cfg) {
  slabtest::daemon d(cfg);
  d.await_notification(nothing, 1000ms);
  d.signal(SIGTERM);
  ASSERT_TRUE(d.await_notification(stopping, 10s)) << dump(d.notifications());
  EXPECT_TRUE(d.wait_exit(10s).ok());
  for (const notification& m : d.notifications())
    EXPECT_NE(m.text, "WATCHDOG=1") << dump(d.notifications());
}

TEST(notify, no_watchdog_pings_when_it_is_meant_for_another_process) {
  expect_no_pings(under_systemd(200000, /*for_another=*/true));
}

TEST(notify, no_watchdog_pings_without_watchdog_usec) { expect_no_pings(under_systemd(0)); }

} // namespace
