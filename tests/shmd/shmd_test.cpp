// shmd as a process: how it refuses bad configs and sockets it cannot have (exit codes,
// messages naming the file and line or the path), its command line, its stop on
// signals, another shmd started on its socket, and what it does when a client dies:
// reclaims the context and keeps what the client left live.
#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include <slab/client.hpp>

#include "examples/order.hpp"
#include <slabtest/checks.hpp>
#include <slabtest/pool_view.hpp>

namespace {

using namespace std::chrono_literals;
using slab::key;
using slabtest::child;
using slabtest::contains;
using slabtest::daemon;
using slabtest::daemon_cfg;
using slabtest::pool_view;
using slabtest::run_shmd;
using slabtest::shared_array;
using slabtest::shmd_run;
using slabtest::temp_dir;
using slabtest::write_file;

/// A valid config (segments as memfds: nothing left behind) whose lines the table below
/// counts on: line 8 slot_size, 9 capacity, 10 max_capacity, 11 hugepages.
std::string base_config(const std::string& socket) {
  return "[daemon]\n" // 1
         "socket = \"" +
         socket +
         "\"\n"                   // 2
         "segment_dir = \"\"\n"   // 3
         "hugepage_dir = \"\"\n"  // 4
         "\n"                     // 5
         "[[pool]]\n"             // 6
         "name = \"test\"\n"      // 7
         "slot_size = 64\n"       // 8
         "capacity = 512\n"       // 9
         "max_capacity = 4096\n"  // 10
         "hugepages = \"off\"\n"; // 11
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  if (at == std::string::npos) throw std::logic_error("no '" + from + "' in the config");
  return text.replace(at, from.size(), to);
}

std::string describe(const shmd_run& r) {
  return r.status.describe() + "\nstdout:\n" + r.out + "stderr:\n" + r.err;
}

// ---------------------------------------------------------------------------------------
// Configs it refuses.

struct bad_config {
  const char* name;
  std::string (*text)(const std::string& socket); // nullptr: the file does not exist
  int line;                                       // 0: no line to name
  const char* says;
};

const bad_config bad_configs[] = {
    {"unknown_key", [](const std::string& s) { return base_config(s) + "colour = \"red\"\n"; }, 12,
     "unknown key \"colour\""},
    {"slot_size_zero",
     [](const std::string& s) {
       return replace(base_config(s), "slot_size = 64", "slot_size = 0");
     },
     8, "slot_size"},
    {"capacity_over_max_capacity",
     [](const std::string& s) {
       return replace(base_config(s), "capacity = 512", "capacity = 8192");
     },
     9, "capacity must not exceed max_capacity"},
    {"unknown_daemon_key",
     [](const std::string& s) { return replace(base_config(s), "hugepage_dir", "hugepages_dir"); },
     4, "hugepages_dir"},
    {"missing_file", nullptr, 0, "No such file or directory"},
};

void PrintTo(const bad_config& c, std::ostream* os) { *os << c.name; }

class shmd_bad_config : public ::testing::TestWithParam<bad_config> {};

TEST_P(shmd_bad_config, exits_1_naming_the_file_and_line) {
  const bad_config& c = GetParam();
  temp_dir dir;
  const std::string path = dir.file("shmd.toml");
  if (c.text != nullptr) write_file(path, c.text(dir.file("shmd.sock")));
  const shmd_run r = run_shmd(dir, {"--config", path});
  EXPECT_EQ(r.status.code(), 1) << describe(r);
  const std::string where = c.line > 0 ? path + ":" + std::to_string(c.line) + ":" : path;
  EXPECT_TRUE(contains(r.err, where)) << "expected " << where << " in\n" << r.err;
  EXPECT_TRUE(contains(r.err, c.says)) << "expected " << c.says << " in\n" << r.err;
  EXPECT_FALSE(r.said_ready());
  EXPECT_FALSE(std::filesystem::exists(dir.file("shmd.sock")));
}

INSTANTIATE_TEST_SUITE_P(table, shmd_bad_config, ::testing::ValuesIn(bad_configs),
                         [](const ::testing::TestParamInfo<bad_config>& i) {
                           return std::string(i.param.name);
                         });

// ---------------------------------------------------------------------------------------
// Sockets it cannot have.

void expect_socket_refused(const shmd_run& r, const std::string& socket) {
  EXPECT_EQ(r.status.code(), 2) << describe(r);
  EXPECT_TRUE(contains(r.err, socket)) << "expected the path " << socket << " in\n" << r.err;
  EXPECT_FALSE(r.said_ready());
}

TEST(shmd_socket, in_a_directory_that_does_not_exist) {
  temp_dir dir;
  const std::string socket = dir.file("no/such/dir/shmd.sock");
  write_file(dir.file("shmd.toml"), base_config(socket));
  const shmd_run r = run_shmd(dir, {"--config", dir.file("shmd.toml")});
  expect_socket_refused(r, socket);
  EXPECT_TRUE(contains(r.err, "No such file or directory")) << r.err;
}

TEST(shmd_socket, under_a_path_that_is_a_file) {
  temp_dir dir;
  write_file(dir.file("plain"), "not a directory\n");
  const std::string socket = dir.file("plain/shmd.sock");
  write_file(dir.file("shmd.toml"), base_config(socket));
  expect_socket_refused(run_shmd(dir, {"--config", dir.file("shmd.toml")}), socket);
}

TEST(shmd_socket, never_replaces_a_file_that_is_not_a_socket) {
  temp_dir dir;
  const std::string socket = dir.file("precious");
  write_file(socket, "keep me\n");
  write_file(dir.file("shmd.toml"), base_config(socket));
  const shmd_run r = run_shmd(dir, {"--config", dir.file("shmd.toml")});
  expect_socket_refused(r, socket);
  EXPECT_EQ(slabtest::read_file(socket), "keep me\n");
}

TEST(shmd_socket, in_a_directory_it_may_not_write) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run shmd as another uid";
  temp_dir dir;
  ::chmod(dir.path().c_str(), 0755); // nobody may read the config and enter, not write
  const std::string socket = dir.file("shmd.sock");
  write_file(dir.file("shmd.toml"), base_config(socket));
  const shmd_run r = run_shmd(dir, {"--config", dir.file("shmd.toml")}, 10s, 65534);
  expect_socket_refused(r, socket);
  EXPECT_TRUE(contains(r.err, "Permission denied")) << r.err;
}

