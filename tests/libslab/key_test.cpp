// slab::key (bit layout, key 0, ordering, hashing, plausible) and slab::error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include <slab/error.hpp>
#include <slab/key.hpp>

namespace {

using slab::key;

static_assert(sizeof(key) == sizeof(std::uint64_t));
static_assert(std::is_trivially_copyable_v<key>);
static_assert(std::is_nothrow_default_constructible_v<key>);
static_assert(!std::is_convertible_v<std::uint64_t, key>, "raw integers become keys only by name");
static_assert(!std::is_convertible_v<key, std::uint64_t>);
static_assert(!std::is_convertible_v<key, bool>, "operator bool is explicit");
static_assert(key::make(0, 1).raw() == (std::uint64_t{1} << 32));
static_assert(key::make(0xFFFFFFFFU, 0xFFFFFFFFU).raw() == ~std::uint64_t{0});

TEST(key, default_is_key_zero_and_invalid) {
  const key k{};
  EXPECT_EQ(k.raw(), 0U);
  EXPECT_FALSE(static_cast<bool>(k));
  EXPECT_FALSE(k.plausible());
  EXPECT_EQ(k.index(), 0U);
  EXPECT_EQ(k.generation(), 0U);
  EXPECT_EQ(key::from_raw(0), k);
  EXPECT_EQ(key::make(0, 0), k);
}

TEST(key, raw_round_trip_and_bit_split) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200000; ++i) {
    std::uint64_t r = rng();
    if (i < 64) r = std::uint64_t{1} << i; // every single bit, too
    const key k = key::from_raw(r);
    ASSERT_EQ(k.raw(), r);
    ASSERT_EQ(k.index(), static_cast<std::uint32_t>(r & 0xFFFFFFFFU));
    ASSERT_EQ(k.generation(), static_cast<std::uint32_t>(r >> 32));
    ASSERT_EQ(key::make(k.index(), k.generation()), k);
    ASSERT_EQ(key::from_raw(k.raw()), k);
    ASSERT_EQ(static_cast<bool>(k), r != 0);
  }
}

TEST(key, make_places_index_low_and_generation_high) {
  const key k = key::make(0x12345678U, 0x9ABCDEF1U);
  EXPECT_EQ(k.raw(), 0x9ABCDEF112345678ULL);
  EXPECT_EQ(k.index(), 0x12345678U);
  EXPECT_EQ(k.generation(), 0x9ABCDEF1U);
}

TEST(key, plausible_means_odd_generation) {
  EXPECT_TRUE(key::make(0, 1).plausible());
  EXPECT_TRUE(key::make(0xFFFFFFFFU, 0xFFFFFFFFU).plausible());
  EXPECT_TRUE(key::make(7, 3).plausible());
  EXPECT_FALSE(key::make(7, 2).plausible());
  EXPECT_FALSE(key::make(7, 0).plausible());
  EXPECT_FALSE(key::make(0xFFFFFFFFU, 0xFFFFFFFEU).plausible());
  // Truthiness is "not key 0", which is weaker than plausible.
  EXPECT_TRUE(static_cast<bool>(key::make(7, 0)));
  for (std::uint32_t g = 0; g < 1000; ++g) {
    ASSERT_EQ(key::make(g * 7919U, g).plausible(), g % 2 == 1) << g;
  }
}

TEST(key, ordering_follows_raw) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    // Mix in close pairs so equal halves are common.
    const std::uint64_t a = rng();
    const std::uint64_t b = (i % 3 == 0) ? a : (i % 3 == 1) ? (a ^ (rng() & 0xFF)) : rng();
    const key ka = key::from_raw(a);
    const key kb = key::from_raw(b);
    ASSERT_EQ(ka == kb, a == b);
    ASSERT_EQ(ka != kb, a != b);
    ASSERT_EQ(ka < kb, a < b);
    ASSERT_EQ(ka <= kb, a <= b);
    ASSERT_EQ(ka > kb, a > b);
    ASSERT_EQ(ka >= kb, a >= b);
    ASSERT_EQ(ka <=> kb, a <=> b);
  }
  // Documented consequence of the layout: generation is the major part of the order.
  EXPECT_LT(key::make(0xFFFFFFFFU, 1), key::make(0, 3));
  EXPECT_LT(key::make(1, 3), key::make(2, 3));
  EXPECT_LT(key{}, key::make(0, 1));

  std::vector<key> v{key::make(3, 1), key::make(1, 3), key{}, key::make(2, 1), key::make(1, 1)};
  std::sort(v.begin(), v.end());
  const std::vector<key> want{key{}, key::make(1, 1), key::make(2, 1), key::make(3, 1),
                              key::make(1, 3)};
  EXPECT_EQ(v, want);
  const std::set<key> s(v.begin(), v.end());
  EXPECT_EQ(s.size(), 5U);
}

