// slab::slab<T> under load: hostile keys against a model of the live set, and address
// stability across growth to millions of slots.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include <slab/slab.hpp>

namespace {

using slab::key;

// Keys an attacker (or a bug) might present: uniformly random, near-miss generations on
// real indices, live keys with one bit flipped, retired keys, and boundary indices.
class hostile_keys {
public:
  explicit hostile_keys(std::uint64_t seed) : rng_(seed) {}

  key next(std::size_t capacity, const std::vector<key>& live, const std::vector<key>& retired) {
    const std::uint64_t r = rng_();
    switch (r % 8) {
    case 0: return key::from_raw(rng_());
    case 1:
    case 2: {
      // A real or nearly real index with a small generation: collides often with the
      // generations the slots actually carry.
      const auto idx = static_cast<std::uint32_t>(rng_() % (capacity + 64));
      return key::make(idx, static_cast<std::uint32_t>(rng_() % 48));
    }
    case 3:
      if (!live.empty()) {
        const key k = live[rng_() % live.size()];
        return key::from_raw(k.raw() ^ (std::uint64_t{1} << (rng_() % 64)));
      }
      return key{};
    case 4:
      if (!retired.empty()) return retired[rng_() % retired.size()];
      return key{};
    case 5: {
      const std::uint32_t edge[] = {0, 1, 0x7FFFFFFFU, 0x80000000U, 0xFFFFFFFEU, 0xFFFFFFFFU};
      return key::make(edge[rng_() % 6], static_cast<std::uint32_t>(rng_()));
    }
    case 6:
      // A live key itself: must hit.
      if (!live.empty()) return live[rng_() % live.size()];
      return key{};
    default: return key::make(static_cast<std::uint32_t>(rng_()), 1); // generation 1, any index
    }
  }

private:
  std::mt19937_64 rng_;
};

TEST(slab_fuzz, hostile_keys_never_hit_falsely) {
  using value_t = std::uint64_t;
  slab::slab<value_t> s(slab::slab_options{.first_tier = 64});
  std::unordered_map<std::uint64_t, value_t> model;   // raw key -> value
  std::vector<key> live;                              // the model's keys, for sampling
  std::unordered_map<std::uint64_t, std::size_t> pos; // raw key -> position in live
  std::vector<key> retired;
  std::mt19937_64 rng(0xF0221E5ULL);
  hostile_keys hostile(0xBADC0FFEEULL);

  auto add = [&](value_t v) {
    const key k = s.emplace(v);
    ASSERT_TRUE(k.plausible());
    ASSERT_TRUE(model.emplace(k.raw(), v).second) << "a key handed out twice: " << k.raw();
    pos[k.raw()] = live.size();
    live.push_back(k);
  };
  auto forget = [&](key k) {
    model.erase(k.raw());
    const std::size_t p = pos[k.raw()];
    pos.erase(k.raw());
    if (p + 1 != live.size()) {
      live[p] = live.back();
      pos[live[p].raw()] = p;
    }
    live.pop_back();
    if (retired.size() < 100000) retired.push_back(k);
  };

  std::uint64_t false_hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t bad_values = 0;
  std::uint64_t hits = 0;
  std::uint64_t erased_hostile = 0;
  constexpr int rounds = 40;
  constexpr int lookups_per_round = 60000;
  for (int round = 0; round < rounds; ++round) {
    // Churn: grow in the first half, shrink and regrow after, so generations climb.
    const int adds = round < rounds / 2 ? 6000 : 3000;
    for (int i = 0; i < adds; ++i) {
      add(rng());
      if (testing::Test::HasFatalFailure()) return;
    }
    const std::size_t drops = live.size() / 3;
    for (std::size_t i = 0; i < drops; ++i) {
      const key k = live[rng() % live.size()];
      ASSERT_TRUE(s.erase(k));
      forget(k);
    }

    for (int i = 0; i < lookups_per_round; ++i) {
      const key k = hostile.next(s.capacity(), live, retired);
      const value_t* got = s.get(k);
      const auto it = model.find(k.raw());
      if (it == model.end()) {
        if (got != nullptr) ++false_hits;
      } else if (got == nullptr) {
        ++misses;
      } else {
        ++hits;
        if (*got != it->second) ++bad_values;
      }
    }
    // Hostile erases: only a live key may erase anything, and then exactly its value.
    for (int i = 0; i < lookups_per_round / 10; ++i) {
      const key k = hostile.next(s.capacity(), live, retired);
      const bool known = model.count(k.raw()) == 1;
      const std::size_t before = s.size();
      const bool erased = s.erase(k);
      if (erased != known) {
        ADD_FAILURE() << "erase(" << k.raw() << ") returned " << erased << ", model says " << known;
        return;
      }
      if (erased) {
        ++erased_hostile;
        ASSERT_EQ(s.size(), before - 1);
        forget(k);
      } else {
        ASSERT_EQ(s.size(), before);
      }
    }
    ASSERT_EQ(s.size(), model.size());
  }
  EXPECT_EQ(false_hits, 0U);
  EXPECT_EQ(misses, 0U);
  EXPECT_EQ(bad_values, 0U);
  // The fuzz really exercised both sides.
  EXPECT_GT(hits, 100000U);
  EXPECT_GT(erased_hostile, 100U);

  // Every live value intact, and iteration sees exactly the model.
  for (const auto& [raw, v] : model) {
    const value_t* p = s.get(key::from_raw(raw));
    ASSERT_NE(p, nullptr) << raw;
    ASSERT_EQ(*p, v) << raw;
  }
  std::size_t visited = 0;
  for (auto e : s) {
    const auto it = model.find(e.key.raw());
    ASSERT_NE(it, model.end()) << "iteration found a value the model does not have";
    ASSERT_EQ(e.value, it->second);
    ++visited;
  }
  EXPECT_EQ(visited, model.size());
}

TEST(slab_fuzz, random_u64_keys_on_a_large_slab) {
  // Pure random 64-bit keys, millions of them, against a slab whose every slot is live:
  // a hit is possible only on the exact live key.
  slab::slab<std::uint64_t> s(slab::slab_options{.first_tier = 1});
  std::unordered_map<std::uint64_t, std::uint64_t> model;
  for (std::uint64_t i = 0; i < 50000; ++i) {
    const key k = s.emplace(i * 0x9E3779B97F4A7C15ULL);
    model.emplace(k.raw(), i * 0x9E3779B97F4A7C15ULL);
  }
  std::mt19937_64 rng(1234);
  std::uint64_t wrong = 0;
  for (int i = 0; i < 3'000'000; ++i) {
    std::uint64_t raw = rng();
    // Every other key gets a live-looking generation and an in-range index.
    if ((i & 1) != 0) raw = (raw & 0xFFFFULL) | (std::uint64_t{1} << 32);
    const std::uint64_t* got = s.get(key::from_raw(raw));
    const auto it = model.find(raw);
    if ((it == model.end()) != (got == nullptr))
      ++wrong;
    else if (got != nullptr && *got != it->second)
      ++wrong;
  }
  EXPECT_EQ(wrong, 0U);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t raw = rng() | (std::uint64_t{1} << 33); // generation >= 2: never live here
    ASSERT_FALSE(s.erase(key::from_raw(raw))) << raw;
  }
  EXPECT_EQ(s.size(), 50000U);
}