// A second shmd with the same config while the first serves: it must refuse to start,
// and must not touch the pools the first one runs (adopting them would take over the
// running daemon's own context, record 0, and with it the slots that daemon holds).
TEST(shmd_socket, a_second_daemon_on_the_same_config_leaves_the_first_alone) {
  daemon d;
  slabtest::with_ledger ledger(1U << 20);
  // A client that dies holding `live` values and a partial cache: shmd reclaims it and
  // keeps the partial magazine's free slots in its own context's cache.
  auto client_dies = [&](std::uint32_t live, std::uint32_t first_tag) {
    slabtest::pipe_pair ready;
    child holder = child::spawn([&] {
      ready.read_end.close();
      slab::client c = slab::client::connect(d.socket_path());
      slab::pool<slabtest::stamp> p = c.open<slabtest::stamp>("test");
      for (std::uint32_t i = 0; i < live; ++i)
        (void)slabtest::allocate(p, 0, first_tag + i);
      CHILD_CHECK(slabtest::send_value(ready.write_end.get(), live));
      ::pause(); // until killed
      return 0;
    });
    ready.write_end.close();
    std::uint32_t got = 0;
    EXPECT_TRUE(slabtest::receive_value(ready.read_end.get(), got));
    const pid_t pid = holder.pid();
    holder.signal(SIGKILL);
    (void)holder.wait();
    EXPECT_TRUE(d.wait_for_log("of pid " + std::to_string(pid))) << d.stderr_text();
  };
  client_dies(1000 + 13, 0); // 13 past a magazine boundary: 19 free slots change hands
  slabtest::expect_clean_audit(d, 1013);

  const shmd_run second = run_shmd(d.dir(), {"--config", d.config_path()});
  EXPECT_EQ(second.status.code(), 2) << describe(second);
  EXPECT_TRUE(contains(second.err, "another daemon is listening")) << second.err;
  EXPECT_FALSE(contains(second.err, "reclaimed context 0"))
      << "the second shmd reclaimed the running daemon's own context:\n"
      << second.err;
  EXPECT_FALSE(second.said_ready());
  ASSERT_TRUE(d.running());
  {
    pool_view v(d.socket_path(), "test");
    EXPECT_EQ(v.map().info().daemon_pid.load(), static_cast<std::uint32_t>(d.pid()));
  }

  // The first daemon goes on: another client dies the same way, and the pool is sound.
  client_dies(2000 + 7, 100000);
  slabtest::expect_clean_audit(d, 3020);
  const slabtest::exit_status st = slabtest::run_in_child([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<slabtest::stamp> p = c.open<slabtest::stamp>("test");
    for (std::uint32_t i = 0; i < 20000; ++i)
      slabtest::check_and_erase(p, slabtest::allocate(p, 1, i));
    return 0;
  });
  EXPECT_TRUE(st.ok()) << st.describe();
  slabtest::expect_clean_audit(d, 3020);
}