TEST(key, hash_works_in_unordered_set) {
  static_assert(std::is_nothrow_invocable_v<std::hash<key>, key>);
  std::unordered_set<key> set;
  // Dense keys as a slab hands them out: low indices, few generations.
  for (std::uint32_t g = 1; g <= 5; g += 2) {
    for (std::uint32_t i = 0; i < 20000; ++i)
      EXPECT_TRUE(set.insert(key::make(i, g)).second);
  }
  EXPECT_EQ(set.size(), 60000U);
  EXPECT_FALSE(set.insert(key::make(123, 3)).second);
  for (std::uint32_t i = 0; i < 20000; ++i) {
    ASSERT_EQ(set.count(key::make(i, 1)), 1U);
    ASSERT_EQ(set.count(key::make(i, 2)), 0U);
    ASSERT_EQ(set.count(key::make(i + 20000, 1)), 0U);
  }
  EXPECT_EQ(set.erase(key::make(5, 5)), 1U);
  EXPECT_EQ(set.count(key::make(5, 5)), 0U);
  EXPECT_EQ(set.size(), 59999U);
}

TEST(key, hash_is_consistent_and_spreads_dense_keys) {
  const std::hash<key> h;
  EXPECT_EQ(h(key::make(9, 1)), h(key::from_raw(key::make(9, 1).raw())));
  // Keys differing only in index or only in generation hash apart, and dense keys
  // reach every one of 1024 buckets through the low bits.
  std::unordered_set<std::size_t> seen;
  std::set<std::size_t> low_bits;
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const std::size_t v = h(key::make(i, 1));
    EXPECT_TRUE(seen.insert(v).second) << "collision at index " << i;
    low_bits.insert(v & 1023U);
  }
  EXPECT_EQ(low_bits.size(), 1024U);
  for (std::uint32_t g = 1; g < 4096; g += 2) {
    EXPECT_TRUE(seen.insert(h(key::make(0, g))).second || g == 1) << "generation " << g;
  }
}

TEST(error, carries_code_and_message) {
  const slab::error e(slab::errc::exhausted, "pool full");
  EXPECT_EQ(e.code(), slab::errc::exhausted);
  EXPECT_STREQ(e.what(), "pool full");
  const std::exception& base = e;
  EXPECT_STREQ(base.what(), "pool full");
  try {
    throw slab::error(slab::errc::no_daemon, "no daemon at /run/shmd.sock");
  } catch (const std::exception& ex) {
    const auto* se = dynamic_cast<const slab::error*>(&ex);
    ASSERT_NE(se, nullptr);
    EXPECT_EQ(se->code(), slab::errc::no_daemon);
  }
}

TEST(error, every_code_has_a_distinct_name) {
  std::set<std::string> names;
  const auto first = static_cast<int>(slab::errc::exhausted);
  const auto last = static_cast<int>(slab::errc::system);
  for (int c = first; c <= last; ++c) {
    const std::string n(slab::to_string(static_cast<slab::errc>(c)));
    EXPECT_NE(n, "unknown") << c;
    EXPECT_FALSE(n.empty()) << c;
    EXPECT_TRUE(names.insert(n).second) << n;
  }
  EXPECT_EQ(slab::to_string(slab::errc::exhausted), "exhausted");
  EXPECT_EQ(slab::to_string(slab::errc::out_of_memory), "out_of_memory");
  EXPECT_EQ(slab::to_string(static_cast<slab::errc>(0)), "unknown");
  EXPECT_EQ(slab::to_string(static_cast<slab::errc>(200)), "unknown");
}

} // namespace
