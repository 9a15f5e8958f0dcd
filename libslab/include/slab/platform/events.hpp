// Waiting on several things at once: an epoll set (poller), signals read from a file
// descriptor instead of interrupting the process (signal_fd), and a counter one thread
// bumps to wake another's poller (wakeup). shmd's event loop is made of these three.
//
// Contract, as for the rest of platform/ (platform.hpp): nothing throws; a failure comes
// back as a sys_error carrying errno and a message that names the call; nothing prints.
// Every descriptor is close-on-exec, and those that are read are non-blocking, so a
// spurious wake-up never turns into a blocked loop.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>

#include <slab/platform/platform.hpp>
#include <slab/platform/segment.hpp>

namespace slab::platform {

/// An epoll set. Each watched fd carries a tag of the caller's choosing, which wait()
/// gives back when the fd is readable. One thread uses a poller at a time.
class poller {
public:
  /// epoll_create1; the error names it.
  [[nodiscard]] static result<poller> create();

  /// Watches `fd` for input (EPOLLIN, level-triggered) under `tag`. The fd must stay open
  /// until it is removed: the kernel drops a closed fd from the set by itself, but only
  /// once every duplicate of it is closed too.
  [[nodiscard]] status add(int fd, std::uint64_t tag);
  /// Stops watching `fd`; harmless for an fd that is not watched.
  void remove(int fd) noexcept;
  /// Waits up to `timeout_ms` (-1: no limit) for watched fds to become readable, and
  /// writes their tags to the front of `ready`. Returns how many were written; 0 on a
  /// time-out or when a signal interrupted the wait (EINTR is not an error here).
  [[nodiscard]] result<std::size_t> wait(std::span<std::uint64_t> ready, int timeout_ms);

private:
  explicit poller(unique_fd fd) noexcept : fd_(std::move(fd)) {}
  unique_fd fd_;
};

/// Signals taken off their default action and queued on a descriptor (signalfd), to be
/// read in the event loop like any other input.
class signal_fd {
public:
  /// Blocks `signals` for the calling thread (pthread_sigmask) and opens a signalfd for
  /// them. Threads inherit the mask of the thread that starts them: call this before
  /// starting any thread that must not take these signals itself, or the kernel may
  /// deliver one to that thread and kill the process.
  [[nodiscard]] static result<signal_fd> block_and_open(std::initializer_list<int> signals);

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  /// The number of the next pending signal, or 0 when none is pending.
  [[nodiscard]] int take() noexcept;

private:
  explicit signal_fd(unique_fd fd) noexcept : fd_(std::move(fd)) {}
  unique_fd fd_;
};

/// The description of signal `signo` ("Terminated"), for a log line.
[[nodiscard]] std::string signal_name(int signo);

/// A wake-up call between threads (eventfd): any thread may notify(); the thread that
/// watches fd() in its poller drain()s it when it becomes readable. Notifications that
/// arrive before the drain are merged into one wake-up: the waiter must look at all the
/// work queued for it, not at one item per wake-up.
class wakeup {
public:
  /// eventfd; the error names it.
  [[nodiscard]] static result<wakeup> create();

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  /// Makes fd() readable. Never blocks (a counter that would overflow stays readable).
  void notify() noexcept;
  /// Makes fd() unreadable again; returns the notifications merged since the last drain.
  std::uint64_t drain() noexcept;

private:
  explicit wakeup(unique_fd fd) noexcept : fd_(std::move(fd)) {}
  unique_fd fd_;
};

} // namespace slab::platform
