// slab::slab<T>: the API (emplace, get, erase, size, capacity, reserve, clear,
// iteration), staleness, hostile keys, layout and alignment, max_capacity, backings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <slab/slab.hpp>

namespace {

using slab::key;

template <class T> using slab_of = slab::slab<T>;

static_assert(!std::is_copy_constructible_v<slab_of<int>>);
static_assert(!std::is_copy_assignable_v<slab_of<int>>);
static_assert(std::is_nothrow_move_constructible_v<slab_of<int>>);
static_assert(std::is_nothrow_move_assignable_v<slab_of<int>>);
static_assert(std::is_same_v<decltype(std::declval<slab_of<int>&>().get(key{})), int*>);
static_assert(std::is_same_v<decltype(std::declval<const slab_of<int>&>().get(key{})), const int*>);
static_assert(
    std::is_same_v<decltype(std::declval<slab_of<int>&>().try_emplace(1)), std::optional<key>>);
static_assert(std::input_iterator<slab_of<int>::iterator>);
static_assert(slab::backing<slab::heap_backing>);

std::uintptr_t addr(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

struct order {
  std::uint64_t id;
  double price;
  order(std::uint64_t i, double p) : id(i), price(p) {}
};

TEST(slab, emplace_get_erase) {
  slab_of<order> book;
  EXPECT_TRUE(book.empty());
  EXPECT_EQ(book.size(), 0U);

  const key a = book.emplace(42U, 100.5);
  const key b = book.emplace(43U, 101.0);
  EXPECT_TRUE(a.plausible());
  EXPECT_TRUE(b.plausible());
  EXPECT_NE(a, b);
  EXPECT_NE(a.index(), b.index());
  EXPECT_EQ(book.size(), 2U);
  EXPECT_FALSE(book.empty());

  order* oa = book.get(a);
  ASSERT_NE(oa, nullptr);
  EXPECT_EQ(oa->id, 42U);
  EXPECT_EQ(oa->price, 100.5);
  ASSERT_NE(book.get(b), nullptr);
  EXPECT_EQ(book.get(b)->id, 43U);
  EXPECT_TRUE(book.contains(a));

  oa->price = 99.0; // values are mutable in place
  EXPECT_EQ(book.get(a)->price, 99.0);

  EXPECT_TRUE(book.erase(a));
  EXPECT_EQ(book.size(), 1U);
  EXPECT_EQ(book.get(a), nullptr);
  EXPECT_FALSE(book.contains(a));
  EXPECT_FALSE(book.erase(a)) << "double erase must be refused";
  EXPECT_EQ(book.size(), 1U);
  ASSERT_NE(book.get(b), nullptr);
  EXPECT_EQ(book.get(b)->id, 43U);

  EXPECT_TRUE(book.erase(b));
  EXPECT_TRUE(book.empty());
}

TEST(slab, const_get) {
  slab_of<int> s;
  const key k = s.emplace(7);
  const slab_of<int>& cs = s;
  const int* p = cs.get(k);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
  EXPECT_EQ(p, s.get(k));
  EXPECT_TRUE(cs.contains(k));
  EXPECT_EQ(cs.size(), 1U);
  ASSERT_TRUE(s.erase(k));
  EXPECT_EQ(cs.get(k), nullptr);
  EXPECT_FALSE(cs.contains(k));
}

TEST(slab, stale_after_erase_and_after_reuse) {
  slab_of<int> s;
  const key old = s.emplace(1);
  ASSERT_TRUE(s.erase(old));
  EXPECT_EQ(s.get(old), nullptr);

  // LIFO free list: the very next emplace reuses the slot.
  const key fresh = s.emplace(2);
  EXPECT_EQ(fresh.index(), old.index());
  EXPECT_NE(fresh, old);
  EXPECT_NE(fresh.generation(), old.generation());
  EXPECT_TRUE(fresh.plausible());

  EXPECT_EQ(s.get(old), nullptr) << "an old key must not reach the new occupant";
  EXPECT_FALSE(s.erase(old));
  ASSERT_NE(s.get(fresh), nullptr);
  EXPECT_EQ(*s.get(fresh), 2);
  EXPECT_EQ(s.size(), 1U);

  // Many reuses of one slot: every retired key stays dead.
  std::vector<key> retired{old};
  key cur = fresh;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(s.erase(cur));
    retired.push_back(cur);
    cur = s.emplace(i);
    ASSERT_EQ(cur.index(), old.index());
  }
  for (const key k : retired) {
    ASSERT_EQ(s.get(k), nullptr) << k.raw();
    ASSERT_FALSE(s.erase(k)) << k.raw();
  }
  ASSERT_NE(s.get(cur), nullptr);
  EXPECT_EQ(*s.get(cur), 999);
  EXPECT_EQ(s.size(), 1U);
}

TEST(slab, free_list_is_lifo) {
  slab_of<int> s;
  std::vector<key> k;
  for (int i = 0; i < 10; ++i)
    k.push_back(s.emplace(i));
  ASSERT_TRUE(s.erase(k[2]));
  ASSERT_TRUE(s.erase(k[7]));
  ASSERT_TRUE(s.erase(k[4]));
  EXPECT_EQ(s.emplace(0).index(), k[4].index());
  EXPECT_EQ(s.emplace(0).index(), k[7].index());
  EXPECT_EQ(s.emplace(0).index(), k[2].index());
  EXPECT_EQ(s.emplace(0).index(), 10U) << "then fresh space";
}

TEST(slab, key_zero_and_forged_keys_are_refused) {
  slab_of<int> s;
  EXPECT_EQ(s.get(key{}), nullptr) << "empty slab, no tiers";
  EXPECT_FALSE(s.erase(key{}));

  const key k0 = s.emplace(10); // index 0
  ASSERT_EQ(k0.index(), 0U);
  EXPECT_EQ(s.get(key{}), nullptr) << "key 0 names index 0 with generation 0";
  EXPECT_FALSE(s.erase(key{}));

  // Right index, wrong generation (odd and even), and a freed slot's own generation.
  EXPECT_EQ(s.get(key::make(0, k0.generation() + 2)), nullptr);
  EXPECT_EQ(s.get(key::make(0, k0.generation() + 1)), nullptr);
  const key k1 = s.emplace(11);
  ASSERT_TRUE(s.erase(k1));
  // The slot's generation is now k1.generation() + 1 (even): a key carrying exactly that
  // matches the header but names a free slot.
  EXPECT_EQ(s.get(key::make(k1.index(), k1.generation() + 1)), nullptr);
  EXPECT_FALSE(s.erase(key::make(k1.index(), k1.generation() + 1)));
  // Never-used slots inside the allocated tier have generation 0.
  ASSERT_GT(s.capacity(), 5U);
  EXPECT_EQ(s.get(key::make(5, 0)), nullptr);
  EXPECT_EQ(s.get(key::make(5, 1)), nullptr);
  EXPECT_FALSE(s.erase(key::make(5, 1)));

  // Out of range: at and past the capacity, the all-ones index, all-ones key.
  const auto cap = static_cast<std::uint32_t>(s.capacity());
  for (const std::uint32_t idx : {cap - 1U, cap, cap + 1U, 0x7FFFFFFFU, 0xFFFFFFFEU, 0xFFFFFFFFU}) {
    for (const std::uint32_t g : {0U, 1U, 2U, 3U, 0xFFFFFFFFU}) {
      EXPECT_EQ(s.get(key::make(idx, g)), nullptr) << idx << "/" << g;
      EXPECT_FALSE(s.erase(key::make(idx, g))) << idx << "/" << g;
    }
  }
  EXPECT_EQ(s.get(key::from_raw(~std::uint64_t{0})), nullptr);
  EXPECT_EQ(s.size(), 1U);
  ASSERT_NE(s.get(k0), nullptr);
  EXPECT_EQ(*s.get(k0), 10);
}

TEST(slab, capacity_grows_by_tiers_and_reserve) {
  slab_of<std::uint64_t> s(slab::slab_options{.first_tier = 10});
  EXPECT_EQ(s.capacity(), 0U) << "no tier before the first emplace";
  EXPECT_EQ(s.tier_count(), 0U);
  s.emplace(1U);
  EXPECT_EQ(s.capacity(), 16U) << "first tier rounded up to a power of two";
  EXPECT_EQ(s.tier_count(), 1U);
  for (int i = 1; i < 16; ++i)
    s.emplace(1U);
  EXPECT_EQ(s.capacity(), 16U);
  s.emplace(1U);
  EXPECT_EQ(s.capacity(), 32U);
  EXPECT_EQ(s.tier_count(), 2U);

  s.reserve(33);
  EXPECT_EQ(s.capacity(), 64U);
  EXPECT_EQ(s.tier_count(), 3U);
  s.reserve(64); // already there: no new tier
  EXPECT_EQ(s.tier_count(), 3U);
  s.reserve(0);
  EXPECT_EQ(s.capacity(), 64U);
  s.reserve(1000);
  EXPECT_EQ(s.capacity(), 1024U);
  EXPECT_EQ(s.tier_count(), 7U);
  EXPECT_EQ(s.size(), 17U);
  // Reserved space is used before any new tier.
  while (s.size() < 1024)
    s.emplace(2U);
  EXPECT_EQ(s.tier_count(), 7U);
}

TEST(slab, default_first_tier_is_about_64k_of_payload) {
  slab_of<std::uint64_t> s;
  s.emplace(1U);
  EXPECT_EQ(s.layout().stride, 16U);
  EXPECT_EQ(s.capacity() * s.layout().stride, 64U * 1024U);

  struct big {
    char b[100000];
  };
  auto sb = std::make_unique<slab_of<big>>();
  sb->emplace();
  EXPECT_EQ(sb->capacity(), 16U) << "never fewer than 16 slots";
}

TEST(slab, clear_destroys_all_and_keeps_capacity) {
  slab_of<int> s(slab::slab_options{.first_tier = 4});
  std::vector<key> keys;
  for (int i = 0; i < 100; ++i)
    keys.push_back(s.emplace(i));
  for (int i = 0; i < 100; i += 3)
    ASSERT_TRUE(s.erase(keys[static_cast<std::size_t>(i)]));
  const std::size_t cap = s.capacity();
  const unsigned tiers = s.tier_count();
  s.clear();
  EXPECT_EQ(s.size(), 0U);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.capacity(), cap);
  EXPECT_EQ(s.tier_count(), tiers);
  EXPECT_EQ(s.begin(), s.end());
  for (const key k : keys) {
    ASSERT_EQ(s.get(k), nullptr);
    ASSERT_FALSE(s.erase(k));
  }
  // Refill: the new keys are fresh, the old ones stay dead, no growth needed.
  std::vector<key> again;
  for (int i = 0; i < 100; ++i)
    again.push_back(s.emplace(i + 1000));
  EXPECT_EQ(s.capacity(), cap);
  for (const key k : keys)
    ASSERT_EQ(s.get(k), nullptr);
  for (int i = 0; i < 100; ++i) {
    const int* p = s.get(again[static_cast<std::size_t>(i)]);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(*p, i + 1000);
  }
  s.clear();
  s.clear(); // twice is fine
  EXPECT_TRUE(s.empty());
  slab_of<int> never_used;
  never_used.clear();
  EXPECT_TRUE(never_used.empty());
}

