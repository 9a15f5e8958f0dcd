// Pools shared by real processes through a real shmd: keys handed across processes,
// threads in processes churning with cross-process frees, stopped processes that must
// never block the others, growth up to max_capacity. After every storm the pool is
// audited read-only: every slot live or free exactly once, and exactly the slots the
// processes left live are live.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>

#include <slab/client.hpp>

#include <slabtest/checks.hpp>
#include <slabtest/daemon.hpp>

namespace {

using namespace std::chrono_literals;
using slab::key;
using slabtest::allocate;
using slabtest::check_and_erase;
using slabtest::child;
using slabtest::count_parked;
using slabtest::current_ledger;
using slabtest::daemon;
using slabtest::expect_clean_audit;
using slabtest::mailbox;
using slabtest::pool_view;
using slabtest::set_nonblocking;
using slabtest::shared_array;
using slabtest::stamp;
using slabtest::with_ledger;

using clock_type = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------
// Keys handed around a ring of processes.

struct handed_key {
  std::uint64_t key;
  std::uint64_t tag;
};

class ring : public ::testing::TestWithParam<int> {};

// Process i allocates keys and sends them to process i+1, which checks and erases them:
// every slot is freed by a process that did not allocate it, while its allocator keeps
// allocating from the same depot. Each also churns a local set and leaves `kept` live.
TEST_P(ring, processes_hand_keys_on_and_free_each_others_slots) {
  const int procs = GetParam();
  constexpr std::uint32_t sends = 20000, kept = 50;
  daemon d;
  with_ledger ledger(1U << 20);
  std::vector<slabtest::pipe_pair> links(static_cast<std::size_t>(procs));
  std::vector<slabtest::pipe_pair> results(static_cast<std::size_t>(procs));
  std::vector<child> kids;
  for (int i = 0; i < procs; ++i) {
    kids.push_back(child::spawn([&, i] {
      const auto me = static_cast<std::size_t>(i);
      const std::size_t prev = (me + static_cast<std::size_t>(procs) - 1) % links.size();
      for (std::size_t j = 0; j < links.size(); ++j) {
        if (j != me) links[j].write_end.close();
        if (j != prev) links[j].read_end.close();
        results[j].read_end.close();
        if (j != me) results[j].write_end.close();
      }
      const int out = links[me].write_end.get(), in = links[prev].read_end.get();
      set_nonblocking(out);
      slab::client c = slab::client::connect(d.socket_path());
      slab::pool<stamp> p = c.open<stamp>("test");
      std::mt19937 rng(static_cast<unsigned>(::getpid()));
      std::vector<key> local;
      std::optional<handed_key> pending;
      std::uint32_t sent = 0, received = 0, n = 0;
      bool in_open = true;
      while (in_open || sent < sends || pending) {
        pollfd fds[2] = {{in_open ? in : -1, POLLIN, 0},
                         {(sent < sends || pending) ? out : -1, POLLOUT, 0}};
        if (::poll(fds, 2, 1000) < 0 && errno != EINTR) return 2;
        if ((fds[1].revents & (POLLOUT | POLLERR)) != 0) {
          for (int burst = 0; burst < 64; ++burst) {
            if (!pending) {
              if (sent == sends) break;
              const key k = allocate(p, 0, n++);
              pending = handed_key{k.raw(), p.get(k)->tag};
              if (rng() % 4 == 0) local.push_back(allocate(p, 0, n++));
              if (local.size() > 200) {
                const std::size_t at = rng() % local.size();
                std::swap(local[at], local.back());
                check_and_erase(p, local.back());
                local.pop_back();
              }
            }
            const ssize_t w = ::write(out, &*pending, sizeof *pending);
            if (w < 0 && errno == EAGAIN) break;
            CHILD_CHECK_MSG(w == static_cast<ssize_t>(sizeof *pending), "pipe write " << w);
            pending.reset();
            ++sent;
          }
          if (sent == sends && !pending) links[me].write_end.close();
        }
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
          handed_key buf[256];
          const ssize_t r = ::read(in, buf, sizeof buf);
          if (r == 0) in_open = false;
          CHILD_CHECK(r >= 0 || errno == EINTR || errno == EAGAIN);
          CHILD_CHECK(r < 0 || r % static_cast<ssize_t>(sizeof(handed_key)) == 0);
          for (ssize_t j = 0; r > 0 && j < r / static_cast<ssize_t>(sizeof(handed_key)); ++j) {
            check_and_erase(p, key::from_raw(buf[j].key), buf[j].tag);
            ++received;
          }
        }
      }
      CHILD_CHECK_MSG(received == sends, "received " << received << " keys of " << sends);
      while (local.size() < kept)
        local.push_back(allocate(p, 0, n++));
      while (local.size() > kept) {
        check_and_erase(p, local.back());
        local.pop_back();
      }
      for (key k : local) {
        const handed_key h{k.raw(), p.get(k)->tag};
        CHILD_CHECK(slabtest::send_value(results[me].write_end.get(), h));
      }
      return 0;
    }));
  }
  for (auto& l : links) {
    l.read_end.close();
    l.write_end.close();
  }
  for (auto& r : results)
    r.write_end.close();
  std::vector<handed_key> left;
  for (auto& r : results) {
    handed_key h{};
    while (slabtest::receive_value(r.read_end.get(), h))
      left.push_back(h);
  }
  for (auto& k : kids) {
    const slabtest::exit_status st = k.wait();
    EXPECT_TRUE(st.ok()) << st.describe();
  }
  ASSERT_EQ(left.size(), static_cast<std::size_t>(procs) * kept);
  expect_clean_audit(d, left.size());

