// The terminal (terminal.hpp): termios, TIOCGWINSZ, a signalfd, poll, read and write.
#include <slab/platform/terminal.hpp>

#include <cerrno>
#include <csignal>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "internal.hpp"

namespace slab::platform {

using detail::errno_text;
using detail::fail;

status write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t w = ::write(fd, text.data(), text.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int e = w < 0 ? errno : EIO;
      return fail(e,
                  "writing " + std::to_string(text.size()) + " bytes to fd " + std::to_string(fd) +
                      ": " + errno_text(e),
                  sys_cause::other);
    }
    text.remove_prefix(static_cast<std::size_t>(w));
  }
  return ok_t{};
}

result<std::size_t> read_input(int fd, char* buf, std::size_t cap) {
  for (;;) {
    const ssize_t r = ::read(fd, buf, cap);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    const int e = errno;
    return fail(e, "reading fd " + std::to_string(fd) + ": " + errno_text(e), sys_cause::other);
  }
}

unsigned terminal_columns() noexcept {
  winsize ws{};
  return ::ioctl(standard_output, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0U;
}

struct raw_terminal::saved_settings {
  termios settings{};
};

raw_terminal::raw_terminal() noexcept {
  termios now{};
  if (::isatty(standard_input) == 0 || ::tcgetattr(standard_input, &now) != 0) return;
  termios raw = now;
  raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  if (::tcsetattr(standard_input, TCSANOW, &raw) != 0) return;
  try {
    saved_ = std::make_unique<saved_settings>(saved_settings{now});
  } catch (...) {
    (void)::tcsetattr(standard_input, TCSANOW, &now); // cannot remember it: leave it as it was
  }
}

raw_terminal::~raw_terminal() {
  if (saved_) (void)::tcsetattr(standard_input, TCSANOW, &saved_->settings);
}

struct terminal_signals::saved_mask {
  sigset_t mask{};
};

terminal_signals::terminal_signals() noexcept {
  try {
    old_ = std::make_unique<saved_mask>();
  } catch (...) {
    return; // nothing blocked: the signals keep their default action
  }
  sigset_t set;
  sigemptyset(&set);
  for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGWINCH})
    sigaddset(&set, s);
  ::sigprocmask(SIG_BLOCK, &set, &old_->mask);
  fd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

terminal_signals::~terminal_signals() {
  if (fd_ >= 0) ::close(fd_);
  if (old_) ::sigprocmask(SIG_SETMASK, &old_->mask, nullptr);
}

terminal_signal terminal_signals::next() const noexcept {
  signalfd_siginfo si{};
  if (fd_ < 0 || ::read(fd_, &si, sizeof si) != sizeof si) return terminal_signal::none;
  return si.ssi_signo == SIGWINCH ? terminal_signal::resized : terminal_signal::stop;
}

status wait_for_input(std::span<const int> fds, std::chrono::milliseconds timeout,
                      std::span<fd_state> out) {
  if (out.size() != fds.size())
    return fail(EINVAL, "wait_for_input: one state per fd", sys_cause::invalid_argument);
  std::vector<pollfd> p;
  for (const int fd : fds)
    p.push_back({fd, POLLIN, 0});
  for (fd_state& s : out)
    s = fd_state::idle;
  const int n = ::poll(p.data(), p.size(), static_cast<int>(timeout.count()));
  if (n < 0 && errno == EINTR) return ok_t{};
  if (n < 0) {
    const int e = errno;
    return fail(e, "poll of " + std::to_string(fds.size()) + " fds: " + errno_text(e),
                sys_cause::other);
  }
  for (std::size_t i = 0; i < p.size(); ++i) {
    if ((p[i].revents & POLLIN) != 0) {
      out[i] = fd_state::readable;
    } else if ((p[i].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
      out[i] = fd_state::closed;
    }
  }
  return ok_t{};
}

} // namespace slab::platform