TEST(slab, iteration_visits_exactly_the_live_values_in_index_order) {
  slab_of<std::uint64_t> s(slab::slab_options{.first_tier = 8});
  EXPECT_EQ(s.begin(), s.end());
  std::mt19937_64 rng(11);
  std::map<std::uint32_t, std::pair<key, std::uint64_t>> live; // by index
  std::vector<key> all;
  for (std::uint64_t i = 0; i < 3000; ++i) {
    const key k = s.emplace(i * 3);
    all.push_back(k);
    live[k.index()] = {k, i * 3};
  }
  for (const key k : all) {
    if (rng() % 3 == 0) {
      ASSERT_TRUE(s.erase(k));
      live.erase(k.index());
    }
  }
  // Reuse some freed slots so live entries are not in emplace order.
  for (std::uint64_t i = 0; i < 200; ++i) {
    const key k = s.emplace(i + 100000);
    live[k.index()] = {k, i + 100000};
  }
  ASSERT_EQ(s.size(), live.size());

  auto want = live.begin();
  std::size_t n = 0;
  for (auto e : s) {
    ASSERT_NE(want, live.end()) << "visited more than the live values";
    EXPECT_EQ(e.key, want->second.first);
    EXPECT_EQ(e.value, want->second.second);
    EXPECT_EQ(&e.value, s.get(e.key));
    ++want;
    ++n;
  }
  EXPECT_EQ(want, live.end());
  EXPECT_EQ(n, live.size());
  EXPECT_EQ(static_cast<std::size_t>(std::distance(s.begin(), s.end())), live.size());

  // Values can be modified through the iteration.
  for (auto e : s)
    e.value += 1;
  for (const auto& [idx, kv] : live) {
    ASSERT_NE(s.get(kv.first), nullptr);
    EXPECT_EQ(*s.get(kv.first), kv.second + 1);
  }
  // Post-increment returns the old position.
  auto it = s.begin();
  const auto was = it++;
  EXPECT_EQ((*was).key, live.begin()->second.first);
  EXPECT_EQ((*it).key, std::next(live.begin())->second.first);
}