// The same pools under another socket: the second shmd would find the first one's
// segment files in segment_dir and adopt them while the first serves them.
TEST(shmd_socket, a_second_daemon_on_the_same_segment_dir_refuses_to_start) {
  daemon d;
  const std::string other_config = d.dir().file("other.toml");
  write_file(other_config, replace(slabtest::read_file(d.config_path()), d.socket_path(),
                                   d.dir().file("other.sock")));
  const shmd_run second = run_shmd(d.dir(), {"--config", other_config});
  EXPECT_FALSE(second.said_ready()) << describe(second);
  EXPECT_EQ(second.status.code(), 2) << describe(second);
  EXPECT_TRUE(contains(second.err,
                       "another shmd is using the segment directory " + *d.config().segment_dir))
      << second.err;
  EXPECT_FALSE(contains(second.err, "reclaimed context")) << second.err;
  // Nor may it destroy them.
  const shmd_run destroy = run_shmd(d.dir(), {"--config", other_config, "--destroy"});
  EXPECT_NE(destroy.status.code(), 0) << describe(destroy);
  slab::client c = slab::client::connect(d.socket_path());
  slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
  EXPECT_NE(p.get(p.emplace(std::uint64_t{1})), nullptr);
}

// ---------------------------------------------------------------------------------------
// Command line and signals.

TEST(shmd_cli, help_and_version_exit_0) {
  temp_dir dir;
  const shmd_run help = run_shmd(dir, {"--help"});
  EXPECT_EQ(help.status.code(), 0) << describe(help);
  EXPECT_TRUE(contains(help.out, "usage: shmd --config FILE")) << help.out;
  const shmd_run version = run_shmd(dir, {"--version"});
  EXPECT_EQ(version.status.code(), 0) << describe(version);
  EXPECT_TRUE(contains(version.out, "shmd ")) << version.out;
  EXPECT_TRUE(contains(version.out, "protocol ABI " + std::to_string(slab::proto::abi_version)))
      << version.out;
}

TEST(shmd_cli, bad_usage_exits_1) {
  temp_dir dir;
  const shmd_run none = run_shmd(dir, {});
  EXPECT_EQ(none.status.code(), 1) << describe(none);
  EXPECT_TRUE(contains(none.err, "--config FILE is required")) << none.err;
  const shmd_run unknown = run_shmd(dir, {"--frobnicate"});
  EXPECT_EQ(unknown.status.code(), 1) << describe(unknown);
  EXPECT_TRUE(contains(unknown.err, "--frobnicate")) << unknown.err;
}

