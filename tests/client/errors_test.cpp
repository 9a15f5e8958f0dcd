// What goes wrong when connecting and opening, as a client sees it: each failure is a
// slab::error with the right code and a message a person can act on. Also what a
// wrong or hostile peer on the control socket gets, on both sides of it.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <unistd.h>

#include <slab/client.hpp>
#include <slab/platform/ipc.hpp>
#include <slab/proto/protocol.hpp>

#include <slabtest/daemon.hpp>
#include <slabtest/pool_view.hpp>

namespace {

using namespace std::chrono_literals;
using slabtest::contains;
using slabtest::daemon;
using slabtest::daemon_cfg;
using slabtest::raw_connection;
using slabtest::run_in_child;

namespace proto = slab::proto;
namespace platform = slab::platform;

/// The slab::error that f throws (nullopt, and a test failure, if it throws none).
template <class F> std::optional<slab::error> error_of(F&& f) {
  try {
    f();
  } catch (const slab::error& e) {
    return e;
  }
  ADD_FAILURE() << "no slab::error thrown";
  return std::nullopt;
}

/// In a child: f must throw slab::error with `code` and a message containing `says`.
template <class F> int child_expects(slab::errc code, const std::string& says, F&& f) {
  try {
    f();
  } catch (const slab::error& e) {
    CHILD_CHECK_MSG(e.code() == code, "code " << slab::to_string(e.code()) << ": " << e.what());
    CHILD_CHECK_MSG(contains(e.what(), says), "message: " << e.what());
    return 0;
  }
  CHILD_CHECK_MSG(false, "no slab::error thrown");
  return 1;
}

struct big {
  char bytes[65];
};
struct exact {
  char bytes[64];
};
struct alignas(128) over_aligned {
  char c;
};

TEST(errors, no_daemon_at_the_path) {
  slabtest::temp_dir dir;
  const std::string path = dir.file("nobody-here.sock");
  const auto e = error_of([&] { (void)slab::client::connect(path); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), slab::errc::no_daemon) << e->what();
  EXPECT_TRUE(contains(e->what(), path)) << e->what();
  EXPECT_TRUE(contains(e->what(), "is shmd running")) << e->what();
}

TEST(errors, no_daemon_through_shmd_socket_variable) {
  slabtest::temp_dir dir;
  const std::string path = dir.file("from-env.sock");
  const slabtest::exit_status st = run_in_child([&] {
    ::setenv("SHMD_SOCKET", path.c_str(), 1);
    CHILD_CHECK(slab::default_socket_path() == path);
    return child_expects(slab::errc::no_daemon, path, [] { (void)slab::client::connect(); });
  });
  EXPECT_TRUE(st.ok()) << st.describe();
}

TEST(errors, daemon_gone_its_socket_left_behind) {
  daemon d;
  const std::string path = d.socket_path();
  ASSERT_TRUE(d.stop().ok());
  const auto e = error_of([&] { (void)slab::client::connect(path); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), slab::errc::no_daemon) << e->what();
}

// shmd stopped (SIGSTOP, a debugger, a stalled host) answers after the client gave up.
// The request fails with no_daemon, naming the wait; the answer that comes later is
// never taken for the answer to the next request: the client has let that connection go.
TEST(errors, an_answer_that_comes_too_late_is_never_taken_for_the_next_one) {
  daemon d;
  slab::client_options opt;
  opt.request_timeout = 300ms;
  slab::client c = slab::client::connect(d.socket_path(), opt);
  d.signal(SIGSTOP);
  const auto e = error_of([&] { (void)c.open<std::uint64_t>("no-such-pool"); });
  d.signal(SIGCONT);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), slab::errc::no_daemon) << e->what();
  EXPECT_TRUE(contains(e->what(), "did not answer within 300 ms")) << e->what();
  // shmd now answers "not found" to the abandoned request; the next open gets its own.
  slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
  const slab::key k = p.emplace(std::uint64_t{11});
  ASSERT_NE(p.get(k), nullptr);
  EXPECT_EQ(*p.get(k), 11U);
}