TEST(slab, erase_current_element_during_iteration) {
  slab_of<int> s(slab::slab_options{.first_tier = 4});
  std::vector<key> keys;
  for (int i = 0; i < 500; ++i)
    keys.push_back(s.emplace(i));
  // Erase the odd values while iterating; every value is still visited once.
  std::vector<int> seen;
  for (auto it = s.begin(); it != s.end(); ++it) {
    const auto e = *it;
    seen.push_back(e.value);
    if (e.value % 2 != 0) {
      ASSERT_TRUE(s.erase(e.key));
    }
  }
  ASSERT_EQ(seen.size(), 500U);
  for (int i = 0; i < 500; ++i)
    EXPECT_EQ(seen[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(s.size(), 250U);
  std::vector<int> left;
  for (auto e : s)
    left.push_back(e.value);
  ASSERT_EQ(left.size(), 250U);
  for (std::size_t i = 0; i < left.size(); ++i)
    EXPECT_EQ(left[i], static_cast<int>(2 * i));

  // Erase everything during iteration.
  std::size_t visited = 0;
  for (auto it = s.begin(); it != s.end(); ++it) {
    ASSERT_TRUE(s.erase((*it).key));
    ++visited;
  }
  EXPECT_EQ(visited, 250U);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.begin(), s.end());
  for (const key k : keys)
    EXPECT_EQ(s.get(k), nullptr);
}

TEST(slab, values_sit_stride_apart_within_a_tier) {
  struct line {
    char c[64];
  };
  slab_of<line> s(slab::slab_options{.first_tier = 64});
  static_assert(slab_of<line>::layout().stride == 64);
  const line* prev = nullptr;
  for (int i = 0; i < 64; ++i) {
    const line* p = s.get(s.emplace());
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(addr(p) % 64, 0U) << "a 64-byte slot owns its cache line";
    if (prev != nullptr) {
      EXPECT_EQ(addr(p) - addr(prev), 64U);
    }
    prev = p;
  }
  EXPECT_EQ(s.tier_count(), 1U);
}

template <class T> void check_alignment(std::size_t n) {
  slab_of<T> s(slab::slab_options{.first_tier = 2});
  static_assert(slab_of<T>::layout().align >= alignof(T));
  static_assert(slab_of<T>::layout().stride % alignof(T) == 0);
  std::vector<key> keys;
  for (std::size_t i = 0; i < n; ++i) {
    const key k = s.emplace();
    keys.push_back(k);
    T* p = s.get(k);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(addr(p) % alignof(T), 0U) << "value " << i << " in tier " << s.tier_count() - 1;
    p->data[0] = static_cast<unsigned char>(i);
  }
  EXPECT_GE(s.tier_count(), 4U);
  for (std::size_t i = 0; i < n; ++i)
    EXPECT_EQ(s.get(keys[i])->data[0], static_cast<unsigned char>(i));
}

struct alignas(128) over128 {
  unsigned char data[3];
};
struct alignas(4096) page {
  unsigned char data[100];
};
struct alignas(32) small32 {
  unsigned char data[8];
};
struct tiny {
  unsigned char data[1];
};

TEST(slab, over_aligned_types_are_aligned) {
  check_alignment<over128>(100);
  check_alignment<page>(40);
  check_alignment<small32>(100);
  check_alignment<tiny>(100);
  static_assert(slab_of<over128>::layout().align == 128 &&
                slab_of<over128>::layout().stride == 128);
  static_assert(slab_of<page>::layout().align == 4096 && slab_of<page>::layout().stride == 4096);
  static_assert(slab_of<tiny>::layout().align == alignof(std::max_align_t));
}

TEST(slab, max_capacity_exhausts_cleanly) {
  slab_of<int> s(slab::slab_options{.first_tier = 16, .max_capacity = 40});
  EXPECT_EQ(s.max_capacity(), 40U);
  std::vector<key> keys;
  for (int i = 0; i < 40; ++i)
    keys.push_back(s.emplace(i));
  EXPECT_EQ(s.capacity(), 40U) << "capacity is capped at max_capacity";
  EXPECT_EQ(s.size(), 40U);

  try {
    s.emplace(99);
    ADD_FAILURE() << "emplace past max_capacity must throw";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::exhausted);
    EXPECT_NE(std::string(e.what()), "");
  }
  EXPECT_EQ(s.try_emplace(99), std::nullopt);
  EXPECT_EQ(s.try_emplace(99), std::nullopt);
  EXPECT_EQ(s.size(), 40U);
  EXPECT_EQ(s.capacity(), 40U);
  try {
    s.reserve(41);
    ADD_FAILURE() << "reserve past max_capacity must throw";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::exhausted);
  }
  EXPECT_NO_THROW(s.reserve(40));

  // Still usable: everything intact, a freed slot is taken again, by both forms.
  for (int i = 0; i < 40; ++i) {
    ASSERT_NE(s.get(keys[static_cast<std::size_t>(i)]), nullptr);
    ASSERT_EQ(*s.get(keys[static_cast<std::size_t>(i)]), i);
  }
  ASSERT_TRUE(s.erase(keys[5]));
  const std::optional<key> k = s.try_emplace(500);
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->index(), keys[5].index());
  EXPECT_EQ(*s.get(*k), 500);
  EXPECT_THROW(s.emplace(1), slab::error);
  ASSERT_TRUE(s.erase(*k));
  const key k2 = s.emplace(501);
  EXPECT_EQ(*s.get(k2), 501);
  EXPECT_EQ(s.get(*k), nullptr);
  EXPECT_EQ(s.size(), 40U);
  // Every index handed out is below max_capacity.
  for (auto e : s)
    EXPECT_LT(e.key.index(), 40U);
}

