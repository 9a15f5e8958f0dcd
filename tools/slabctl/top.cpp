// slabctl top. Plain ANSI sequences (alternate screen, cursor home, erase to the end of
// line and of screen), so that it works on any terminal and over ssh; the terminal is
// put in non-canonical, no-echo mode to read single keys (ISIG stays on: Ctrl-C is
// SIGINT), and everything is put back on q, SIGINT, SIGTERM or SIGHUP. Signals are read
// from a signalfd, so no handler runs in the middle of a frame.
#include "top.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <slab/platform/terminal.hpp>

#include "snapshot.hpp"

namespace slabctl {
namespace {

constexpr const char* enter_screen = "\x1b[?1049h\x1b[?25l"; // alternate screen, hide cursor
constexpr const char* leave_screen = "\x1b[?25h\x1b[?1049l"; // show cursor, main screen
constexpr const char* home = "\x1b[H";
constexpr const char* erase_line = "\x1b[K";
constexpr const char* erase_below = "\x1b[J";

void draw(const std::string& s) { (void)platform::write_all(platform::standard_output, s); }

/// The screen: the alternate one while top runs, the main one back whatever way it ends.
class screen_guard {
public:
  screen_guard() { draw(enter_screen); }
  ~screen_guard() { draw(leave_screen); }
  screen_guard(const screen_guard&) = delete;
  screen_guard& operator=(const screen_guard&) = delete;
};

unsigned columns() {
  const unsigned c = platform::terminal_columns();
  return c >= 20 ? c : 80;
}

std::string bar(double fraction, unsigned width) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const auto full = static_cast<unsigned>(std::lround(fraction * width));
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
    out_ = home;
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
      for (auto& w : watches_) {
        w->refresh();
        draw_pool(take_snapshot(*obs_, *w, false), now);
      }
    } catch (const slab::error& e) {
      drop();
      line("");
      line(std::string("slabctl: ") + e.what());
      line("retrying every " + std::to_string(interval_.count()) + " ms");
    }
    out_ += erase_below;
    return std::move(out_);
  }

private:
  void line(const std::string& s) { out_ += s.substr(0, width_) + erase_line + "\r\n"; }

  // A pool's lines: occupancy, rates since the last frame, then a line per tier.
  void draw_pool(const pool_snapshot& p, std::chrono::steady_clock::time_point now) {
    const unsigned bw = width_ > 60 ? std::min(width_ - 50, 40U) : 10U;
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
  std::string out_; // the frame being drawn
  std::unique_ptr<observer> obs_;
  std::vector<std::unique_ptr<pool_watch>> watches_;
  daemon_snapshot d_;
  std::map<std::string, previous> prev_;
};

} // namespace

int run_top(const std::string& socket, std::chrono::milliseconds interval) {
  const platform::terminal_signals sig;
  const platform::raw_terminal keys_raw;
  const screen_guard screen;
  top_view view(socket, interval);
  bool keys = true; // stdin still readable (a closed stdin leaves only signals to stop top)
  for (;;) {
    draw(view.frame());
    const auto deadline = std::chrono::steady_clock::now() + interval;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      const int fds[2] = {keys ? platform::standard_input : -1, sig.fd()};
      platform::fd_state st[2];
      if (!platform::wait_for_input(fds, left, st)) return 0;
      if (st[1] == platform::fd_state::readable) {
        const platform::terminal_signal s = sig.next();
        if (s == platform::terminal_signal::resized) break; // redraw at the new size
        if (s == platform::terminal_signal::stop) return 0;
      }
      if (st[0] == platform::fd_state::readable) {
        char c = 0;
        const auto r = platform::read_input(platform::standard_input, &c, 1);
        if (r && r.value() == 0) keys = false;
        if (r && r.value() == 1 && (c == 'q' || c == 'Q')) return 0;
      } else if (st[0] == platform::fd_state::closed) {
        keys = false;
      }
    }
  }
}

} // namespace slabctl