TEST(errors, unknown_pool_is_not_found_and_lists_the_pools) {
  daemon d;
  slab::client c = slab::client::connect(d.socket_path());
  const auto e = error_of([&] { (void)c.open<std::uint64_t>("no-such-pool"); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), slab::errc::not_found) << e->what();
  EXPECT_TRUE(contains(e->what(), "no-such-pool")) << e->what();
  EXPECT_TRUE(contains(e->what(), "test")) << e->what(); // the pool it has
  // The client is still usable after the refusal.
  slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
  EXPECT_NE(p.get(p.emplace(std::uint64_t{7})), nullptr);
}

TEST(errors, type_larger_or_more_aligned_than_the_slot_is_a_type_mismatch) {
  daemon_cfg cfg; // "test": 64-byte slots, aligned to 64
  slabtest::pool_cfg wide;
  wide.name = "wide"; // 200-byte slots, aligned to 64: room for 128 bytes, not 128-aligned
  wide.slot_size = 200;
  cfg.pools.push_back(wide);
  daemon d(cfg);
  {
    slab::client c = slab::client::connect(d.socket_path());
    const auto e = error_of([&] { (void)c.open<big>("test"); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), slab::errc::type_mismatch) << e->what();
    EXPECT_TRUE(contains(e->what(), "65 bytes")) << e->what();
    static_assert(sizeof(over_aligned) == 128);
    const auto a = error_of([&] { (void)c.open<over_aligned>("wide"); });
    ASSERT_TRUE(a);
    EXPECT_EQ(a->code(), slab::errc::type_mismatch) << a->what();
    EXPECT_TRUE(contains(a->what(), "aligned to 128")) << a->what();
    EXPECT_TRUE(contains(a->what(), "wide")) << a->what();
    slab::pool<big> fits = c.open<big>("wide"); // size alone is fine there
    // Exactly the slot's size fits.
    slab::pool<exact> p = c.open<exact>("test");
    const slab::key k = p.emplace();
    ASSERT_NE(p.get(k), nullptr);
    EXPECT_TRUE(p.erase(k));
  }
  // The refused opens left no context behind.
  slabtest::pool_view v(d.socket_path(), "test");
  EXPECT_TRUE(v.wait_reclaimed()) << d.stderr_text();
}

TEST(errors, all_contexts_taken_is_exhausted) {
  daemon_cfg cfg;
  cfg.pools[0].contexts = 2;
  daemon d(cfg);
  slab::client c = slab::client::connect(d.socket_path());
  // On the heap rather than in a std::optional: GCC 12 at -O3 warns (wrongly) that the
  // optional's pool may be destroyed uninitialized.
  auto first = std::make_unique<slab::pool<std::uint64_t>>(c.open<std::uint64_t>("test"));
  slab::pool<std::uint64_t> second = c.open<std::uint64_t>("test");
  const auto e = error_of([&] { (void)c.open<std::uint64_t>("test"); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), slab::errc::exhausted) << e->what();
  EXPECT_TRUE(contains(e->what(), "contexts")) << e->what();
  // Another process is refused the same way.
  const slabtest::exit_status st = run_in_child([&] {
    slab::client other = slab::client::connect(d.socket_path());
    return child_expects(slab::errc::exhausted, "contexts",
                         [&] { (void)other.open<std::uint64_t>("test"); });
  });
  EXPECT_TRUE(st.ok()) << st.describe();
  // A context given back can be taken again at once: shmd answers `closed` only after
  // the record has been reclaimed.
  first.reset();
  slab::pool<std::uint64_t> third = c.open<std::uint64_t>("test");
  EXPECT_NE(third.get(third.emplace(std::uint64_t{3})), nullptr);
}

// The pool's destructor returns once shmd has answered `closed`, which it does after the
// reclaim: with every context taken, closing one and opening again at once succeeds.
TEST(errors, context_is_free_once_close_returns) {
  daemon_cfg cfg;
  cfg.pools[0].contexts = 1;
  daemon d(cfg);
  slab::client c = slab::client::connect(d.socket_path());
  for (int i = 0; i < 100; ++i) {
    slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test"); // throws exhausted
    (void)p.emplace(std::uint64_t{1});
  }
}