TEST(slab, max_capacity_smaller_than_first_tier_and_zero) {
  slab_of<int> s(slab::slab_options{.first_tier = 1024, .max_capacity = 3});
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(s.try_emplace(i).has_value());
  EXPECT_EQ(s.capacity(), 3U);
  EXPECT_FALSE(s.try_emplace(3).has_value());
  EXPECT_THROW(s.emplace(3), slab::error);
  EXPECT_EQ(s.size(), 3U);

  slab_of<int> none(slab::slab_options{.max_capacity = 0});
  EXPECT_FALSE(none.try_emplace(1).has_value());
  try {
    none.emplace(1);
    ADD_FAILURE() << "a zero-capacity slab cannot hold anything";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::exhausted);
  }
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.capacity(), 0U);

  // A max_capacity above what keys can address is clamped to it.
  slab_of<int> huge(slab::slab_options{.max_capacity = ~std::uint64_t{0}});
  EXPECT_EQ(huge.max_capacity(), slab::core::max_slots);
}

// A backing that counts, checks the contract, and fails on demand.
struct backing_stats {
  int allocs = 0;
  int frees = 0;
  bool fail = false;
  int fill = -1; // >= 0: every block comes back filled with this byte, like recycled memory
  std::map<void*, std::pair<std::size_t, std::size_t>> blocks; // p -> bytes, align
};
struct test_backing {
  backing_stats* st;
  void* allocate(std::size_t bytes, std::size_t align) {
    EXPECT_GT(bytes, 0U);
    EXPECT_EQ(align & (align - 1), 0U);
    if (st->fail) throw slab::error(slab::errc::out_of_memory, "test backing refuses");
    void* p = slab::heap_backing{}.allocate(bytes, align);
    if (st->fill >= 0) std::memset(p, st->fill, bytes);
    ++st->allocs;
    st->blocks[p] = {bytes, align};
    return p;
  }
  void deallocate(void* p, std::size_t bytes, std::size_t align) noexcept {
    ++st->frees;
    const auto it = st->blocks.find(p);
    EXPECT_NE(it, st->blocks.end()) << "deallocate of a block never allocated";
    if (it != st->blocks.end()) {
      EXPECT_EQ(it->second.first, bytes);
      EXPECT_EQ(it->second.second, align);
      st->blocks.erase(it);
    }
    slab::heap_backing{}.deallocate(p, bytes, align);
  }
};
static_assert(slab::backing<test_backing>);

