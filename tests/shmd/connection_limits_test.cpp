// How many connections shmd lets one user hold, and what it does with the ones it will
// not keep: a hello is due within control::hello_timeout, one uid may have at most
// control::max_ungreeted_per_uid waiting for theirs and max_connections_per_uid in all,
// and when shmd runs out of descriptors it refuses the next connection instead of
// waking up for it forever. A user who may not use pools must not be able to keep those
// who may from connecting, nor stop the pools from growing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <slab/client.hpp>
#include <slab/error.hpp>
#include <slab/platform/ipc.hpp>
#include <slab/proto/codec.hpp>
#include <slab/proto/protocol.hpp>

#include <slabtest/checks.hpp>
#include <slabtest/daemon.hpp>
#include <slabtest/machine.hpp>
#include <slabtest/process.hpp>
#include <slabtest/shared.hpp>

namespace {

using namespace std::chrono_literals;
using slabtest::contains;
using slabtest::daemon;
using slabtest::daemon_cfg;
using slabtest::is_root;
namespace platform = slab::platform;
namespace proto = slab::proto;

constexpr std::uint32_t nobody = 65534;

/// What shmd sent on `fd` before closing it: "" for a plain close, an error's text for
/// a refusal, or "(still open)" when it neither closed it nor said anything in `wait`.
std::string until_closed(int fd, std::chrono::milliseconds wait) {
  if (!platform::set_receive_timeout(fd, wait)) return "(SO_RCVTIMEO failed)";
  std::string said;
  for (;;) {
    alignas(8) std::byte buf[proto::max_msg];
    std::vector<platform::unique_fd> fds;
    auto n = platform::receive_message(fd, buf, sizeof buf, fds);
    if (!n) return n.error().err == EAGAIN ? "(still open)" : said;
    if (n.value() == 0) return said;
    proto::error_msg e;
    if (proto::decode(proto::packet(buf, n.value()), e) == proto::decode_result::ok)
      said += std::string(proto::get_text(e.text));
    else
      said += "(a message that is not an error)";
  }
}

platform::unique_fd raw_connect(const std::string& socket) {
  auto fd = platform::connect_seqpacket(socket);
  return fd ? std::move(fd.value()) : platform::unique_fd();
}

bool send_hello(int fd) {
  proto::hello h;
  h.pid = static_cast<std::uint32_t>(::getpid());
  proto::set_text(h.comm, "limits_test");
  return platform::send_message(fd, &h, sizeof h).ok();
}

TEST(connection_limits, a_connection_that_never_says_hello_is_closed) {
  daemon d{daemon_cfg{}};
  std::vector<platform::unique_fd> silent;
  for (int i = 0; i < 4; ++i) {
    silent.push_back(raw_connect(d.socket_path()));
    ASSERT_TRUE(silent.back());
  }
  // A client that did say hello is not affected, however long it stays idle.
  slab::client c = slab::client::connect(d.socket_path());
  for (const platform::unique_fd& fd : silent)
    EXPECT_EQ(until_closed(fd.get(), 10s), "") << "a silent connection was kept";
  slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
  EXPECT_EQ(*p.get(p.emplace(std::uint64_t{5})), 5U);
  EXPECT_TRUE(d.wait_for_log("no hello within 2 s of connecting"));
}

/// shmd's open descriptors now.
std::size_t open_fds(pid_t pid) {
  std::size_t n = 0;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

TEST(connection_limits, a_user_who_may_not_use_pools_cannot_take_every_descriptor) {
  if (!is_root()) GTEST_SKIP() << "needs root to connect as another uid";
  daemon_cfg cfg;
  cfg.dir_mode = 0711;          // nobody reaches the socket; shmd's lists decide
  cfg.allow_uids = {0};         // nobody may not use pools
  cfg.pools[0].capacity = 4096; // small, so that the client below makes it grow
  cfg.pools[0].max_capacity = 1U << 16;
  cfg.nofile_limit = 1024; // what a hand-started shmd gets by default
  daemon d(cfg);
  const std::size_t before = open_fds(d.pid());
  constexpr int attempts = 1100; // more than shmd's every descriptor
  slabtest::pipe_pair held, release;
  slabtest::child hostile = slabtest::child::spawn([&] {
    const rlimit rl{4096, 4096};
    CHILD_CHECK(::setrlimit(RLIMIT_NOFILE, &rl) == 0);
    CHILD_CHECK(::setgid(nobody) == 0 && ::setuid(nobody) == 0);
    std::vector<platform::unique_fd> conns;
    for (int i = 0; i < attempts; ++i) {
      conns.push_back(raw_connect(d.socket_path()));
      CHILD_CHECK(conns.back());
    }
    std::uint64_t v = 1;
    CHILD_CHECK(slabtest::send_value(held.write_end.get(), v));      // all open now
    CHILD_CHECK(slabtest::receive_value(release.read_end.get(), v)); // holding them
    // Every one was closed: past the 16th waiting for its hello at once, with the
    // reason; the others when their hello was due.
    int refused = 0, timed_out = 0;
    for (platform::unique_fd& fd : conns) {
      const std::string said = until_closed(fd.get(), 10s);
      CHILD_CHECK_MSG(said != "(still open)", "a silent connection was kept");
      if (said.empty()) {
        ++timed_out;
        continue;
      }
      CHILD_CHECK_MSG(contains(said, "too many connections from uid 65534"), said);
      CHILD_CHECK_MSG(contains(said, "have not said hello yet (at most 16)"), said);
      ++refused;
    }
    CHILD_CHECK_MSG(refused >= attempts / 2,
                    refused << " refused, " << timed_out << " closed at their deadline");
    return 0;
  });
  held.write_end.close();
  release.read_end.close();
  std::uint64_t opened = 0;
  ASSERT_TRUE(slabtest::receive_value(held.read_end.get(), opened));
  // At any moment shmd holds at most 16 of them (and one it is refusing).
  EXPECT_LE(open_fds(d.pid()), before + 17) << "shmd holds more than the limit allows";
  // Meanwhile an allowed client connects, and the pool grows (growth needs descriptors).
  {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
    std::vector<slab::key> keys;
    for (std::uint64_t i = 0; i < 3 * 4096; ++i)
      keys.push_back(p.emplace(i));
    EXPECT_GE(p.stats().tiers, 2U);
    for (std::uint64_t i = 0; i < keys.size(); ++i)
      EXPECT_EQ(*p.get(keys[i]), i);
  }
  std::uint64_t go = 1;
  ASSERT_TRUE(slabtest::send_value(release.write_end.get(), go));
  const slabtest::exit_status st = hostile.wait();
  EXPECT_TRUE(st.ok()) << st.describe();
  // Logged once, not 1,084 times: the rest are counted into the next warning.
  EXPECT_TRUE(d.wait_for_log("have not said hello yet"));
  const std::string log = d.stderr_text();
  std::size_t lines = 0;
  for (std::size_t at = log.find("too many connections"); at != std::string::npos;
       at = log.find("too many connections", at + 1))
    ++lines;
  EXPECT_LE(lines, 2U) << log;
}

TEST(connection_limits, one_uid_holds_at_most_max_connections_per_uid) {
  if (!is_root()) GTEST_SKIP() << "needs root to connect as another uid";
  daemon_cfg cfg;
  cfg.dir_mode = 0711;
  cfg.allow_uids = {0, nobody};
  cfg.max_connections_per_uid = 3;
  daemon d(cfg);
  const slabtest::exit_status st = slabtest::run_in_child([&] {
    CHILD_CHECK(::setgid(nobody) == 0 && ::setuid(nobody) == 0);
    std::vector<slab::client> clients;
    slab::client_options opt;
    for (int i = 0; i < 3; ++i)
      clients.push_back(slab::client::connect(d.socket_path(), opt));
    try {
      (void)slab::client::connect(d.socket_path(), opt);
      CHILD_CHECK_MSG(false, "a fourth connection of one uid was let in");
    } catch (const slab::error& e) {
      CHILD_CHECK_MSG(e.code() == slab::errc::permission_denied, e.what());
      CHILD_CHECK_MSG(contains(e.what(), "3 open (max_connections_per_uid = 3 in"), e.what());
    }
    clients.pop_back(); // one closes: room for another, once shmd has seen it go
    for (int attempt = 0;; ++attempt) {
      try {
        clients.push_back(slab::client::connect(d.socket_path(), opt));
        break;
      } catch (const slab::error& e) {
        CHILD_CHECK_MSG(attempt < 500 && contains(e.what(), "too many connections"), e.what());
        std::this_thread::sleep_for(10ms);
      }
    }
    return 0;
  });
  EXPECT_TRUE(st.ok()) << st.describe();
  // Root's connections are not counted.
  std::vector<slab::client> root;
  for (int i = 0; i < 5; ++i)
    root.push_back(slab::client::connect(d.socket_path()));
}

TEST(connection_limits, out_of_descriptors_shmd_refuses_the_next_connection_and_serves_on) {
  daemon_cfg cfg;
  cfg.nofile_limit = 64; // a few dozen connections exhaust it
  daemon d(cfg);
  std::vector<platform::unique_fd> greeted;
  std::string refusal;
  for (int i = 0; i < 100 && refusal.empty(); ++i) {
    platform::unique_fd fd = raw_connect(d.socket_path());
    ASSERT_TRUE(fd);
    ASSERT_TRUE(send_hello(fd.get()));
    alignas(8) std::byte buf[proto::max_msg];
    std::vector<platform::unique_fd> fds;
    ASSERT_TRUE(platform::set_receive_timeout(fd.get(), 10s));
    auto n = platform::receive_message(fd.get(), buf, sizeof buf, fds);
    ASSERT_TRUE(n) << "no answer to hello " << i << ": " << n.error().what;
    ASSERT_GT(n.value(), 0U) << "closed without a word at connection " << i;
    proto::error_msg e;
    if (proto::decode(proto::packet(buf, n.value()), e) == proto::decode_result::ok)
      refusal = std::string(proto::get_text(e.text));
    else
      greeted.push_back(std::move(fd));
  }
  ASSERT_FALSE(refusal.empty()) << "100 connections and shmd never ran out";
  EXPECT_TRUE(contains(refusal, "out of file descriptors (limit 64)")) << refusal;
  EXPECT_TRUE(contains(refusal, "LimitNOFILE")) << refusal;
  // And the next ones too, every time: the reserve descriptor is taken back after each.
  for (int i = 0; i < 5; ++i) {
    platform::unique_fd fd = raw_connect(d.socket_path());
    ASSERT_TRUE(fd);
    EXPECT_TRUE(contains(until_closed(fd.get(), 10s), "out of file descriptors"))
        << "refusal " << i + 2 << " did not come";
  }
  EXPECT_TRUE(d.wait_for_log("out of file descriptors"));
  const std::size_t full = open_fds(d.pid());
  greeted.clear(); // they hang up: shmd has descriptors again, once it has seen them go
  for (int i = 0; i < 1000 && open_fds(d.pid()) + 8 > full; ++i)
    std::this_thread::sleep_for(10ms);
  slab::client c = slab::client::connect(d.socket_path());
  slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
  EXPECT_EQ(*p.get(p.emplace(std::uint64_t{9})), 9U);
}

// A process name is the client's to choose (prctl PR_SET_NAME, or any bytes in a raw
// hello). shmd echoes it in its log; a line break in it must not start a record of its
// own (under journald, "<0>" at a line's start is an emergency).
TEST(client_text_in_logs, a_process_name_cannot_forge_a_log_record) {
  daemon_cfg cfg;
  cfg.log_level = "debug"; // a client's hello is logged with its name at debug
  daemon d(cfg);
  platform::unique_fd fd = raw_connect(d.socket_path());
  ASSERT_TRUE(fd);
  proto::hello h;
  h.pid = static_cast<std::uint32_t>(::getpid());
  proto::set_text(h.comm, "ev\n<0>forged\x1b"); // 14 bytes: within comm's 15
  ASSERT_TRUE(platform::send_message(fd.get(), &h, sizeof h));
  ASSERT_TRUE(d.wait_for_log("(ev\\x0a<0>forged\\x1b, uid")) << d.stderr_text();
  const std::string log = d.stderr_text();
  EXPECT_EQ(log.find("\n<0>"), std::string::npos) << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  std::size_t start = 0;
  for (std::size_t nl = log.find('\n'); nl != std::string::npos; nl = log.find('\n', start)) {
    EXPECT_EQ(log.compare(start, 6, "shmd: "), 0)
        << "a record of its own: " << log.substr(start, nl - start);
    start = nl + 1;
  }
}

} // namespace