/// In a child: drops root for nobody (65534), then connects.
int connect_as_nobody(const std::string& socket, slab::errc code, const std::string& says) {
  CHILD_CHECK(::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0);
  return child_expects(code, says, [&] { (void)slab::client::connect(socket); });
}

TEST(errors, uid_not_allowed_is_permission_denied_naming_the_uid) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  daemon_cfg cfg;
  cfg.dir_mode = 0711; // the socket is reachable: shmd's allow-list decides
  daemon d(cfg);
  const slabtest::exit_status st = run_in_child([&] {
    return connect_as_nobody(d.socket_path(), slab::errc::permission_denied, "uid 65534");
  });
  EXPECT_TRUE(st.ok()) << st.describe();
  EXPECT_TRUE(d.wait_for_log("uid 65534")) << d.stderr_text();
}

TEST(errors, socket_out_of_reach_is_permission_denied) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  daemon d; // the socket's directory is 0700 and root's: nobody cannot reach it
  const slabtest::exit_status st = run_in_child([&] {
    return connect_as_nobody(d.socket_path(), slab::errc::permission_denied, d.socket_path());
  });
  EXPECT_TRUE(st.ok()) << st.describe();
}

TEST(errors, uid_in_allow_uids_gets_in) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  daemon_cfg cfg;
  cfg.dir_mode = 0711;
  cfg.allow_uids = {65534};
  daemon d(cfg);
  const slabtest::exit_status st = run_in_child([&] {
    CHILD_CHECK(::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0);
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
    for (std::uint64_t i = 0; i < 1000; ++i) {
      const slab::key k = p.emplace(i);
      CHILD_CHECK(p.get(k) != nullptr && *p.get(k) == i && p.erase(k));
    }
    return 0;
  });
  EXPECT_TRUE(st.ok()) << st.describe();
}

// The daemon's side of an ABI mismatch: an error naming both ABIs, then the door.
TEST(errors, hello_of_another_abi_gets_abi_mismatch_and_is_closed) {
  daemon d;
  raw_connection conn(d.socket_path());
  proto::hello h;
  h.h.abi = static_cast<std::uint16_t>(proto::abi_version + 1);
  h.pid = static_cast<std::uint32_t>(::getpid());
  conn.send(h);
  std::vector<platform::unique_fd> fds;
  const std::vector<char> answer = conn.receive(fds);
  ASSERT_EQ(answer.size(), sizeof(proto::error_msg));
  proto::error_msg e;
  std::memcpy(&e, answer.data(), sizeof e);
  EXPECT_EQ(e.h.type, static_cast<std::uint16_t>(proto::msg_type::error));
  EXPECT_EQ(e.code, static_cast<std::uint32_t>(slab::errc::abi_mismatch));
  const std::string text(proto::get_text(e.text));
  EXPECT_TRUE(contains(text, "ABI " + std::to_string(proto::abi_version))) << text;
  EXPECT_TRUE(contains(text, "ABI " + std::to_string(proto::abi_version + 1))) << text;
  EXPECT_TRUE(conn.receive(fds).empty()) << "the connection stays open after the mismatch";
  // The daemon serves others as before.
  slab::client c = slab::client::connect(d.socket_path());
  slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
  EXPECT_NE(p.get(p.emplace(std::uint64_t{1})), nullptr);
}

// An open for an impossible type (no bytes, an alignment that is no power of two) is
// refused with the reason; the C interface and pool<T> never send one, a raw client can.
TEST(errors, open_of_a_type_of_no_size_or_a_bad_alignment_is_refused) {
  daemon d;
  raw_connection conn(d.socket_path());
  conn.hello();
  for (const auto& [size, align] : {std::pair{0U, 8U}, std::pair{8U, 3U}, std::pair{8U, 0U}}) {
    proto::open_req o;
    proto::set_text(o.pool, "test");
    o.type_size = size;
    o.type_align = align;
    conn.send(o);
    std::vector<platform::unique_fd> fds;
    try {
      (void)conn.expect<proto::opened>(fds);
      ADD_FAILURE() << "opened for size " << size << " align " << align;
    } catch (const slab::error& e) {
      EXPECT_EQ(e.code(), slab::errc::invalid_argument) << e.what();
      EXPECT_TRUE(contains(e.what(), "a type has at least 1 byte and a power-of-two alignment"))
          << e.what();
    }
    EXPECT_TRUE(fds.empty()) << "segments sent with the refusal";
  }
}