TEST(slab_growth, addresses_are_stable_across_growth_to_millions) {
  constexpr std::size_t first = 1U << 20;
  constexpr std::size_t total = 1U << 22; // ~4M slots, 16-byte stride
  // Base 1: the most tiers (23) and the most growth events for this size.
  slab::slab<std::uint64_t> s(slab::slab_options{.first_tier = 1});
  std::vector<key> keys;
  std::vector<const std::uint64_t*> where;
  keys.reserve(total);
  where.reserve(total);
  auto value_of = [](std::size_t i) { return std::uint64_t{i} * 0x9E3779B97F4A7C15ULL + 1; };

  for (std::size_t i = 0; i < first; ++i) {
    keys.push_back(s.emplace(value_of(i)));
    where.push_back(s.get(keys.back()));
  }
  const unsigned tiers_before = s.tier_count();
  const std::uint64_t* const first_value = where.front();
  unsigned last_tiers = tiers_before;
  for (std::size_t i = first; i < total; ++i) {
    keys.push_back(s.emplace(value_of(i)));
    where.push_back(s.get(keys.back()));
    if (s.tier_count() != last_tiers) {
      // At every growth event the oldest value has not moved.
      last_tiers = s.tier_count();
      ASSERT_EQ(s.get(keys.front()), first_value);
      ASSERT_EQ(*first_value, value_of(0));
    }
  }
  EXPECT_GT(s.tier_count(), tiers_before);
  EXPECT_EQ(s.tier_count(), 23U);
  EXPECT_EQ(s.capacity(), total);
  EXPECT_EQ(s.size(), total);

  std::size_t moved = 0;
  std::size_t changed = 0;
  for (std::size_t i = 0; i < total; ++i) {
    const std::uint64_t* p = s.get(keys[i]);
    if (p != where[i])
      ++moved;
    else if (*p != value_of(i))
      ++changed;
  }
  EXPECT_EQ(moved, 0U);
  EXPECT_EQ(changed, 0U);

  // Distinct slots: sorted addresses at least one stride apart.
  std::vector<std::uintptr_t> sorted(total);
  for (std::size_t i = 0; i < total; ++i)
    sorted[i] = reinterpret_cast<std::uintptr_t>(where[i]);
  std::sort(sorted.begin(), sorted.end());
  std::size_t overlapping = 0;
  for (std::size_t i = 1; i < total; ++i) {
    if (sorted[i] - sorted[i - 1] < s.layout().stride) ++overlapping;
  }
  EXPECT_EQ(overlapping, 0U);

  // Reserve more and churn the front: the old addresses still hold.
  s.reserve(total + 1);
  EXPECT_EQ(s.tier_count(), 24U);
  for (std::size_t i = 0; i < 1000; ++i)
    ASSERT_TRUE(s.erase(keys[i]));
  for (std::size_t i = 0; i < 1000; ++i)
    s.emplace(std::uint64_t{0});
  for (std::size_t i = 1000; i < total; i += 97) {
    ASSERT_EQ(s.get(keys[i]), where[i]);
    ASSERT_EQ(*where[i], value_of(i));
  }
}

} // namespace
