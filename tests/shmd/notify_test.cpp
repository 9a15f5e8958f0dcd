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
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SHMD_BINARY
#error "SHMD_BINARY must name the shmd executable (tests/shmd/CMakeLists.txt sets it)"
#endif

extern char** environ;

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct message {
  clock_type::time_point at;
  std::string text; // one VAR=value assignment
};

/// A temporary directory with the notify socket and shmd's config; the running daemon.
class daemon_under_test {
public:
  daemon_under_test() {
    char tmpl[] = "/tmp/shmd_notify_XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    const std::string notify = dir_ + "/notify.sock";
    notify_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    notify.copy(a.sun_path, sizeof a.sun_path - 1);
    if (notify_ < 0 || ::bind(notify_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      throw std::runtime_error("cannot bind " + notify);
    }
    // A small pool on normal pages, segments as memfds (nothing left behind).
    std::ofstream(dir_ + "/shmd.toml") << "[daemon]\n"
                                       << "socket = \"" << dir_ << "/shmd.sock\"\n"
                                       << "segment_dir = \"\"\n"
                                       << "hugepage_dir = \"\"\n"
                                       << "[[pool]]\n"
                                       << "name = \"notify\"\n"
                                       << "slot_size = 64\n"
                                       << "capacity = 4096\n"
                                       << "hugepages = \"off\"\n";
    env_.push_back("NOTIFY_SOCKET=" + notify);
  }
  ~daemon_under_test() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(notify_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  daemon_under_test(const daemon_under_test&) = delete;
  daemon_under_test& operator=(const daemon_under_test&) = delete;

  /// Starts shmd. `watchdog_usec` > 0 sets WATCHDOG_USEC; WATCHDOG_PID is the daemon's
  /// own pid unless `watchdog_pid_other`, then pid 1 (a watchdog meant for another).
  void start(unsigned watchdog_usec, bool watchdog_pid_other = false) {
    if (watchdog_usec > 0) env_.push_back("WATCHDOG_USEC=" + std::to_string(watchdog_usec));
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view v(*e);
      if (v.rfind("NOTIFY_SOCKET=", 0) != 0 && v.rfind("WATCHDOG_", 0) != 0) env.emplace_back(v);
    }
    env.insert(env.end(), env_.begin(), env_.end());
    // WATCHDOG_PID is only known in the child, after fork: its digits are written into
    // this buffer there (no allocation between fork and exec).
    std::string pid_var =
        watchdog_pid_other ? "WATCHDOG_PID=1" : "WATCHDOG_PID=" + std::string(20, '\0');
    std::vector<char*> envp;
    for (auto& s : env)
      envp.push_back(s.data());
    envp.push_back(pid_var.data());
    envp.push_back(nullptr);
    const std::string config = dir_ + "/shmd.toml";
    const std::string bin = SHMD_BINARY;
    std::vector<char*> argv{const_cast<char*>(bin.c_str()), const_cast<char*>("--config"),
                            const_cast<char*>(config.c_str()), nullptr};
    pid_ = ::fork();
    if (pid_ == 0) {
      if (!watchdog_pid_other) write_digits(pid_var.data() + 13, static_cast<unsigned>(::getpid()));
      ::execve(bin.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    ASSERT_GT(pid_, 0) << "fork failed";
  }

  /// Collects messages until `until` holds for one, `within` passes, or shmd exits.
  /// Returns whether `until` was met.
  template <class Pred> bool collect(std::chrono::milliseconds within, Pred until) {
    const auto end = clock_type::now() + within;
    for (auto now = clock_type::now(); now < end; now = clock_type::now()) {
      pollfd p{notify_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - now);
      if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count() + 1, 50))) <= 0) {
        if (exited()) return false;
        continue;
      }
      char buf[4096];
      const ssize_t n = ::recv(notify_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      const auto at = clock_type::now();
      std::string all(buf, static_cast<std::size_t>(n));
      bool met = false;
      for (std::size_t b = 0; b < all.size();) { // one datagram may carry several lines
        std::size_t e = all.find('\n', b);
        if (e == std::string::npos) e = all.size();
        if (e > b) {
          got_.push_back({at, all.substr(b, e - b)});
          met = met || until(got_.back().text);
        }
        b = e + 1;
      }
      if (met) return true;
    }
    return false;
  }
  bool collect_for(std::chrono::milliseconds d) {
    return collect(d, [](const std::string&) { return false; });
  }