TEST(shmd_cli, check_validates_without_starting) {
  temp_dir dir;
  write_file(dir.file("shmd.toml"), base_config(dir.file("shmd.sock")));
  const shmd_run r = run_shmd(dir, {"--config", dir.file("shmd.toml"), "--check"});
  EXPECT_EQ(r.status.code(), 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "pool test: 64-byte slots")) << r.out;
  EXPECT_FALSE(r.said_ready());
  EXPECT_FALSE(std::filesystem::exists(dir.file("shmd.sock")));
}

class shmd_signal : public ::testing::TestWithParam<int> {};

TEST_P(shmd_signal, stops_cleanly_with_exit_0) {
  daemon d;
  {
    slab::client c = slab::client::connect(d.socket_path()); // serving before the signal
  }
  d.signal(GetParam());
  const slabtest::exit_status st = d.wait_exit(5s);
  EXPECT_TRUE(st.ok()) << st.describe() << "\n" << d.stderr_text();
  EXPECT_TRUE(contains(d.stderr_text(), std::string("stopping on ") + ::strsignal(GetParam())))
      << d.stderr_text();
}

INSTANTIATE_TEST_SUITE_P(signals, shmd_signal, ::testing::Values(SIGTERM, SIGINT),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return std::string(i.param == SIGTERM ? "SIGTERM" : "SIGINT");
                         });

// ---------------------------------------------------------------------------------------
// Clients that die.

/// What the dying gateway shares with the test: the orders it made, and the keys it had
/// in hand when it was killed (allocated, maybe not yet erased).
struct gateway_state {
  std::atomic<std::uint32_t> orders{0};
  std::atomic<std::uint64_t> in_hand[128];
};

demo::order make_order(std::uint64_t id) {
  demo::order o{};
  o.id = id;
  o.price_ticks = 10000 + static_cast<std::int64_t>(id % 200);
  o.quantity = 100 + static_cast<std::uint32_t>(id % 9) * 100;
  o.s = (id & 1) != 0 ? demo::side::sell : demo::side::buy;
  std::memcpy(o.symbol, "ACME", 5);
  o.checksum = demo::checksum_of(o);
  return o;
}

