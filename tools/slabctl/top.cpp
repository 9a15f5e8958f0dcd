// slabctl top. Plain ANSI sequences (alternate screen, cursor home, erase to the end of
// line and of screen), so that it works on any terminal and over ssh; the terminal is
// put in non-canonical, no-echo mode to read single keys (ISIG stays on: Ctrl-C is
// SIGINT), and everything is put back on q, SIGINT, SIGTERM or SIGHUP. Signals are read
// from a signalfd, so no handler runs in the middle of a frame.
#include "top.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "snapshot.hpp"

namespace slabctl {
namespace {

constexpr const char* enter_screen = "\x1b[?1049h\x1b[?25l"; // alternate screen, hide cursor
constexpr const char* leave_screen = "\x1b[?25h\x1b[?1049l"; // show cursor, main screen
constexpr const char* home = "\x1b[H";
constexpr const char* erase_line = "\x1b[K";
constexpr const char* erase_below = "\x1b[J";

void write_all(const std::string& s) {
  const char* p = s.data();
  std::size_t n = s.size();
  while (n > 0) {
    const ssize_t w = ::write(STDOUT_FILENO, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

/// The terminal as it was, restored on destruction (whatever way top ends).
class terminal_guard {
public:
  terminal_guard() {
    if (::isatty(STDIN_FILENO) != 0 && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      restore_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    write_all(enter_screen);
  }
  ~terminal_guard() {
    write_all(leave_screen);
    if (restore_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  terminal_guard(const terminal_guard&) = delete;
  terminal_guard& operator=(const terminal_guard&) = delete;

private:
  termios saved_{};
  bool restore_ = false;
};

/// SIGINT, SIGTERM, SIGHUP and SIGWINCH as readable events; the old mask comes back.
class signal_events {
public:
  signal_events() {
    sigset_t set;
    sigemptyset(&set);
    for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGWINCH})
      sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, &old_);
    fd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  }
  ~signal_events() {
    if (fd_ >= 0) ::close(fd_);
    ::sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  signal_events(const signal_events&) = delete;
  signal_events& operator=(const signal_events&) = delete;
  [[nodiscard]] int fd() const noexcept { return fd_; }
  /// The next signal, 0 if none is pending.
  int next() const {
    signalfd_siginfo si{};
    return ::read(fd_, &si, sizeof si) == sizeof si ? static_cast<int>(si.ssi_signo) : 0;
  }

private:
  int fd_ = -1;
  sigset_t old_{};
};

unsigned columns() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

std::string bar(double fraction, unsigned width) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const auto full = static_cast<unsigned>(fraction * width + 0.5);
  std::string s(width + 2, '.');
  s.front() = '[';
  s.back() = ']';
  s.replace(1, full, full, '#');
  return s;
}

std::string rate(double per_s) {
  char b[32];
  if (per_s >= 1e6) {
    std::snprintf(b, sizeof b, "%.2fM/s", per_s / 1e6);
  } else if (per_s >= 1e3) {
    std::snprintf(b, sizeof b, "%.1fK/s", per_s / 1e3);
  } else {
    std::snprintf(b, sizeof b, "%.0f/s", per_s);
  }
  return b;
}

struct previous {
  std::uint64_t allocs = 0, frees = 0;
  std::chrono::steady_clock::time_point at;
};

class top_view {
public:
  top_view(std::string socket, std::chrono::milliseconds interval)
      : socket_(std::move(socket)), interval_(interval) {}

  std::string frame() {
    std::string out = home;
    const auto line = [&](const std::string& s) {
      out += s.substr(0, width_) + erase_line + "\r\n";
    };
    width_ = columns();
    char head[256];
    std::snprintf(head, sizeof head, "slabctl top - %s - every %.1f s - q quits",
                  local_time(now_unix_ns()).c_str(), static_cast<double>(interval_.count()) / 1e3);
    line(head);
    try {
      connect();
      const auto now = std::chrono::steady_clock::now();
      line("shmd " + d_.version + ", pid " + std::to_string(d_.pid) + ", at " + socket_);
      line("");
      const unsigned bw = width_ > 60 ? std::min(width_ - 50, 40U) : 10U;
      for (auto& w : watches_) {
        w->refresh();
        const pool_snapshot p = take_snapshot(*obs_, *w, false);
        previous& was = prev_[p.name];
        const double dt = std::chrono::duration<double>(now - was.at).count();
        const bool have_rate = was.at.time_since_epoch().count() != 0 && dt > 0;
        const double ar = have_rate ? static_cast<double>(p.allocs - was.allocs) / dt : 0;
        const double fr = have_rate ? static_cast<double>(p.frees - was.frees) / dt : 0;
        was = {p.allocs, p.frees, now};
        char b[512];
        std::snprintf(b, sizeof b, "%-12s %s %5.1f%%  live %llu of %llu (max %llu)", p.name.c_str(),
                      bar(p.occupancy(), bw).c_str(), p.occupancy() * 100.0,
                      static_cast<unsigned long long>(p.live),
                      static_cast<unsigned long long>(p.capacity),
                      static_cast<unsigned long long>(p.max_capacity));
        line(b);
        const std::size_t clients = p.contexts.empty() ? 0 : p.contexts.size() - 1;
        std::snprintf(b, sizeof b,
                      "%-12s allocs %s  frees %s  free: depot %llu, caches %llu, never used %llu"
                      "  contexts %zu  growth %zu",
                      "", have_rate ? rate(ar).c_str() : "-", have_rate ? rate(fr).c_str() : "-",
                      static_cast<unsigned long long>(p.free_depot),
                      static_cast<unsigned long long>(p.free_cached),
                      static_cast<unsigned long long>(p.never_used), clients,
                      p.tiers.empty() ? std::size_t{0} : p.tiers.size() - 1);
        line(b);
        for (const tier_snapshot& t : p.tiers) {
          const double occ =
              t.slots == 0 ? 0.0 : static_cast<double>(t.live) / static_cast<double>(t.slots);
          std::snprintf(b, sizeof b, "  tier %-6u %s %5.1f%%  %llu slots, %s pages%s%s", t.index,
                        bar(occ, bw).c_str(), occ * 100.0, static_cast<unsigned long long>(t.slots),
                        t.huge ? "huge" : "normal", t.locked ? ", mlocked" : ", NOT mlocked",
                        t.fallback ? ", hugepage fallback" : "");
          line(b);
        }
        for (const std::string& warn : p.warnings)
          line("  warning: " + warn);
        line("");
      }
    } catch (const slab::error& e) {
      drop();
      line("");
      line(std::string("slabctl: ") + e.what());
      line("retrying every " + std::to_string(interval_.count()) + " ms");
    }
    out += erase_below;
    return out;
  }

private:
  void connect() {
    if (obs_) return;
    obs_ = std::make_unique<observer>(socket_);
    d_ = take_daemon_snapshot(*obs_);
    for (std::uint32_t i = 0; i < obs_->pool_count(); ++i)
      watches_.push_back(std::make_unique<pool_watch>(*obs_, "", i));
  }
  void drop() {
    watches_.clear();
    obs_.reset();
  }

  std::string socket_;
  std::chrono::milliseconds interval_;
  unsigned width_ = 80;
  std::unique_ptr<observer> obs_;
  std::vector<std::unique_ptr<pool_watch>> watches_;
  daemon_snapshot d_;
  std::map<std::string, previous> prev_;
};

} // namespace

int run_top(const std::string& socket, std::chrono::milliseconds interval) {
  signal_events sig;
  terminal_guard term;
  top_view view(socket, interval);
  bool keys = true; // stdin still readable (a closed stdin leaves only signals to stop top)
  for (;;) {
    write_all(view.frame());
    const auto deadline = std::chrono::steady_clock::now() + interval;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p[2] = {{keys ? STDIN_FILENO : -1, POLLIN, 0}, {sig.fd(), POLLIN, 0}};
      const int n = ::poll(p, 2, static_cast<int>(left.count()));
      if (n < 0 && errno != EINTR) return 0;
      if ((p[1].revents & POLLIN) != 0) {
        const int s = sig.next();
        if (s == SIGWINCH) break; // redraw at the new size
        if (s != 0) return 0;
      }
      if ((p[0].revents & POLLIN) != 0) {
        char c = 0;
        const ssize_t r = ::read(STDIN_FILENO, &c, 1);
        if (r == 0) keys = false;
        if (r == 1 && (c == 'q' || c == 'Q')) return 0;
      } else if ((p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
        keys = false;
      }
    }
  }
}

} // namespace slabctl