  void terminate() { ::kill(pid_, SIGTERM); }
  /// The exit status once shmd exited within `within`, else -1.
  int wait_exit(std::chrono::milliseconds within) {
    const auto end = clock_type::now() + within;
    while (clock_type::now() < end) {
      if (exited()) return status_;
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

  [[nodiscard]] const std::vector<message>& messages() const { return got_; }

private:
  static void write_digits(char* out, unsigned v) {
    char tmp[20];
    int n = 0;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0)
      *out++ = tmp[--n];
    *out = '\0';
  }
  bool exited() {
    if (pid_ <= 0) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return false;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    pid_ = -1;
    return true;
  }

  std::string dir_;
  int notify_ = -1;
  std::vector<std::string> env_;
  pid_t pid_ = -1;
  int status_ = -1;
  std::vector<message> got_;
};

bool is(const std::string& text, const char* what) { return text == what; }
bool starts(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

std::string dump(const std::vector<message>& ms) {
  std::string s;
  const auto t0 = ms.empty() ? clock_type::now() : ms.front().at;
  for (const auto& m : ms) {
    s += "  +" +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(m.at - t0).count()) +
         " ms " + m.text + "\n";
  }
  return s;
}

TEST(notify, ready_status_watchdog_stopping_in_order_and_on_time) {
  daemon_under_test d;
  ASSERT_NO_FATAL_FAILURE(d.start(200000)); // WatchdogSec=200ms: a ping every ~100 ms
  ASSERT_TRUE(d.collect(20s, [](const std::string& t) { return is(t, "READY=1"); }))
      << "no READY=1 within 20 s:\n"
      << dump(d.messages());
  const auto ready_at = d.messages().back().at;
  // The worker publishes STATUS= every second; the watchdog pings meanwhile.
  d.collect_for(2500ms);
  d.terminate();
  const auto term_at = clock_type::now();
  ASSERT_TRUE(d.collect(10s, [](const std::string& t) { return is(t, "STOPPING=1"); }))
      << "no STOPPING=1 within 10 s of SIGTERM:\n"
      << dump(d.messages());
  EXPECT_EQ(d.wait_exit(10s), 0) << "shmd did not exit cleanly on SIGTERM";
  d.collect_for(300ms); // nothing may follow STOPPING=1

  const auto& ms = d.messages();
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

TEST(notify, no_watchdog_pings_when_it_is_meant_for_another_process) {
  daemon_under_test d;
  ASSERT_NO_FATAL_FAILURE(d.start(200000, /*watchdog_pid_other=*/true));
  ASSERT_TRUE(d.collect(20s, [](const std::string& t) { return is(t, "READY=1"); }))
      << dump(d.messages());
  d.collect_for(1000ms);
  d.terminate();
  ASSERT_TRUE(d.collect(10s, [](const std::string& t) { return is(t, "STOPPING=1"); }))
      << dump(d.messages());
  EXPECT_EQ(d.wait_exit(10s), 0);
  for (const auto& m : d.messages())
    EXPECT_NE(m.text, "WATCHDOG=1") << dump(d.messages());
}

TEST(notify, no_watchdog_pings_without_watchdog_usec) {
  daemon_under_test d;
  ASSERT_NO_FATAL_FAILURE(d.start(0));
  ASSERT_TRUE(d.collect(20s, [](const std::string& t) { return is(t, "READY=1"); }))
      << dump(d.messages());
  d.collect_for(1000ms);
  d.terminate();
  ASSERT_TRUE(d.collect(10s, [](const std::string& t) { return is(t, "STOPPING=1"); }))
      << dump(d.messages());
  EXPECT_EQ(d.wait_exit(10s), 0);
  for (const auto& m : d.messages())
    EXPECT_NE(m.text, "WATCHDOG=1") << dump(d.messages());
}

} // namespace