// A gateway creates orders, then churns (batches of allocations and erases) until it is
// killed at a random moment. shmd reclaims its context and says so; its orders stay
// live for the engine, which fills and erases every one; no slot is lost, and the only
// live slots left are the few the gateway had in hand, unrecorded, when it died.
TEST(shmd_client_death, orders_survive_a_gateway_killed_mid_churn) {
  constexpr int rounds = 4;
  constexpr std::uint32_t orders = 3000;
  daemon d;
  shared_array<gateway_state> state(rounds);
  shared_array<std::uint64_t> keys(rounds * orders);
  std::mt19937 rng(7);
  for (int round = 0; round < rounds; ++round) {
    gateway_state& gs = state[static_cast<std::size_t>(round)];
    std::uint64_t* mine = keys.get() + static_cast<std::size_t>(round) * orders;
    child gateway = child::spawn([&] {
      slab::client c = slab::client::connect(d.socket_path());
      slab::pool<demo::order> p = c.open<demo::order>("test");
      for (std::uint32_t i = 0; i < orders; ++i) {
        mine[i] = p.emplace(make_order(i + 1)).raw();
        gs.orders.store(i + 1);
      }
      std::mt19937 r(static_cast<unsigned>(::getpid()));
      for (std::uint64_t id = 1'000'000;; ++id) {
        const std::size_t len = 1 + r() % 128;
        for (std::size_t j = 0; j < len; ++j)
          gs.in_hand[j].store(p.emplace(make_order(id)).raw());
        for (std::size_t j = len; j-- > 0;) {
          (void)p.erase(key::from_raw(gs.in_hand[j].load()));
          gs.in_hand[j].store(0);
        }
      }
      return 0;
    });
    ASSERT_TRUE(slabtest::eventually([&] { return gs.orders.load() == orders; }, 10s));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    gateway.signal(SIGKILL);
    const pid_t pid = gateway.pid();
    const slabtest::exit_status st = gateway.wait();
    ASSERT_EQ(st.signal(), SIGKILL) << st.describe();
    EXPECT_TRUE(d.wait_for_log("of pid " + std::to_string(pid)))
        << "no reclaim of pid " << pid << " in\n"
        << d.stderr_text();
  }
  EXPECT_TRUE(contains(d.stderr_text(), "reclaimed context")) << d.stderr_text();

  // Every order outlived its gateway; the keys in hand are live or stale, never wrong.
  shared_array<std::atomic<std::uint64_t>> left_in_hand(1);
  const slabtest::exit_status engine = slabtest::run_in_child([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<demo::order> p = c.open<demo::order>("test");
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const key k = key::from_raw(keys[i]);
      demo::order* o = p.get(k);
      CHILD_CHECK_MSG(o != nullptr, "order " << i << " lost with its gateway");
      CHILD_CHECK_MSG(o->checksum == demo::checksum_of(*o) && o->id == i % orders + 1,
                      "order " << i << " corrupt");
      o->filled_quantity = o->quantity;
      CHILD_CHECK(p.erase(k));
    }
    for (int round = 0; round < rounds; ++round) {
      for (auto& h : state[static_cast<std::size_t>(round)].in_hand) {
        const key k = key::from_raw(h.load());
        if (demo::order* o = p.get(k)) {
          CHILD_CHECK(o->checksum == demo::checksum_of(*o) && o->id >= 1'000'000);
          CHILD_CHECK(p.erase(k));
          left_in_hand->fetch_add(1);
        }
      }
    }
    return 0;
  });
  EXPECT_TRUE(engine.ok()) << engine.describe();

  const slab::core::audit_report r = slabtest::audit_after_storm(d);
  // A gateway killed between emplace returning and recording the key leaves one live
  // slot nobody can name: at most one per kill.
  EXPECT_LE(r.live, static_cast<std::uint64_t>(rounds)) << pool_view::describe(r);
  EXPECT_FALSE(contains(d.stderr_text(), "warning: pool")) << d.stderr_text();
}

