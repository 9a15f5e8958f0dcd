// The platform part's smaller services for the client library and slabctl:
// reserve_private (address space for a process's own bookkeeping) and terminal.hpp
// (writing a frame, reading keys, waiting for input, the signals top stops on).
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <string>

#include <unistd.h>

#include <slab/platform/platform.hpp>
#include <slab/platform/terminal.hpp>

namespace sp = slab::platform;

namespace {

struct pipe_pair {
  int r = -1, w = -1;
  pipe_pair() {
    int fds[2];
    if (::pipe(fds) == 0) {
      r = fds[0];
      w = fds[1];
    }
  }
  ~pipe_pair() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  void close_writer() {
    ::close(w);
    w = -1;
  }
};

TEST(platform_private, reserve_private_is_zeroed_writable_and_given_back) {
  const std::size_t bytes = 64 * 1024 * 1024 + 8; // not a page multiple
  auto p = sp::reserve_private(bytes);
  ASSERT_TRUE(p) << p.error().what;
  auto* b = static_cast<unsigned char*>(p.value());
  EXPECT_EQ(b[0], 0);
  EXPECT_EQ(b[bytes - 1], 0);
  b[0] = 1;
  b[bytes - 1] = 2;
  EXPECT_EQ(b[bytes - 1], 2);
  sp::release_private(p.value(), bytes);
  sp::release_private(nullptr, bytes); // nothing to give back: no-op
}

TEST(platform_private, reserve_private_of_nothing_is_an_error) {
  auto p = sp::reserve_private(0);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().cause, sp::sys_cause::invalid_argument);
}

TEST(platform_terminal, write_all_then_read_input_round_trip) {
  pipe_pair p;
  ASSERT_GE(p.r, 0);
  const std::string frame(10000, 'x'); // fits in a pipe's buffer: read only once written
  ASSERT_TRUE(sp::write_all(p.w, frame));
  std::string got(frame.size(), '\0');
  std::size_t have = 0;
  while (have < frame.size()) {
    auto n = sp::read_input(p.r, got.data() + have, got.size() - have);
    ASSERT_TRUE(n) << n.error().what;
    ASSERT_GT(n.value(), 0U);
    have += n.value();
  }
  EXPECT_EQ(got, frame);
  p.close_writer();
  auto eof = sp::read_input(p.r, got.data(), 1);
  ASSERT_TRUE(eof);
  EXPECT_EQ(eof.value(), 0U);
}

TEST(platform_terminal, write_all_to_a_closed_fd_is_an_error_naming_it) {
  pipe_pair p;
  const int fd = p.w;
  p.close_writer();
  const sp::status s = sp::write_all(fd, "frame");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().what.find("fd " + std::to_string(fd)), std::string::npos) << s.error().what;
}

TEST(platform_terminal, wait_for_input_says_which_fd_is_ready) {
  pipe_pair a, b;
  const int fds[3] = {a.r, -1, b.r};
  sp::fd_state st[3];
  ASSERT_TRUE(sp::wait_for_input(fds, std::chrono::milliseconds(10), st));
  EXPECT_EQ(st[0], sp::fd_state::idle);
  EXPECT_EQ(st[2], sp::fd_state::idle);
  ASSERT_TRUE(sp::write_all(b.w, "q"));
  ASSERT_TRUE(sp::wait_for_input(fds, std::chrono::seconds(5), st));
  EXPECT_EQ(st[0], sp::fd_state::idle);
  EXPECT_EQ(st[1], sp::fd_state::idle) << "-1 is skipped";
  EXPECT_EQ(st[2], sp::fd_state::readable);
  sp::fd_state too_few[1];
  EXPECT_FALSE(sp::wait_for_input(fds, std::chrono::milliseconds(0), too_few));
}

TEST(platform_terminal, signals_are_read_as_events_and_the_mask_comes_back) {
  {
    const sp::terminal_signals sig;
    ASSERT_GE(sig.fd(), 0);
    EXPECT_EQ(sig.next(), sp::terminal_signal::none);
    ASSERT_EQ(::raise(SIGWINCH), 0);
    EXPECT_EQ(sig.next(), sp::terminal_signal::resized);
    ASSERT_EQ(::raise(SIGTERM), 0); // blocked: read, not delivered
    EXPECT_EQ(sig.next(), sp::terminal_signal::stop);
  }
  sigset_t now;
  ASSERT_EQ(::sigprocmask(SIG_BLOCK, nullptr, &now), 0);
  EXPECT_EQ(sigismember(&now, SIGTERM), 0) << "the old mask is back";
}

TEST(platform_terminal, raw_terminal_does_nothing_without_a_terminal) {
  if (::isatty(sp::standard_input) != 0) GTEST_SKIP() << "stdin is a terminal here";
  const sp::raw_terminal t;
  EXPECT_FALSE(t.active());
}

} // namespace