  // What the processes left live outlived them: a fresh client finds it intact, its
  // pool's stats count it, and erasing it leaves the pool empty.
  const slabtest::exit_status st = slabtest::run_in_child([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<stamp> p = c.open<stamp>("test");
    CHILD_CHECK_MSG(p.stats().live == left.size(), "stats().live " << p.stats().live);
    for (const handed_key& h : left)
      check_and_erase(p, key::from_raw(h.key), h.tag);
    CHILD_CHECK_MSG(p.stats().live == 0, "stats().live " << p.stats().live);
    return 0;
  });
  EXPECT_TRUE(st.ok()) << st.describe();
  expect_clean_audit(d, 0);
}

INSTANTIATE_TEST_SUITE_P(procs, ring, ::testing::Values(2, 4),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return std::to_string(i.param) + "_processes";
                         });

// ---------------------------------------------------------------------------------------
// Threads in processes, each thread its own pool<T>, frees across threads and processes.

/// One churning thread: own pool<T>, allocations, local erases, keys parked and taken.
void churn(slab::client& c, mailbox& box, std::uint32_t thread, clock_type::time_point until,
           std::atomic<std::uint64_t>& ops) {
  slab::pool<stamp> p = c.open<stamp>("test");
  std::mt19937 rng(static_cast<unsigned>(::getpid()) * 31U + thread);
  std::vector<key> mine;
  std::uint32_t n = 0;
  std::uint64_t done = 0;
  while (clock_type::now() < until) {
    for (int i = 0; i < 256; ++i, ++done) {
      const auto dice = static_cast<unsigned>(rng() % 100);
      if (dice < 45 || mine.empty()) {
        if (mine.size() < 400) mine.push_back(allocate(p, thread, n++));
      } else if (dice < 70) {
        std::swap(mine[rng() % mine.size()], mine.back());
        check_and_erase(p, mine.back());
        mine.pop_back();
      } else {
        const std::uint64_t old = box[rng() % box.size()].exchange(mine.back().raw());
        mine.pop_back();
        if (old != 0) check_and_erase(p, key::from_raw(old));
      }
    }
  }
  for (key k : mine)
    check_and_erase(p, k);
  ops.fetch_add(done);
}