// Garbage on the control socket closes that connection and nothing else.
TEST(errors, malformed_messages_close_the_connection_only) {
  daemon d;
  auto closed_after = [&](auto send) {
    raw_connection conn(d.socket_path());
    send(conn);
    std::vector<platform::unique_fd> fds;
    std::vector<char> got = conn.receive(fds);
    if (!got.empty()) got = conn.receive(fds); // an error answer may come first
    return got.empty();
  };
  EXPECT_TRUE(closed_after([](raw_connection& c) {
    const std::uint32_t tiny = 1;
    c.send(tiny);
  })) << "a message shorter than its header";
  EXPECT_TRUE(closed_after([](raw_connection& c) {
    proto::hello h;
    h.h.magic = 0x12345678;
    c.send(h);
  })) << "bad magic";
  EXPECT_TRUE(closed_after([](raw_connection& c) {
    proto::open_req o;
    proto::set_text(o.pool, "test");
    c.send(o);
  })) << "open before hello";
  EXPECT_TRUE(closed_after([](raw_connection& c) {
    c.hello();
    proto::msg_header h;
    h.type = 999;
    c.send(h);
  })) << "unknown message type";
  EXPECT_TRUE(closed_after([](raw_connection& c) {
    c.hello();
    proto::close_req q;
    proto::set_text(q.pool, "test");
    q.context = 1;
    c.send(q);
  })) << "close of a context it does not hold";
  EXPECT_TRUE(closed_after([](raw_connection& c) {
    c.hello();
    c.send(proto::hello{});
  })) << "a second hello";
  slab::client c = slab::client::connect(d.socket_path());
  slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
  EXPECT_NE(p.get(p.emplace(std::uint64_t{1})), nullptr);
  EXPECT_TRUE(d.running());
}

/// A fake shmd in a child: accepts one client, reads its hello and answers `reply`.
template <class M> slabtest::child fake_daemon(const std::string& path, const M& reply) {
  auto l = platform::listen_seqpacket(path, 0600);
  if (!l) throw std::runtime_error(l.error().what);
  auto listener = std::make_shared<platform::unique_fd>(std::move(l.value()));
  return slabtest::child::spawn([listener, reply] {
    pollfd p{listener->get(), POLLIN, 0};
    CHILD_CHECK(::poll(&p, 1, 10000) == 1);
    auto a = platform::accept_seqpacket(listener->get());
    CHILD_CHECK(a.ok());
    const int fd = a.value().get();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK); // accepted non-blocking
    std::vector<platform::unique_fd> fds;
    char buf[proto::max_msg];
    CHILD_CHECK(platform::receive_message(fd, buf, sizeof buf, fds).ok());
    CHILD_CHECK(platform::send_message(fd, &reply, sizeof reply).ok());
    ::pause(); // until killed
    return 0;
  });
}

// The client's side of an ABI mismatch: a daemon of another ABI answers its hello.
TEST(errors, daemon_of_another_abi_is_abi_mismatch) {
  slabtest::temp_dir dir;
  proto::welcome w;
  w.h.abi = static_cast<std::uint16_t>(proto::abi_version + 1);
  slabtest::child fake = fake_daemon(dir.file("fake.sock"), w);
  const auto e = error_of([&] { (void)slab::client::connect(dir.file("fake.sock")); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), slab::errc::abi_mismatch) << e->what();
  EXPECT_TRUE(contains(e->what(), "ABI " + std::to_string(proto::abi_version + 1))) << e->what();
}

TEST(errors, peer_not_speaking_the_protocol_is_a_protocol_error) {
  slabtest::temp_dir dir;
  proto::welcome w;
  w.h.magic = 0x48545450; // not "SLAB"
  slabtest::child fake = fake_daemon(dir.file("fake.sock"), w);
  const auto e = error_of([&] { (void)slab::client::connect(dir.file("fake.sock")); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), slab::errc::protocol) << e->what();
}

} // namespace
