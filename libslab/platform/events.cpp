// Event loop system calls: epoll, signalfd, eventfd.
#include <slab/platform/events.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "internal.hpp"

namespace slab::platform {

using detail::errno_text;
using detail::fail;

result<poller> poller::create() {
  unique_fd fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!fd) {
    const int e = errno;
    return fail(e, "epoll_create1: " + errno_text(e), sys_cause::other);
  }
  return poller(std::move(fd));
}

status poller::add(int fd, std::uint64_t tag) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  if (::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int e = errno;
    return fail(e, "epoll_ctl(ADD, fd " + std::to_string(fd) + "): " + errno_text(e),
                sys_cause::other);
  }
  return ok_t{};
}

void poller::remove(int fd) noexcept { (void)::epoll_ctl(fd_.get(), EPOLL_CTL_DEL, fd, nullptr); }

result<std::size_t> poller::wait(std::span<std::uint64_t> ready, int timeout_ms) {
  std::array<epoll_event, 64> evs{};
  const int cap = static_cast<int>(std::min(ready.size(), evs.size()));
  const int n = ::epoll_wait(fd_.get(), evs.data(), cap, timeout_ms);
  if (n < 0) {
    const int e = errno;
    if (e == EINTR) return std::size_t{0};
    return fail(e, "epoll_wait: " + errno_text(e), sys_cause::other);
  }
  for (int i = 0; i < n; ++i)
    ready[static_cast<std::size_t>(i)] = evs[static_cast<std::size_t>(i)].data.u64;
  return static_cast<std::size_t>(n);
}

result<signal_fd> signal_fd::block_and_open(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (const int s : signals)
    sigaddset(&set, s);
  if (const int e = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); e != 0) {
    return fail(e, "pthread_sigmask(SIG_BLOCK): " + errno_text(e), sys_cause::other);
  }
  unique_fd fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd) {
    const int e = errno;
    return fail(e, "signalfd: " + errno_text(e), sys_cause::other);
  }
  return signal_fd(std::move(fd));
}

int signal_fd::take() noexcept {
  signalfd_siginfo si{};
  if (::read(fd_.get(), &si, sizeof si) != static_cast<ssize_t>(sizeof si)) return 0;
  return static_cast<int>(si.ssi_signo);
}

std::string signal_name(int signo) {
  const char* s = ::strsignal(signo);
  return s == nullptr ? "signal " + std::to_string(signo) : std::string(s);
}

result<wakeup> wakeup::create() {
  unique_fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) {
    const int e = errno;
    return fail(e, "eventfd: " + errno_text(e), sys_cause::other);
  }
  return wakeup(std::move(fd));
}

void wakeup::notify() noexcept {
  const std::uint64_t one = 1;
  (void)::write(fd_.get(), &one, sizeof one); // EAGAIN: at the counter's ceiling, still readable
}

std::uint64_t wakeup::drain() noexcept {
  std::uint64_t n = 0;
  if (::read(fd_.get(), &n, sizeof n) != static_cast<ssize_t>(sizeof n)) return 0;
  return n;
}

} // namespace slab::platform