TEST(slab, backing_is_called_once_per_tier_and_failure_is_clean) {
  backing_stats st;
  {
    slab::slab<std::uint64_t, test_backing> s(slab::slab_options{.first_tier = 4},
                                              test_backing{&st});
    std::vector<key> keys;
    for (std::uint64_t i = 0; i < 100; ++i)
      keys.push_back(s.emplace(i));
    EXPECT_EQ(st.allocs, static_cast<int>(s.tier_count()));
    EXPECT_EQ(s.capacity(), 128U);
    EXPECT_EQ(st.frees, 0);
    // Erase and emplace never touch the backing.
    for (int r = 0; r < 1000; ++r) {
      ASSERT_TRUE(s.erase(keys[5]));
      keys[5] = s.emplace(5U);
    }
    EXPECT_EQ(st.allocs, static_cast<int>(s.tier_count()));

    const std::size_t cap = s.capacity();
    for (std::size_t i = s.size(); i < cap; ++i)
      keys.push_back(s.emplace(i));
    ASSERT_EQ(s.capacity(), cap);
    ASSERT_EQ(s.size(), cap);
    st.fail = true;
    const unsigned tiers = s.tier_count();
    try {
      s.emplace(1U);
      ADD_FAILURE() << "growth failure must throw";
    } catch (const slab::error& e) {
      EXPECT_EQ(e.code(), slab::errc::out_of_memory);
    }
    EXPECT_FALSE(s.try_emplace(1U).has_value());
    EXPECT_THROW(s.reserve(cap + 1), slab::error);
    EXPECT_EQ(s.size(), cap);
    EXPECT_EQ(s.capacity(), cap);
    EXPECT_EQ(s.tier_count(), tiers);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ASSERT_NE(s.get(keys[i]), nullptr) << i;
    }
    // A freed slot still works without the backing.
    ASSERT_TRUE(s.erase(keys[0]));
    EXPECT_TRUE(s.try_emplace(0U).has_value());
    // The backing recovers: growth resumes.
    st.fail = false;
    EXPECT_TRUE(s.try_emplace(7U).has_value());
    EXPECT_EQ(s.tier_count(), tiers + 1);
    EXPECT_EQ(st.allocs, static_cast<int>(s.tier_count()));
  }
  EXPECT_EQ(st.frees, st.allocs) << "every tier returned exactly once";
  EXPECT_TRUE(st.blocks.empty());
}

