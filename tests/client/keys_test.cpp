// Keys across processes: a key erased in one process is stale in every other, racing
// erases of one key from several processes succeed exactly once (and run the destructor
// once), and keys made up by a hostile or buggy process are refused without harm.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include <slab/client.hpp>

#include <slabtest/checks.hpp>
#include <slabtest/daemon.hpp>

namespace {

using namespace std::chrono_literals;
using slab::key;
using slabtest::allocate;
using slabtest::check_and_erase;
using slabtest::child;
using slabtest::current_ledger;
using slabtest::daemon;
using slabtest::expect_clean_audit;
using slabtest::receive_value;
using slabtest::send_value;
using slabtest::shared_array;
using slabtest::stamp;
using slabtest::with_ledger;

// Process A makes keys and hands them to B; B sees them live; A erases them; B must
// then see them stale (get nullptr, erase false), also once A has reused their slots for
// new values, which B sees live under their new keys only.
TEST(keys, erased_in_one_process_stale_in_another) {
  constexpr std::uint32_t n = 1000;
  daemon d;
  with_ledger ledger(1U << 20);
  slabtest::pipe_pair a_to_b, b_to_a;
  child a = child::spawn([&] {
    a_to_b.read_end.close();
    b_to_a.write_end.close();
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<stamp> p = c.open<stamp>("test");
    std::vector<key> old, fresh;
    std::uint32_t seq = 0;
    for (std::uint32_t i = 0; i < n; ++i)
      old.push_back(allocate(p, 0, seq++));
    for (key k : old)
      CHILD_CHECK(send_value(a_to_b.write_end.get(), k.raw()));
    char ack = 0;
    CHILD_CHECK(receive_value(b_to_a.read_end.get(), ack)); // B has seen them live
    for (key k : old)
      CHILD_CHECK(p.erase(k));
    // The cache is LIFO: the next allocations reuse the slots just freed.
    std::set<std::uint32_t> old_slots;
    for (key k : old)
      old_slots.insert(k.index());
    std::uint32_t reused = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      fresh.push_back(allocate(p, 0, seq++));
      reused += old_slots.count(fresh.back().index()) != 0 ? 1U : 0U;
    }
    CHILD_CHECK_MSG(reused > n / 2, "only " << reused << " slots reused");
    for (key k : fresh)
      CHILD_CHECK(send_value(a_to_b.write_end.get(), k.raw()));
    CHILD_CHECK(receive_value(b_to_a.read_end.get(), ack)); // B has checked
    for (key k : fresh)
      check_and_erase(p, k); // B's refused erases freed nothing
    return 0;
  });
  child b = child::spawn([&] {
    a_to_b.write_end.close();
    b_to_a.read_end.close();
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<stamp> p = c.open<stamp>("test");
    std::vector<key> old(n), fresh(n);
    for (key& k : old) {
      std::uint64_t raw = 0;
      CHILD_CHECK(receive_value(a_to_b.read_end.get(), raw));
      k = key::from_raw(raw);
      stamp* s = p.get(k);
      CHILD_CHECK_MSG(s != nullptr && s->key == raw, "A's live key " << raw);
    }
    const char ack = 1;
    CHILD_CHECK(send_value(b_to_a.write_end.get(), ack));
    for (key& k : fresh) {
      std::uint64_t raw = 0;
      CHILD_CHECK(receive_value(a_to_b.read_end.get(), raw));
      k = key::from_raw(raw);
    }
    for (key k : old) {
      CHILD_CHECK_MSG(p.get(k) == nullptr, "stale key " << k.raw() << " still reads");
      CHILD_CHECK_MSG(!p.erase(k), "stale key " << k.raw() << " erased");
    }
    for (key k : fresh) {
      stamp* s = p.get(k);
      CHILD_CHECK_MSG(s != nullptr && s->key == k.raw(), "A's new key " << k.raw());
    }
    CHILD_CHECK(send_value(b_to_a.write_end.get(), ack));
    return 0;
  });
  a_to_b.read_end.close();
  a_to_b.write_end.close();
  b_to_a.read_end.close();
  b_to_a.write_end.close();
  const slabtest::exit_status sa = a.wait(), sb = b.wait();
  EXPECT_TRUE(sa.ok()) << "A " << sa.describe();
  EXPECT_TRUE(sb.ok()) << "B " << sb.describe();
  expect_clean_audit(d, 0);
}