TEST(processes, threads_in_processes_churn_and_free_across_both) {
  constexpr int procs = 3, threads = 3;
  daemon d;
  with_ledger ledger(1U << 20);
  mailbox box(1024);
  shared_array<std::atomic<int>> arrived(1), go(1);
  shared_array<std::atomic<std::uint64_t>> ops(1);
  std::vector<child> kids;
  for (int i = 0; i < procs; ++i) {
    kids.push_back(child::spawn([&] {
      slab::client c = slab::client::connect(d.socket_path());
      arrived->fetch_add(1);
      CHILD_CHECK(slabtest::eventually([&] { return go->load() != 0; }, 10s));
      const auto until = clock_type::now() + 1500ms;
      std::mutex mu;
      std::string failure;
      std::vector<std::thread> ts;
      for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
          try {
            churn(c, box, static_cast<std::uint32_t>(t), until, *ops);
          } catch (const std::exception& e) {
            std::lock_guard<std::mutex> g(mu);
            failure += std::string(e.what()) + "\n";
          }
        });
      }
      for (auto& t : ts)
        t.join();
      CHILD_CHECK_MSG(failure.empty(), failure);
      return 0;
    }));
  }
  ASSERT_TRUE(slabtest::eventually([&] { return arrived->load() == procs; }, 10s));
  go->store(1);
  for (auto& k : kids) {
    const slabtest::exit_status st = k.wait();
    EXPECT_TRUE(st.ok()) << st.describe();
  }
  EXPECT_GT(ops->load(), 10000U); // it churned at all
  expect_clean_audit(d, count_parked(box));
}

// ---------------------------------------------------------------------------------------
// Strict lock-freedom: processes stopped anywhere, mid-step included, block nobody.

TEST(lock_freedom, stopped_processes_never_block_a_fresh_client) {
  constexpr int churners = 4;
  constexpr std::uint32_t contexts = 16;
  constexpr std::uint32_t K = slab::core::magazine_slots;
  slabtest::daemon_cfg cfg;
  cfg.pools[0].contexts = contexts;
  daemon d(cfg);
  with_ledger ledger(1U << 20);
  mailbox box(512);
  shared_array<std::atomic<int>> arrived(1), stop(1);
  std::vector<child> kids;
  for (int i = 0; i < churners; ++i) {
    kids.push_back(child::spawn([&] {
      slab::client c = slab::client::connect(d.socket_path());
      slab::pool<stamp> p = c.open<stamp>("test");
      std::mt19937 rng(static_cast<unsigned>(::getpid()));
      std::vector<key> batch;
      std::uint32_t n = 0;
      arrived->fetch_add(1);
      while (stop->load() == 0) {
        // A batch long enough to cross magazine boundaries both ways.
        const std::size_t len = 1 + rng() % (3 * K);
        for (std::size_t j = 0; j < len; ++j)
          batch.push_back(allocate(p, 0, n++));
        for (int j = 0; j < 4 && !batch.empty(); ++j) {
          const std::uint64_t old = box[rng() % box.size()].exchange(batch.back().raw());
          batch.pop_back();
          if (old != 0) check_and_erase(p, key::from_raw(old));
        }
        while (!batch.empty()) {
          check_and_erase(p, batch.back());
          batch.pop_back();
        }
      }
      return 0;
    }));
  }
  ASSERT_TRUE(slabtest::eventually([&] { return arrived->load() == churners; }, 10s));

  // Stop and continue them at random moments, then leave every one stopped somewhere.
  std::mt19937 rng(12345);
  const auto until = clock_type::now() + 1200ms;
  while (clock_type::now() < until) {
    child& k = kids[rng() % kids.size()];
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
    k.signal(SIGSTOP);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
    k.signal(SIGCONT);
  }
  for (child& k : kids) {
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    k.signal(SIGSTOP);
  }
  for (child& k : kids)
    ASSERT_TRUE(k.wait_stopped()) << "churner " << k.pid() << " did not stop";

  // A fresh client allocates and frees far more than every cache could hold (2 magazines
  // of K per context), erases keys whose owners are stopped, and finishes.
  constexpr std::uint32_t per_round = 2 * K * (contexts + 1) + 1000;
  const slabtest::exit_status fresh = slabtest::run_in_child(
      [&] {
        slab::client c = slab::client::connect(d.socket_path());
        slab::pool<stamp> p = c.open<stamp>("test");
        std::uint32_t n = 0;
        for (int round = 0; round < 3; ++round) {
          std::vector<key> ks;
          for (std::uint32_t j = 0; j < per_round; ++j)
            ks.push_back(allocate(p, 1, n++));
          for (std::size_t j = 0; j < box.size(); j += 3) {
            const std::uint64_t old = box[j].exchange(0);
            if (old != 0) check_and_erase(p, key::from_raw(old));
          }
          for (key k : ks)
            check_and_erase(p, k);
        }
        return 0;
      },
      15s);
  EXPECT_TRUE(fresh.ok()) << "the fresh client " << fresh.describe()
                          << " while the others were stopped";

  stop->store(1);
  for (child& k : kids)
    k.signal(SIGCONT);
  for (child& k : kids) {
    const slabtest::exit_status st = k.wait(10s);
    EXPECT_TRUE(st.ok()) << st.describe();
  }
  expect_clean_audit(d, count_parked(box));
}

