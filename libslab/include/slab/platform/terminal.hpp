// The terminal, for a program that draws a live view on it (slabctl top): raw keys,
// its width, the signals that stop or resize it, waiting for input, writing a frame.
// Same contract as platform.hpp: errors are values naming what failed, nothing prints.
// Not an event loop: shmd's loop is another matter (and another header).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include <slab/platform/platform.hpp>

namespace slab::platform {

inline constexpr int standard_input = 0;
inline constexpr int standard_output = 1;

/// Writes all of `text` to fd, through short writes and interrupted ones. Fails on the
/// first other error (a closed pipe, a full disk) with what was left unwritten.
[[nodiscard]] status write_all(int fd, std::string_view text);

/// Reads what fd has, up to `cap` bytes (at least one, unless at end of file): the
/// count, 0 at end of file. Blocks only when fd does and nothing is there.
[[nodiscard]] result<std::size_t> read_input(int fd, char* buf, std::size_t cap);

/// The width of the terminal on standard output in columns (TIOCGWINSZ), or 0 when
/// standard output is not a terminal or will not say.
[[nodiscard]] unsigned terminal_columns() noexcept;

/// Standard input in non-canonical, no-echo mode for as long as the guard lives, so that
/// single keys can be read as they are typed (VMIN = VTIME = 0: a read never waits).
/// ISIG stays on: Ctrl-C is still SIGINT. The settings as they were come back on
/// destruction, whatever way the program leaves the scope. When standard input is not a
/// terminal the guard does nothing.
class raw_terminal {
public:
  raw_terminal() noexcept;
  ~raw_terminal();
  raw_terminal(const raw_terminal&) = delete;
  raw_terminal& operator=(const raw_terminal&) = delete;
  /// True when standard input was a terminal and is now raw.
  [[nodiscard]] bool active() const noexcept { return saved_ != nullptr; }

private:
  struct saved_settings;
  std::unique_ptr<saved_settings> saved_;
};

/// What a terminal_signals read: nothing pending, the window changed size (SIGWINCH), or
/// the user or the system asked the program to stop (SIGINT, SIGTERM, SIGHUP).
enum class terminal_signal : std::uint8_t { none, resized, stop };

/// SIGINT, SIGTERM, SIGHUP and SIGWINCH blocked and read as events from a file
/// descriptor (signalfd), so that no handler runs in the middle of drawing a frame. The
/// signal mask as it was comes back on destruction (a pending signal is then delivered
/// as usual). One per process at a time; the mask is the calling thread's.
class terminal_signals {
public:
  terminal_signals() noexcept;
  ~terminal_signals();
  terminal_signals(const terminal_signals&) = delete;
  terminal_signals& operator=(const terminal_signals&) = delete;
  /// Readable when a signal is pending; -1 when the kernel refused a signalfd.
  [[nodiscard]] int fd() const noexcept { return fd_; }
  /// The next pending signal, without waiting.
  [[nodiscard]] terminal_signal next() const noexcept;

private:
  struct saved_mask;
  int fd_ = -1;
  std::unique_ptr<saved_mask> old_;
};

/// How an fd looked after wait_for_input.
enum class fd_state : std::uint8_t {
  idle,     ///< nothing to read yet (or skipped: fd -1)
  readable, ///< a read will not block (data, or end of file)
  closed,   ///< hung up, in error, or not an open fd: reading it is pointless
};

/// Waits until one of `fds` is readable or closed, or `timeout` passes; `out` (as long
/// as `fds`) then says how each one is. An fd of -1 is skipped. A wait interrupted by a
/// signal returns early with every fd idle: a caller loops to its own deadline.
[[nodiscard]] status wait_for_input(std::span<const int> fds, std::chrono::milliseconds timeout,
                                    std::span<fd_state> out);

} // namespace slab::platform