// Processes erase the same keys at the same moment (a barrier before every key): for
// each key exactly one erase returns true, and the value's destructor runs once.
class racing_erase : public ::testing::TestWithParam<int> {};

TEST_P(racing_erase, succeeds_once_per_key_across_processes) {
  constexpr std::uint32_t n = 5000;
  const int racers = GetParam();
  daemon d;
  with_ledger ledger(1U << 20);
  shared_array<std::uint64_t> keys(n);
  shared_array<std::atomic<std::uint32_t>> wins(n);
  shared_array<slabtest::spin_barrier> barrier(1);
  const slabtest::exit_status made = slabtest::run_in_child([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<stamp> p = c.open<stamp>("test");
    for (std::uint32_t i = 0; i < n; ++i)
      keys[i] = allocate(p, 0, i).raw();
    return 0; // the keys stay live after this process is gone
  });
  ASSERT_TRUE(made.ok()) << made.describe();
  const std::uint64_t destroyed_before = ledger->counters().destructions.load();

  std::vector<slabtest::pipe_pair> counts(static_cast<std::size_t>(racers));
  std::vector<child> kids;
  for (int r = 0; r < racers; ++r) {
    kids.push_back(child::spawn([&, r] {
      slab::client c = slab::client::connect(d.socket_path());
      slab::pool<stamp> p = c.open<stamp>("test");
      std::uint64_t won = 0;
      for (std::uint32_t i = 0; i < n; ++i) {
        CHILD_CHECK(barrier->arrive_and_wait(static_cast<std::uint64_t>(racers), i));
        const key k = key::from_raw(keys[i]);
        if (p.erase(k)) {
          wins[i].fetch_add(1);
          ++won;
        }
        CHILD_CHECK(p.get(k) == nullptr);
      }
      CHILD_CHECK(send_value(counts[static_cast<std::size_t>(r)].write_end.get(), won));
      return 0;
    }));
  }
  std::uint64_t total = 0;
  for (auto& c : counts) {
    c.write_end.close();
    std::uint64_t won = 0;
    EXPECT_TRUE(receive_value(c.read_end.get(), won));
    total += won;
  }
  for (auto& k : kids) {
    const slabtest::exit_status st = k.wait();
    EXPECT_TRUE(st.ok()) << st.describe();
  }
  EXPECT_EQ(total, n) << "successful erases over all racers";
  std::uint32_t not_once = 0;
  for (std::uint32_t i = 0; i < n; ++i)
    not_once += wins[i].load() != 1 ? 1U : 0U;
  EXPECT_EQ(not_once, 0U) << "keys not erased exactly once";
  EXPECT_EQ(ledger->counters().destructions.load() - destroyed_before, n) << "destructors run";
  expect_clean_audit(d, 0);
}

INSTANTIATE_TEST_SUITE_P(racers, racing_erase, ::testing::Values(2, 3),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return std::to_string(i.param) + "_processes";
                         });

// A value that counts, in shared memory, the destructor run on it in the pool once it
// has been moved out: take must run it exactly once per key, in the winner only.
struct carried {
  std::uint64_t value;
  std::atomic<std::uint64_t>* destroyed_in_pool;
  bool moved_from = false;
  carried(std::uint64_t v, std::atomic<std::uint64_t>* d) noexcept
      : value(v), destroyed_in_pool(d) {}
  carried(carried&& o) noexcept : value(o.value), destroyed_in_pool(nullptr) {
    o.moved_from = true;
  }
  carried& operator=(carried&&) = delete;
  ~carried() {
    if (moved_from && destroyed_in_pool != nullptr) destroyed_in_pool->fetch_add(1);
  }
};