// ---------------------------------------------------------------------------------------
// Growth under load, up to max_capacity and past it.

enum class cmd : std::uint32_t { drain = 1, erase_some, exit };

TEST(growth, clients_grow_the_pool_to_max_capacity_then_fail_cleanly) {
  // Tiers of 4096, 4096, 8192, 16384 and 32768 slots: 65536 in five tiers.
  constexpr std::uint64_t max_slots = 65536;
  // Client 1 erases many more slots than a context caches (at most three magazines of K).
  constexpr std::uint32_t K = slab::core::magazine_slots;
  constexpr std::uint32_t per_client = 30000, erased = 32 * K;
  static_assert(erased <= per_client);
  slabtest::daemon_cfg cfg;
  cfg.pools[0].capacity = 4096;
  cfg.pools[0].max_capacity = max_slots;
  cfg.pools[0].contexts = 8;
  daemon d(cfg);
  with_ledger ledger(max_slots);
  {
    pool_view v(d.socket_path(), "test");
    ASSERT_EQ(v.map().info().tiers_published.load(), 1U);
    ASSERT_EQ(v.map().state().ready_slots.load(), 4096U);
  }
  slabtest::pipe_pair cmds[2], reports[2];
  std::vector<child> kids;
  for (int i = 0; i < 2; ++i) {
    kids.push_back(child::spawn([&, i] {
      const int in = cmds[i].read_end.get(), out = reports[i].write_end.get();
      slab::client c = slab::client::connect(d.socket_path());
      slab::pool<stamp> p = c.open<stamp>("test");
      std::vector<key> mine;
      unsigned tiers = p.stats().tiers, grew = 0;
      std::uint32_t n = 0;
      for (std::uint32_t j = 0; j < per_client; ++j) {
        mine.push_back(allocate(p, 0, n++)); // emplace throws if shmd does not keep up
        if (j % 512 == 0) {
          const unsigned t = p.stats().tiers;
          CHILD_CHECK_MSG(t >= tiers, "tiers went from " << tiers << " to " << t);
          grew += t > tiers ? 1 : 0;
          tiers = t;
        }
      }
      const slab::pool_stats s = p.stats();
      CHILD_CHECK_MSG(s.ready_slots >= 2 * per_client, "ready " << s.ready_slots);
      CHILD_CHECK(s.max_slots == max_slots);
      std::uint64_t report = grew;
      CHILD_CHECK(slabtest::send_value(out, report));

      // A second client with a short grow_wait drains the pool when told to.
      slab::client_options quick;
      quick.grow_wait = 50ms;
      slab::client c2 = slab::client::connect(d.socket_path(), quick);
      slab::pool<stamp> p2 = c2.open<stamp>("test");
      cmd what{};
      while (slabtest::receive_value(in, what) && what != cmd::exit) {
        std::uint64_t got = 0;
        if (what == cmd::drain) {
          while (std::optional<key> k = p2.try_emplace(slabtest::make_tag(2, n))) {
            p2.get(*k)->key = k->raw();
            CHILD_CHECK(current_ledger->claim(*k, slabtest::make_tag(2, n++)));
            ++got;
          }
          try {
            (void)p2.emplace(std::uint64_t{1});
            CHILD_CHECK_MSG(false, "emplace succeeded in a full pool");
          } catch (const slab::error& e) {
            CHILD_CHECK_MSG(e.code() == slab::errc::exhausted, slab::to_string(e.code()));
            CHILD_CHECK_MSG(slabtest::contains(e.what(), "full"), e.what());
          }
          CHILD_CHECK(!p2.try_emplace(std::uint64_t{1}));
          CHILD_CHECK(p2.stats().tiers == 5 && p2.stats().ready_slots == max_slots);
        } else if (what == cmd::erase_some) {
          for (std::uint32_t j = 0; j < erased; ++j) {
            check_and_erase(p, mine.back());
            mine.pop_back();
          }
        }
        CHILD_CHECK(slabtest::send_value(out, got));
      }
      return 0;
    }));
  }
  for (auto& p : cmds)
    p.read_end.close();
  for (auto& p : reports)
    p.write_end.close();
  auto report = [&](int who) {
    std::uint64_t v = 0;
    EXPECT_TRUE(slabtest::receive_value(reports[who].read_end.get(), v)) << "child " << who;
    return v;
  };
  auto ask = [&](int who, cmd what) {
    EXPECT_TRUE(slabtest::send_value(cmds[who].write_end.get(), what));
    return report(who);
  };
  const std::uint64_t grew = report(0) + report(1); // phase 1 done: 60000 live
  EXPECT_GE(grew, 1U) << "no client saw the pool grow while it allocated";

  // Client 0 drains the pool: everything not live is now in some context's cache.
  const std::uint64_t drained = ask(0, cmd::drain);
  std::uint64_t live = 2 * per_client + drained;
  {
    pool_view v(d.socket_path(), "test");
    const slab::core::audit_report r = v.audit();
    EXPECT_TRUE(r.ok()) << pool_view::describe(r);
    EXPECT_EQ(r.used, max_slots) << "fresh space left unused in a full pool";
    EXPECT_EQ(r.free_depot, 0U) << "full magazines left in the depot of a full pool";
    EXPECT_EQ(r.live, live);
    EXPECT_LE(r.free_cached, 3U * K * 4U) << pool_view::describe(r); // 4 contexts' caches
    // Every magazine, the control segment's and each tier's, starts on its own cache
    // line: two holders never write one line (shared_layout.hpp, struct magazine).
    ASSERT_TRUE(v.map_all());
    ASSERT_GT(v.map().magazine_count(), max_slots / K); // every tier's, and the extra ones
    for (std::uint32_t m = 0; m < v.map().magazine_count(); ++m)
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(&v.map().mag(m)) % 64, 0U) << "magazine " << m;
  }
  // Client 1 erases some; client 0 can have nearly all of them (all but client 1's cache).
  EXPECT_EQ(ask(1, cmd::erase_some), 0U);
  const std::uint64_t again = ask(0, cmd::drain);
  EXPECT_GE(again, erased - 2U * K);
  EXPECT_LE(again, erased + 3U * K * 4U);
  live = live - erased + again;
  for (int i = 0; i < 2; ++i)
    EXPECT_TRUE(slabtest::send_value(cmds[i].write_end.get(), cmd::exit));
  for (auto& k : kids) {
    const slabtest::exit_status st = k.wait();
    EXPECT_TRUE(st.ok()) << st.describe();
  }
  expect_clean_audit(d, live);
}

} // namespace
