// platform/events.hpp (poller, signal_fd, wakeup), platform/files.hpp (read_file,
// make_directory, lock_file) and platform::group_id: what shmd's loop and start-up rely on.
#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <slab/platform/events.hpp>
#include <slab/platform/files.hpp>
#include <slab/platform/process.hpp>
#include <slabtest/process.hpp>

namespace {

namespace sp = slab::platform;

/// A path that does not exist yet, in a directory that goes with the test.
struct scratch {
  slabtest::temp_dir dir;
  std::filesystem::path operator()(const std::string& name) const { return dir.file(name); }
};

TEST(platform_events, poller_gives_back_the_tag_of_a_readable_fd) {
  auto p = sp::poller::create();
  ASSERT_TRUE(p.ok()) << p.error().what;
  auto w = sp::wakeup::create();
  ASSERT_TRUE(w.ok()) << w.error().what;
  ASSERT_TRUE(p.value().add(w.value().fd(), 42).ok());
  std::array<std::uint64_t, 8> ready{};
  auto n = p.value().wait(ready, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 0U) << "nothing notified yet";
  w.value().notify();
  w.value().notify();
  n = p.value().wait(ready, 1000);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n.value(), 1U);
  EXPECT_EQ(ready[0], 42U);
  EXPECT_EQ(w.value().drain(), 2U) << "notifications before a drain merge";
  EXPECT_EQ(p.value().wait(ready, 0).value(), 0U) << "drained: no longer readable";
  EXPECT_EQ(w.value().drain(), 0U);
}

TEST(platform_events, removed_fd_is_no_longer_reported) {
  auto p = sp::poller::create();
  auto w = sp::wakeup::create();
  ASSERT_TRUE(p.ok() && w.ok());
  ASSERT_TRUE(p.value().add(w.value().fd(), 7).ok());
  EXPECT_FALSE(p.value().add(w.value().fd(), 7).ok()) << "added twice: EEXIST";
  p.value().remove(w.value().fd());
  p.value().remove(w.value().fd()); // harmless
  w.value().notify();
  std::array<std::uint64_t, 4> ready{};
  EXPECT_EQ(p.value().wait(ready, 0).value(), 0U);
}

TEST(platform_events, wakeup_from_another_thread_ends_a_wait) {
  auto p = sp::poller::create();
  auto w = sp::wakeup::create();
  ASSERT_TRUE(p.ok() && w.ok());
  ASSERT_TRUE(p.value().add(w.value().fd(), 1).ok());
  std::thread t([&] { w.value().notify(); });
  std::array<std::uint64_t, 4> ready{};
  const auto n = p.value().wait(ready, 10'000);
  t.join();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 1U);
}

TEST(platform_events, signal_fd_reads_a_blocked_signal_and_threads_inherit_the_mask) {
  // In a child: blocking SIGUSR1 must not leak into the other tests' process.
  const slabtest::exit_status st = slabtest::run_in_child([] {
    auto s = sp::signal_fd::block_and_open({SIGUSR1, SIGUSR2});
    if (!s.ok()) return 2;
    if (s.value().take() != 0) return 3; // nothing pending yet
    // A thread started now inherits the mask: a signal sent to the process while this
    // thread runs is still queued on the fd, never delivered (which would kill us).
    std::thread t([] { ::kill(::getpid(), SIGUSR1); });
    t.join();
    if (s.value().take() != SIGUSR1) return 4;
    if (s.value().take() != 0) return 5;
    return sp::signal_name(SIGTERM).empty() ? 6 : 0;
  });
  EXPECT_TRUE(st.ok()) << st.describe();
}

TEST(platform_files, read_file_reads_it_whole_and_names_the_path_on_error) {
  const scratch tmp;
  const auto path = tmp("read.txt");
  const std::string text(20'000, 'x'); // more than one read's buffer
  {
    std::ofstream out(path);
    out << text;
  }
  auto r = sp::read_file(path.string(), 1 << 20);
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_EQ(r.value(), text);

  auto big = sp::read_file(path.string(), 1024, "config file");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().err, EFBIG);
  EXPECT_EQ(big.error().what, "config file \"" + path.string() + "\" is larger than 1 KiB");
  std::filesystem::remove(path);

  auto missing = sp::read_file(path.string(), 1024, "config file");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().err, ENOENT);
  EXPECT_EQ(missing.error().what.rfind("cannot open config file \"" + path.string() + "\": ", 0),
            0U)
      << missing.error().what;

  auto dir = sp::read_file(std::filesystem::temp_directory_path().string(), 1024);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().err, EISDIR);
  EXPECT_EQ(dir.error().what.rfind("cannot read file ", 0), 0U) << dir.error().what;
}

TEST(platform_files, make_directory_accepts_an_existing_one) {
  const scratch tmp;
  const auto dir = tmp("dir");
  ASSERT_TRUE(sp::make_directory(dir.string(), 0700).ok());
  EXPECT_EQ(std::filesystem::status(dir).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
  EXPECT_TRUE(sp::make_directory(dir.string(), 0700).ok());
  const auto s = sp::make_directory((dir / "no" / "such").string(), 0700);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().err, ENOENT);
  EXPECT_NE(s.error().what.find((dir / "no" / "such").string()), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(platform_files, lock_file_is_exclusive_across_processes_until_released) {
  const scratch tmp;
  const auto path = tmp("lock");
  {
    auto held = sp::lock_file(path.string());
    ASSERT_TRUE(held.ok()) << held.error().what;
    EXPECT_TRUE(held.value().held());
    // flock locks belong to the open file description: another process's open is refused.
    const slabtest::exit_status st = slabtest::run_in_child([&] {
      auto second = sp::lock_file(path.string());
      return !second.ok() && second.error().err == EWOULDBLOCK ? 0 : 1;
    });
    EXPECT_TRUE(st.ok()) << st.describe();
  }
  auto again = sp::lock_file(path.string());
  EXPECT_TRUE(again.ok()) << "released with its holder";
  std::filesystem::remove(path);
}

TEST(platform_process, group_id_resolves_names_and_says_nothing_of_unknown_ones) {
  const auto root = sp::group_id("root");
  ASSERT_TRUE(root.ok()) << root.error().what;
  ASSERT_TRUE(root.value().has_value());
  EXPECT_EQ(*root.value(), 0U);
  const auto none = sp::group_id("no-such-group-slab-test");
  ASSERT_TRUE(none.ok()) << none.error().what;
  EXPECT_FALSE(none.value().has_value());
  EXPECT_FALSE(sp::group_id("").value().has_value());
}

} // namespace