// shmd killed (-9) while a gateway churns: the gateway keeps allocating and freeing from
// its cache and the depot while no daemon runs; a new shmd adopts the pool from its
// segment files, values and all; the gateway's context, held across the restart, is
// reclaimed when the gateway dies; every order is intact and the audit is clean.
TEST(shmd_restart, values_survive_a_kill_9_of_shmd_under_load) {
  constexpr std::uint32_t orders = 3000;
  daemon d;
  shared_array<gateway_state> state(1);
  shared_array<std::atomic<std::uint64_t>> ops(1);
  shared_array<std::uint64_t> keys(orders);
  gateway_state& gs = state[0];
  child gateway = child::spawn([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<demo::order> p = c.open<demo::order>("test");
    for (std::uint32_t i = 0; i < orders; ++i) {
      keys[i] = p.emplace(make_order(i + 1)).raw();
      gs.orders.store(i + 1);
    }
    for (std::uint64_t id = 1'000'000;; ++id) {
      for (std::size_t j = 0; j < 16; ++j)
        gs.in_hand[j].store(p.emplace(make_order(id)).raw());
      for (std::size_t j = 16; j-- > 0;) {
        CHILD_CHECK(p.erase(key::from_raw(gs.in_hand[j].load())));
        gs.in_hand[j].store(0);
      }
      ops->fetch_add(1);
    }
    return 0;
  });
  ASSERT_TRUE(slabtest::eventually([&] { return gs.orders.load() == orders; }, 10s));

  d.signal(SIGKILL);
  ASSERT_EQ(d.wait_exit().signal(), SIGKILL);
  const std::uint64_t before = ops->load();
  EXPECT_TRUE(slabtest::eventually([&] { return ops->load() > before + 1000; }, 5s))
      << "the gateway stalled while shmd was down";

  d.restart();
  EXPECT_TRUE(d.wait_for_log("adopted from its segments")) << d.stderr_text();
  EXPECT_TRUE(contains(d.stderr_text(), "1 context(s) of running processes kept"))
      << d.stderr_text();

  const pid_t gw = gateway.pid();
  gateway.signal(SIGKILL);
  ASSERT_EQ(gateway.wait().signal(), SIGKILL);
  EXPECT_TRUE(d.wait_for_log("of pid " + std::to_string(gw))) << d.stderr_text();

  const slabtest::exit_status engine = slabtest::run_in_child([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<demo::order> p = c.open<demo::order>("test");
    for (std::uint32_t i = 0; i < orders; ++i) {
      const key k = key::from_raw(keys[i]);
      demo::order* o = p.get(k);
      CHILD_CHECK_MSG(o != nullptr, "order " << i << " lost across the restart");
      CHILD_CHECK_MSG(o->checksum == demo::checksum_of(*o) && o->id == i + 1,
                      "order " << i << " corrupt");
      CHILD_CHECK(p.erase(k));
    }
    for (auto& h : gs.in_hand) {
      const key k = key::from_raw(h.load());
      if (demo::order* o = p.get(k)) {
        CHILD_CHECK(o->checksum == demo::checksum_of(*o) && o->id >= 1'000'000);
        CHILD_CHECK(p.erase(k));
      }
    }
    return 0;
  });
  EXPECT_TRUE(engine.ok()) << engine.describe();
  const slab::core::audit_report r = slabtest::audit_after_storm(d);
  EXPECT_LE(r.live, 1U) << pool_view::describe(r);
}

// shmd killed (-9) while it prepares and offers a tier a chunk at a time, under a client
// that bursts through growth: the next shmd finds the tier offered in part, takes over
// what was offered (and a chunk whose magazines it had given the depot already), and
// prepares the rest. The client gets every slot it asks for and loses no value.
TEST(shmd_restart, a_daemon_killed_while_offering_a_tier_leaves_one_the_next_finishes) {
  constexpr std::uint64_t target = 1'500'000; // into tier 9 (slots 1048576 to 2097151)
  daemon_cfg cfg;
  cfg.pools[0].capacity = 4096;
  cfg.pools[0].max_capacity = std::uint64_t{1} << 21;
  daemon d(cfg);
  shared_array<std::uint64_t> keys(target);
  shared_array<std::atomic<std::uint64_t>> made(1);
  child burst = child::spawn([&] {
    slab::client c = slab::client::connect(d.socket_path(), {.grow_wait = 100ms});
    slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (std::uint64_t i = 0; i < target;) {
      if (const std::optional<key> k = p.try_emplace(i)) {
        keys[i] = k->raw();
        made->store(++i);
        continue;
      }
      // Dry while no shmd runs: the next one offers more.
      CHILD_CHECK_MSG(std::chrono::steady_clock::now() < deadline, "stuck at " << i);
    }
    for (std::uint64_t i = 0; i < target; ++i) {
      const std::uint64_t* v = p.get(key::from_raw(keys[i]));
      CHILD_CHECK_MSG(v != nullptr && *v == i, "value " << i << " lost");
    }
    return 0;
  });
  pool_view v(d.socket_path(), "test");
  // Catch shmd mid-tier: stopped while ready_slots is inside a tier (tiers end on powers
  // of two; chunks of 65536 slots end inside tiers 6 and up).
  bool caught = false;
  for (int tries = 0; tries < 5000 && made->load() < target; ++tries) {
    std::this_thread::sleep_for(std::chrono::microseconds(100 + tries % 7 * 50));
    d.signal(SIGSTOP);
    std::this_thread::sleep_for(1ms);
    const std::uint64_t ready = v.map().state().ready_slots.load();
    if (ready > 65536 && !std::has_single_bit(ready)) {
      d.signal(SIGKILL);
      caught = true;
      break;
    }
    d.signal(SIGCONT);
  }
  ASSERT_TRUE(caught) << "shmd was never caught mid-tier (the client made " << made->load() << ")";
  ASSERT_EQ(d.wait_exit().signal(), SIGKILL);
  d.restart();
  EXPECT_TRUE(d.wait_for_log("adopted from its segments")) << d.stderr_text();
  const slabtest::exit_status st = burst.wait(90s);
  ASSERT_TRUE(st.ok()) << st.describe() << "\n" << d.stderr_text();
  EXPECT_EQ(made->load(), target);
  EXPECT_TRUE(d.wait_for_log("tier 9 ready")) << d.stderr_text();
  slabtest::expect_clean_audit(d, target);
}