// Processes take the same keys at the same moment: for each key exactly one take gets
// the value (the one written), the others get nothing, the key is stale afterwards in
// every process, and the destructor runs once on the value in the pool.
TEST(keys, racing_takes_move_each_value_out_once_across_processes) {
  constexpr std::uint32_t n = 5000;
  constexpr int racers = 2;
  daemon d;
  shared_array<std::uint64_t> keys(n);
  shared_array<std::atomic<std::uint32_t>> wins(n);
  shared_array<std::atomic<std::uint64_t>> destroyed(1);
  shared_array<slabtest::spin_barrier> barrier(1);
  const slabtest::exit_status made = slabtest::run_in_child([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<carried> p = c.open<carried>("test");
    for (std::uint32_t i = 0; i < n; ++i)
      keys[i] = p.emplace(std::uint64_t{i} * 7 + 1, &destroyed[0]).raw();
    return 0;
  });
  ASSERT_TRUE(made.ok()) << made.describe();
  std::vector<child> kids;
  for (int r = 0; r < racers; ++r) {
    kids.push_back(child::spawn([&] {
      slab::client c = slab::client::connect(d.socket_path());
      slab::pool<carried> p = c.open<carried>("test");
      for (std::uint32_t i = 0; i < n; ++i) {
        CHILD_CHECK(barrier->arrive_and_wait(static_cast<std::uint64_t>(racers), i));
        const key k = key::from_raw(keys[i]);
        if (const std::optional<carried> v = p.take(k)) {
          CHILD_CHECK(v->value == std::uint64_t{i} * 7 + 1);
          wins[i].fetch_add(1);
        }
        CHILD_CHECK(p.get(k) == nullptr);
        CHILD_CHECK(!p.take(k));
        CHILD_CHECK(!p.erase(k));
      }
      return 0;
    }));
  }
  for (auto& k : kids) {
    const slabtest::exit_status st = k.wait();
    EXPECT_TRUE(st.ok()) << st.describe();
  }
  std::uint32_t not_once = 0;
  for (std::uint32_t i = 0; i < n; ++i)
    not_once += wins[i].load() != 1 ? 1U : 0U;
  EXPECT_EQ(not_once, 0U) << "keys not taken exactly once";
  EXPECT_EQ(destroyed[0].load(), n) << "destructors run in the pool";
  {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<carried> p = c.open<carried>("test");
    EXPECT_FALSE(p.take(key{})) << "key 0";
    EXPECT_FALSE(p.take(key::from_raw(~std::uint64_t{0}))) << "a made-up key";
  }
  expect_clean_audit(d, 0);
}