TEST(slab, emplace_may_copy_from_a_value_in_the_same_slab_across_growth) {
  // Tiers never move, so a reference into the slab survives the growth that the
  // emplace itself triggers.
  slab_of<std::string> s(slab::slab_options{.first_tier = 1});
  key k = s.emplace(std::string(100, 'x'));
  for (int i = 0; i < 20; ++i) {
    const std::string& src = *s.get(k);
    k = s.emplace(src); // often the emplace that adds a tier
    ASSERT_EQ(*s.get(k), std::string(100, 'x'));
  }
  EXPECT_EQ(s.size(), 21U);
}

TEST(slab, garbage_in_fresh_tiers_is_never_taken_for_a_header) {
  // A backing owes the slab no zeroed memory (the heap recycles). Fill every tier with
  // bytes that read as live generations (0xFF.., 0xA5.., 0x01..) or an even one (0x5A..)
  // and check that nothing but real keys ever reaches a value.
  for (const int fill : {0xFF, 0xA5, 0x01, 0x5A}) {
    SCOPED_TRACE(testing::Message() << "fill 0x" << std::hex << fill);
    const auto word = static_cast<std::uint32_t>(0x01010101U * static_cast<unsigned>(fill));
    backing_stats st;
    st.fill = fill;
    slab::slab<std::uint64_t, test_backing> s(slab::slab_options{.first_tier = 8},
                                              test_backing{&st});
    std::map<std::uint64_t, std::uint64_t> model;
    std::vector<key> keys;
    for (std::uint64_t i = 0; i < 100; ++i) {
      const key k = s.emplace(i);
      ASSERT_TRUE(k.plausible());
      ASSERT_TRUE(model.emplace(k.raw(), i).second);
      keys.push_back(k);
    }
    for (std::size_t i = 0; i < keys.size(); i += 3) {
      ASSERT_TRUE(s.erase(keys[i]));
      model.erase(keys[i].raw());
    }
    auto probe = [&] {
      const auto cap = static_cast<std::uint32_t>(s.capacity());
      for (std::uint32_t idx = 0; idx < cap + 8; ++idx) {
        for (const std::uint32_t g : {word, word - 1U, word + 1U, word + 2U, 1U, 3U}) {
          const key k = key::make(idx, g);
          const bool live = model.count(k.raw()) == 1;
          ASSERT_EQ(s.get(k) != nullptr, live) << idx << "/" << g;
        }
      }
      std::size_t n = 0;
      for (auto e : s) {
        ASSERT_EQ(model.count(e.key.raw()), 1U) << e.key.raw();
        ASSERT_EQ(model[e.key.raw()], e.value);
        ++n;
      }
      ASSERT_EQ(n, model.size());
      ASSERT_EQ(s.size(), model.size());
    };
    probe();
    if (HasFatalFailure()) return;
    // Reuse, then a clear, then refill past the old high-water mark into a new tier.
    for (std::uint64_t i = 0; i < 20; ++i) {
      const key k = s.emplace(i + 1000);
      model.emplace(k.raw(), i + 1000);
    }
    probe();
    if (HasFatalFailure()) return;
    s.clear();
    model.clear();
    probe();
    if (HasFatalFailure()) return;
    const std::size_t cap = s.capacity();
    for (std::uint64_t i = 0; i < cap + 5; ++i) {
      const key k = s.emplace(i + 2000);
      ASSERT_TRUE(model.emplace(k.raw(), i + 2000).second);
    }
    probe();
    if (HasFatalFailure()) return;
    for (const key k : keys) {
      ASSERT_EQ(s.get(k), nullptr);
      ASSERT_FALSE(s.erase(k));
    }
  }
}