// shmd prepares a tier one chunk per round of its worker, so that the worker's other
// work does not wait for a whole tier: a client killed while a 4M-slot tier (64 chunks)
// is being offered is reclaimed before that tier is complete.
// A client asks shmd to grow a pool when its allocation found nothing. Asked while the
// pool is idle (a bug, or a local user who may connect), shmd must not lock tier after
// tier: eight requests once took a 64K-slot pool to 4M slots and 580 MB locked.
// A pool dropped from the config keeps its segments (values are never thrown away
// silently); the starting shmd says so, with the command that removes them.
TEST(shmd_restart, a_pool_dropped_from_the_config_is_named_at_start) {
  temp_dir segments("/dev/shm");
  daemon_cfg cfg;
  cfg.segment_dir = segments.path();
  cfg.pools[0].name = "old";
  { daemon d(cfg); }
  ASSERT_TRUE(std::filesystem::exists(segments.path() + "/old.control"));
  cfg.pools[0].name = "test";
  daemon d(cfg);
  ASSERT_TRUE(d.wait_for_log("pool 'old' has segments in " + segments.path() + " but is not in"))
      << d.stderr_text();
  EXPECT_TRUE(contains(d.stderr_text(), "--destroy old")) << d.stderr_text();
  EXPECT_FALSE(contains(d.stderr_text(), "pool 'test' has segments")) << d.stderr_text();
  EXPECT_TRUE(std::filesystem::exists(segments.path() + "/old.control")) << "left as it is";
}

TEST(shmd_growth, a_grow_request_for_a_pool_that_is_not_dry_is_ignored) {
  daemon_cfg cfg;
  cfg.log_level = "debug"; // an ignored request is logged at debug
  cfg.pools[0].capacity = 4096;
  cfg.pools[0].max_capacity = 1U << 20;
  daemon d(cfg);
  slabtest::raw_connection conn(d.socket_path());
  conn.hello();
  for (int i = 0; i < 8; ++i) {
    slab::proto::grow_req g;
    slab::proto::set_text(g.pool, "test");
    conn.send(g);
  }
  ASSERT_TRUE(d.wait_for_log("a client's grow request ignored: the pool is not dry"))
      << d.stderr_text();
  pool_view v(d.socket_path(), "test");
  EXPECT_EQ(v.map().info().tiers_published.load(), 1U) << d.stderr_text();
  EXPECT_EQ(v.map().state().ready_slots.load(), 4096U);
  // A pool that is really dry still grows at once when asked (emplace asks).
  slab::client c = slab::client::connect(d.socket_path());
  slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
  for (std::uint64_t i = 0; i < 3 * 4096; ++i)
    ASSERT_EQ(*p.get(p.emplace(i)), i);
  EXPECT_GE(p.stats().tiers, 2U);
}