// Keys no process ever made: random words, key 0, indices past the pool, even
// generations, generations not reached yet. None reads, none erases, nothing breaks,
// and the real keys of another process stay live and intact.
TEST(keys, made_up_keys_from_another_process_are_refused) {
  constexpr std::uint32_t n = 500;
  constexpr std::uint64_t max_slots = 1U << 20;
  daemon d;
  with_ledger ledger(max_slots);
  shared_array<std::uint64_t> keys(n);
  slabtest::pipe_pair go, done;
  child owner = child::spawn([&] {
    go.read_end.close();
    done.write_end.close();
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<stamp> p = c.open<stamp>("test");
    for (std::uint32_t i = 0; i < n; ++i)
      keys[i] = allocate(p, 0, i).raw();
    CHILD_CHECK(send_value(go.write_end.get(), n));
    std::uint32_t ack = 0;
    CHILD_CHECK(receive_value(done.read_end.get(), ack)); // the attacker is finished
    for (std::uint32_t i = 0; i < n; ++i)
      check_and_erase(p, key::from_raw(keys[i]));
    return 0;
  });
  go.write_end.close();
  done.read_end.close();
  std::uint32_t ready = 0;
  ASSERT_TRUE(receive_value(go.read_end.get(), ready));

  const slabtest::exit_status st = slabtest::run_in_child([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<stamp> p = c.open<stamp>("test");
    const slab::pool_stats s = p.stats();
    std::set<std::uint64_t> live(keys.get(), keys.get() + n);
    std::vector<std::uint64_t> bad{0, ~std::uint64_t{0}};
    auto add = [&](std::uint32_t index, std::uint32_t gen) {
      bad.push_back(key::make(index, gen).raw());
    };
    for (const std::uint32_t idx :
         {std::uint32_t{0xFFFFFFFF}, static_cast<std::uint32_t>(max_slots),
          static_cast<std::uint32_t>(max_slots + 1), static_cast<std::uint32_t>(s.ready_slots),
          static_cast<std::uint32_t>(s.ready_slots - 1), std::uint32_t{0x7FFFFFFF}}) {
      for (const std::uint32_t gen : {0U, 1U, 2U, 3U, 0xFFFFFFFFU})
        add(idx, gen);
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      const key k = key::from_raw(keys[i]);
      for (const std::uint32_t gen : {k.generation() - 1, k.generation() + 1, k.generation() + 2,
                                      k.generation() + 4, k.generation() ^ 0x80000000U, 0U}) {
        add(k.index(), gen);
      }
    }
    std::mt19937_64 rng(2026);
    for (int i = 0; i < 200000; ++i)
      bad.push_back(rng());
    for (int i = 0; i < 20000; ++i) // plausible keys: odd generations, indices in range
      add(static_cast<std::uint32_t>(rng() % s.ready_slots),
          static_cast<std::uint32_t>(rng() % 64) | 1U);
    std::uint64_t tried = 0;
    for (const std::uint64_t raw : bad) {
      if (live.count(raw) != 0) continue; // a real key, by chance
      const key k = key::from_raw(raw);
      CHILD_CHECK_MSG(p.get(k) == nullptr, "made-up key " << std::hex << raw << " reads");
      CHILD_CHECK_MSG(!p.erase(k), "made-up key " << std::hex << raw << " erased");
      ++tried;
    }
    CHILD_CHECK(tried > 200000);
    for (std::uint32_t i = 0; i < n; ++i) {
      const stamp* v = p.get(key::from_raw(keys[i]));
      CHILD_CHECK_MSG(v != nullptr && v->key == keys[i], "real key " << keys[i] << " harmed");
    }
    CHILD_CHECK(p.stats().live == n);
    return 0;
  });
  EXPECT_TRUE(st.ok()) << st.describe();
  EXPECT_TRUE(send_value(done.write_end.get(), n));
  const slabtest::exit_status so = owner.wait();
  EXPECT_TRUE(so.ok()) << "the owner of the real keys " << so.describe();
  expect_clean_audit(d, 0);
}

// Hole 4 of the hardening issue: two young pools hand out the same indices with the
// same generations, so a key of one used to name a live value of the other. Each pool's
// keys carry its own salt (proto::key_salt): a key of pool b misses in pool a, whether
// it is read, erased or taken, and pool a's values are untouched.
TEST(keys, a_key_of_another_pool_misses) {
  slabtest::daemon_cfg cfg;
  cfg.pools = {slabtest::pool_cfg{}, slabtest::pool_cfg{}};
  cfg.pools[0].name = "a";
  cfg.pools[1].name = "b";
  daemon d(cfg);
  slab::client c = slab::client::connect(d.socket_path());
  slab::pool<std::uint64_t> a = c.open<std::uint64_t>("a");
  slab::pool<std::uint64_t> b = c.open<std::uint64_t>("b");
  constexpr std::uint64_t n = 512;
  std::vector<key> in_a, in_b;
  for (std::uint64_t i = 0; i < n; ++i) {
    in_a.push_back(a.emplace(i));
    in_b.push_back(b.emplace(1000 + i));
  }
  std::size_t same_slot = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const key kb = in_b[i];
    same_slot += kb.index() == in_a[i].index() ? 1U : 0U;
    EXPECT_NE(kb, in_a[i]) << "pools a and b handed out the same key " << kb.raw();
    EXPECT_EQ(a.get(kb), nullptr) << "b's key " << kb.raw() << " reads a value of a";
    EXPECT_FALSE(a.erase(kb));
    EXPECT_FALSE(a.take(kb).has_value());
  }
  EXPECT_EQ(same_slot, n) << "the pools are young: the same indices, in the same order";
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_NE(a.get(in_a[i]), nullptr) << "a's value " << i << " was erased by b's key";
    EXPECT_EQ(*a.get(in_a[i]), i);
    EXPECT_EQ(*b.get(in_b[i]), 1000 + i);
  }
  // A key survives its round trip through raw() in the pool that made it.
  EXPECT_EQ(*b.get(key::from_raw(in_b[7].raw())), 1007U);
}

} // namespace
