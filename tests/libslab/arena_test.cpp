// slab::arena<T> (slab/arena.hpp): references that stay valid through millions of
// allocations and every growth, get without a generation check, bad indices refused,
// every value destroyed once with the arena.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <slab/arena.hpp>

namespace {

using slab::key;

struct item {
  std::uint64_t id;
  std::uint64_t check;
  explicit item(std::uint64_t i) : id(i), check(~i) {}
};

// An arena has no erase: a reference handed out cannot be invalidated by it.
template <class A>
concept has_erase = requires(A a, key k) {
  a.erase(k);
};
static_assert(!has_erase<slab::arena<item>>);
static_assert(has_erase<slab::slab<item>>);
static_assert(!std::is_copy_constructible_v<slab::arena<item>>);

TEST(arena, references_stay_put_through_millions_of_allocations) {
  constexpr std::uint64_t n = 3'000'000;
  slab::arena<item> a({.first_tier = 1024});
  std::vector<item*> refs;
  std::vector<key> keys;
  refs.reserve(n);
  keys.reserve(n / 7 + 1);
  for (std::uint64_t i = 0; i < n; ++i) {
    if (i % 7 == 0) {
      const key k = a.emplace(i);
      keys.push_back(k);
      refs.push_back(a.get(k));
    } else {
      refs.push_back(&a.alloc(i));
    }
  }
  EXPECT_EQ(a.size(), n);
  EXPECT_GE(a.tier_count(), 12U); // grew through a dozen tiers, moving nothing
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_EQ(refs[i]->id, i) << "reference " << i << " moved or was overwritten";
    ASSERT_EQ(refs[i]->check, ~i);
  }
  for (std::size_t j = 0; j < keys.size(); ++j) {
    ASSERT_EQ(a.get(keys[j]), refs[j * 7]);
    ASSERT_EQ(&a.at(keys[j]), refs[j * 7]);
  }
  std::uint64_t seen = 0;
  for (auto [k, v] : a) {
    ASSERT_EQ(v.id, seen);
    ASSERT_EQ(&v, refs[seen]);
    ASSERT_EQ(a.get(k), &v);
    ++seen;
  }
  EXPECT_EQ(seen, n);
}

TEST(arena, get_ignores_the_generation_and_refuses_indices_never_handed_out) {
  slab::arena<item> a;
  const key k = a.emplace(5U);
  // Same index, any generation: the arena never reuses a slot, so there is nothing to tell.
  EXPECT_EQ(a.get(key::make(k.index(), 12345)), a.get(k));
  EXPECT_EQ(a.get(key::make(k.index() + 1, 1)), nullptr);
  EXPECT_EQ(a.get(key::make(0xFFFFFFFEU, 1)), nullptr);
  try {
    (void)a.at(key::make(7, 1));
    ADD_FAILURE() << "at() of an index never handed out did not throw";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("index 7 was never handed out"), std::string::npos)
        << e.what();
  }
  const slab::arena<item>& ca = a;
  EXPECT_EQ(ca.get(k)->id, 5U);
}

struct counted {
  static inline long alive = 0;
  explicit counted(bool fail) {
    if (fail) throw std::runtime_error("no");
    ++alive;
  }
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  ~counted() { --alive; }
};

TEST(arena, values_die_with_the_arena_and_a_throwing_constructor_takes_nothing) {
  {
    slab::arena<counted> a;
    for (int i = 0; i < 1000; ++i)
      (void)a.alloc(false);
    EXPECT_THROW((void)a.alloc(true), std::runtime_error);
    EXPECT_EQ(a.size(), 1000U);
    EXPECT_EQ(counted::alive, 1000);
    const key k = a.emplace(false);
    EXPECT_EQ(k.index(), 1000U); // the slot the failed constructor tried
  }
  EXPECT_EQ(counted::alive, 0);
}

TEST(arena, max_capacity_is_reported_like_the_slab) {
  slab::arena<item> a({.first_tier = 16, .max_capacity = 32});
  for (std::uint64_t i = 0; i < 32; ++i)
    (void)a.alloc(i);
  try {
    (void)a.alloc(99U);
    ADD_FAILURE() << "allocated past max_capacity";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::exhausted);
  }
  EXPECT_EQ(a.size(), 32U);
}

} // namespace
