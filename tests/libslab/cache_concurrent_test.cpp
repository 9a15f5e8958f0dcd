// Threads, one context each, churning one region: no slot handed out twice, racing
// double frees decided exactly once, every slot accounted for afterwards. Run under
// TSan in CI (label "concurrent").
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <slab/core/audit.hpp>
#include <slab/core/cache.hpp>
#include <slab/core/local_region.hpp>

namespace {

using slab::key;
using slab::core::cache;
using slab::core::local_region;

// Keys handed between threads, so that most frees are cross-context.
class mailbox {
public:
  void put(key k) {
    std::lock_guard<std::mutex> g(mu_);
    keys_.push_back(k);
  }
  bool take(key& k) {
    std::lock_guard<std::mutex> g(mu_);
    if (keys_.empty()) return false;
    k = keys_.back();
    keys_.pop_back();
    return true;
  }
  std::vector<key> drain() {
    std::lock_guard<std::mutex> g(mu_);
    return std::move(keys_);
  }

private:
  std::mutex mu_;
  std::vector<key> keys_;
};

// Each live slot's payload holds an owner tag; an alloc that finds a tag already set
// means the slot was handed out while live.
struct tagged_region {
  local_region r;
  explicit tagged_region(std::uint64_t slots, std::uint32_t contexts) : r(slots, contexts, 64) {
    r.grow(slots);
  }
  std::atomic<std::uint64_t>& tag(std::uint32_t idx) {
    return *static_cast<std::atomic<std::uint64_t>*>(r.payload(idx));
  }
};

TEST(cache_concurrent, threads_churn_and_free_each_others_slots) {
  constexpr int threads = 4;
  constexpr int ops = 200000;
  tagged_region tr(1 << 15, threads + 1);
  for (std::uint32_t i = 0; i < (1 << 15); ++i) {
    new (tr.r.payload(i)) std::atomic<std::uint64_t>(0);
  }
  mailbox box;
  std::atomic<int> double_handouts{0}, failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      cache<local_region> c(tr.r, tr.r.attach());
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<key> mine;
      for (int i = 0; i < ops; ++i) {
        const auto dice = static_cast<unsigned>(rng() % 100);
        if (dice < 45 || mine.empty()) {
          const key k = c.alloc();
          if (!k.plausible()) continue; // momentarily exhausted: fine
          std::uint64_t expected = 0;
          if (!tr.tag(k.index()).compare_exchange_strong(expected, k.raw())) ++double_handouts;
          (dice < 20 ? box.put(k) : mine.push_back(k));
        } else {
          key k;
          if (dice < 75 && box.take(k)) {
          } else {
            k = mine.back();
            mine.pop_back();
          }
          tr.tag(k.index()).store(0);
          if (!c.free(k)) ++failures;
        }
      }
      for (key k : mine)
        box.put(k);
    });
  }
  for (auto& th : pool)
    th.join();
  EXPECT_EQ(double_handouts.load(), 0);
  EXPECT_EQ(failures.load(), 0) << "a free of a live key was refused";
  const auto rep = slab::core::audit(tr.r);
  for (const auto& p : rep.problems)
    ADD_FAILURE() << p;
  EXPECT_EQ(rep.live, box.drain().size());
}

TEST(cache_concurrent, racing_double_frees_succeed_exactly_once) {
  constexpr int keys = 20000;
  local_region r(1 << 15, 3);
  r.grow(1 << 15);
  cache<local_region> owner(r, r.attach());
  std::vector<key> ks;
  for (int i = 0; i < keys; ++i)
    ks.push_back(owner.alloc());
  std::atomic<int> wins{0};
  std::atomic<bool> go{false};
  auto racer = [&] {
    cache<local_region> c(r, r.attach());
    while (!go.load()) {}
    for (key k : ks)
      wins += c.free(k) ? 1 : 0;
  };
  std::thread a(racer), b(racer);
  go = true;
  a.join();
  b.join();
  EXPECT_EQ(wins.load(), keys);
  const auto rep = slab::core::audit(r);
  for (const auto& p : rep.problems)
    ADD_FAILURE() << p;
  EXPECT_EQ(rep.live, 0U);
}

} // namespace