TEST(shmd_growth, a_dead_client_is_reclaimed_between_chunks_of_a_growing_tier) {
  constexpr std::uint64_t big_tier = std::uint64_t{1} << 22; // tier 11: slots 4M to 8M
  daemon_cfg cfg;
  cfg.pools[0].capacity = 4096;
  cfg.pools[0].max_capacity = 2 * big_tier;
  daemon d(cfg);
  shared_array<std::atomic<int>> step(1);
  child victim = child::spawn([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
    (void)p.emplace(std::uint64_t{1});
    step->store(1);
    ::pause(); // until killed
    return 0;
  });
  ASSERT_TRUE(slabtest::eventually([&] { return step->load() == 1; }, 10s));
  // Past grow_at (0.75) of the 4M slots below tier 11: shmd starts it.
  child grower = child::spawn([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
    for (std::uint64_t i = 0; i < big_tier * 4 / 5; ++i)
      (void)p.emplace(i);
    return 0;
  });
  pool_view v(d.socket_path(), "test");
  const auto offering = [&] {
    const std::uint64_t ready = v.map().state().ready_slots.load();
    return ready > big_tier && ready < 2 * big_tier;
  };
  ASSERT_TRUE(slabtest::eventually(offering, 60s)) << d.stderr_text();
  const pid_t pid = victim.pid();
  victim.signal(SIGKILL);
  ASSERT_EQ(victim.wait().signal(), SIGKILL);
  ASSERT_TRUE(grower.wait(60s).ok());
  ASSERT_TRUE(d.wait_for_log("tier 11 ready", 60s)) << d.stderr_text();
  ASSERT_TRUE(d.wait_for_log("of pid " + std::to_string(pid))) << d.stderr_text();
  const std::string log = d.stderr_text();
  EXPECT_LT(log.find("of pid " + std::to_string(pid)), log.find("tier 11 ready"))
      << "the reclaim waited for the whole tier:\n"
      << log;
}

// A client that closes its socket but lives on keeps its context: shmd reclaims it only
// once the process is gone (its caches may still be in use).
TEST(shmd_client_death, context_outlives_the_socket_until_the_process_exits) {
  daemon d;
  slabtest::pipe_pair to_child, from_child;
  child c = child::spawn([&] {
    to_child.write_end.close();
    from_child.read_end.close();
    std::uint32_t ctx = 0;
    {
      slabtest::raw_connection conn(d.socket_path());
      conn.hello();
      std::vector<slab::platform::unique_fd> fds;
      ctx = conn.open("test", 8, 8, fds).context;
    } // the connection closes here; the process lives on
    CHILD_CHECK(slabtest::send_value(from_child.write_end.get(), ctx));
    char go = 0;
    (void)slabtest::receive_value(to_child.read_end.get(), go);
    return 0;
  });
  to_child.read_end.close();
  from_child.write_end.close();
  std::uint32_t ctx = 0;
  ASSERT_TRUE(slabtest::receive_value(from_child.read_end.get(), ctx));
  pool_view v(d.socket_path(), "test");
  // Give shmd time to see the socket close; the record must stay taken meanwhile.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(v.map().context(ctx).state.load(),
            static_cast<std::uint32_t>(slab::core::context_state::active))
      << "reclaimed while its process lives\n"
      << d.stderr_text();
  const pid_t pid = c.pid();
  EXPECT_TRUE(slabtest::send_value(to_child.write_end.get(), '!'));
  EXPECT_TRUE(c.wait().ok());
  EXPECT_TRUE(v.wait_reclaimed()) << d.stderr_text();
  EXPECT_TRUE(
      d.wait_for_log("reclaimed context " + std::to_string(ctx) + " of pid " + std::to_string(pid)))
      << d.stderr_text();
}

} // namespace