TEST(slab, reserve_past_max_capacity_fails_up_front) {
  backing_stats st;
  slab::slab<int, test_backing> s(slab::slab_options{.first_tier = 4, .max_capacity = 40},
                                  test_backing{&st});
  try {
    s.reserve(41);
    ADD_FAILURE() << "reserve past max_capacity must throw";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::exhausted);
  }
  EXPECT_EQ(st.allocs, 0) << "nothing allocated for a reserve that cannot succeed";
  EXPECT_EQ(s.capacity(), 0U);
  EXPECT_THROW(s.reserve(~std::size_t{0}), slab::error);
  EXPECT_EQ(st.allocs, 0);
  s.reserve(40);
  EXPECT_EQ(s.capacity(), 40U);
}

TEST(slab, moves_keep_fresh_slots_clean_over_recycled_memory) {
  // After a move, both the slab moved to and the one moved from keep handing out fresh
  // slots correctly, with tiers that arrive full of live-looking garbage.
  backing_stats st;
  st.fill = 0xFF;
  using dirty_slab = slab::slab<std::uint64_t, test_backing>;
  std::map<std::uint64_t, std::uint64_t> model_b;
  auto check = [](dirty_slab& s, const std::map<std::uint64_t, std::uint64_t>& model) {
    const auto cap = static_cast<std::uint32_t>(s.capacity());
    for (std::uint32_t idx = 0; idx < cap + 4; ++idx) {
      for (const std::uint32_t g : {0xFFFFFFFFU, 1U, 3U}) {
        const key k = key::make(idx, g);
        const auto it = model.find(k.raw());
        const std::uint64_t* p = s.get(k);
        ASSERT_EQ(p != nullptr, it != model.end()) << idx << "/" << g;
        if (p != nullptr) {
          ASSERT_EQ(*p, it->second);
        }
      }
    }
    std::size_t n = 0;
    for (auto e : s) {
      ASSERT_EQ(model.count(e.key.raw()), 1U);
      ++n;
    }
    ASSERT_EQ(n, model.size());
  };

  dirty_slab a(slab::slab_options{.first_tier = 4}, test_backing{&st});
  for (std::uint64_t i = 0; i < 6; ++i)
    model_b.emplace(a.emplace(i).raw(), i);
  dirty_slab b(std::move(a));
  for (std::uint64_t i = 6; i < 40; ++i) // grows b by several tiers
    model_b.emplace(b.emplace(i).raw(), i);
  check(b, model_b);
  if (HasFatalFailure()) return;

  std::map<std::uint64_t, std::uint64_t> model_a;
  for (std::uint64_t i = 0; i < 40; ++i) // the moved-from slab starts over
    model_a.emplace(a.emplace(i + 100).raw(), i + 100);
  check(a, model_a);
  if (HasFatalFailure()) return;

  dirty_slab c(slab::slab_options{.first_tier = 4}, test_backing{&st});
  c.emplace(std::uint64_t{1});
  c = std::move(b);
  for (std::uint64_t i = 40; i < 100; ++i)
    model_b.emplace(c.emplace(i).raw(), i);
  check(c, model_b);
  if (HasFatalFailure()) return;
  for (std::uint64_t i = 0; i < 10; ++i) // and the one moved from by assignment
    b.emplace(i);
  EXPECT_EQ(b.size(), 10U);
  for (auto e : b)
    EXPECT_LT(e.value, 10U);
}

} // namespace
