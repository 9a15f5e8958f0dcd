// Tier math (slab/core/tier.hpp): every tier boundary for every base, the whole 32-bit
// index range, against a reference model that builds the tiers by summing their sizes
// (no shifts, no bit_width), so a slip in the closed forms cannot hide behind itself.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include <slab/core/tier.hpp>

namespace {

using slab::core::max_slots;
using slab::core::max_tiers;
using slab::core::tier_geometry;
using slab::core::tier_pos;

constexpr std::uint64_t last_index = 0xFFFFFFFFULL;

// The reference: tier 0 holds 2^b slots, tier t >= 1 holds twice what tier t-1 holds
// once t >= 2 and as much as tier 0 for t == 1; tiers follow each other.
struct ref_tiers {
  std::vector<std::uint64_t> begin, size;

  explicit ref_tiers(unsigned b) {
    std::uint64_t base = 1;
    for (unsigned i = 0; i < b; ++i)
      base *= 2;
    std::uint64_t at = 0;
    std::uint64_t sz = base;
    for (unsigned t = 0; at <= last_index; ++t) {
      begin.push_back(at);
      size.push_back(sz);
      at += sz;
      if (t >= 1) sz *= 2;
    }
  }
  [[nodiscard]] tier_pos locate(std::uint64_t index) const {
    for (std::size_t t = 0; t < begin.size(); ++t) {
      if (index < begin[t] + size[t])
        return {static_cast<unsigned>(t), static_cast<std::uint32_t>(index - begin[t])};
    }
    ADD_FAILURE() << "index " << index << " beyond the reference tiers";
    return {};
  }
};

TEST(tier, reference_model_is_sane) {
  // Guard the guard: the model itself must be what the design says.
  const ref_tiers r(4);
  ASSERT_GE(r.begin.size(), 4U);
  EXPECT_EQ(r.begin[0], 0U);
  EXPECT_EQ(r.size[0], 16U);
  EXPECT_EQ(r.begin[1], 16U);
  EXPECT_EQ(r.size[1], 16U);
  EXPECT_EQ(r.begin[2], 32U);
  EXPECT_EQ(r.size[2], 32U);
  EXPECT_EQ(r.begin[3], 64U);
  EXPECT_EQ(r.size[3], 64U);
  EXPECT_EQ(r.begin.size(), 29U); // 2^32 slots with B = 16: 33 - 4 tiers
}

TEST(tier, every_boundary_of_every_base) {
  for (unsigned b = 0; b <= 31; ++b) {
    SCOPED_TRACE(testing::Message() << "base_log2 " << b);
    const tier_geometry g(b);
    const ref_tiers r(b);
    ASSERT_EQ(g.base_log2(), b);
    ASSERT_EQ(g.base(), r.size[0]);
    // 2^32 indices need 33 - b tiers, and never more than max_tiers.
    ASSERT_EQ(r.begin.size(), 33U - b);
    ASSERT_LE(r.begin.size(), max_tiers);

    for (unsigned t = 0; t < r.begin.size(); ++t) {
      SCOPED_TRACE(testing::Message() << "tier " << t);
      const std::uint64_t first = r.begin[t];
      const std::uint64_t last = first + r.size[t] - 1;
      ASSERT_EQ(g.tier_begin(t), first);
      ASSERT_EQ(g.tier_size(t), r.size[t]);
      ASSERT_EQ(g.capacity_through(t), first + r.size[t]);
      ASSERT_LE(last, last_index) << "tiers end exactly at 2^32";

      if (t > 0) {
        const auto before = static_cast<std::uint32_t>(first - 1);
        ASSERT_EQ(g.tier_of(before), t - 1);
        ASSERT_EQ(g.locate(before),
                  (tier_pos{t - 1, static_cast<std::uint32_t>(r.size[t - 1] - 1)}));
      }
      const auto f = static_cast<std::uint32_t>(first);
      ASSERT_EQ(g.tier_of(f), t);
      ASSERT_EQ(g.locate(f), (tier_pos{t, 0}));
      const auto l = static_cast<std::uint32_t>(last);
      ASSERT_EQ(g.tier_of(l), t);
      ASSERT_EQ(g.locate(l), (tier_pos{t, static_cast<std::uint32_t>(r.size[t] - 1)}));
      // One past the end of the tier is the next tier's first index.
      if (last < last_index) {
        ASSERT_EQ(g.locate(l + 1U), (tier_pos{t + 1, 0}));
      }
    }
    // The very last index lives at the end of the last tier.
    const auto top = static_cast<unsigned>(r.begin.size() - 1);
    EXPECT_EQ(g.locate(0xFFFFFFFFU),
              (tier_pos{top, static_cast<std::uint32_t>(last_index - r.begin[top])}));
    EXPECT_EQ(g.locate(0U), (tier_pos{0, 0}));
    EXPECT_EQ(g.capacity_through(top), last_index + 1);
    EXPECT_EQ(g.max_tier_count(), top + 1);
    EXPECT_EQ(g.max_tier_count(), 33U - b);
    EXPECT_LE(g.max_tier_count(), max_tiers);
  }
}

TEST(tier, tiers_for_and_capacity_through_agree) {
  for (unsigned b = 0; b <= 31; ++b) {
    SCOPED_TRACE(testing::Message() << "base_log2 " << b);
    const tier_geometry g(b);
    EXPECT_EQ(g.tiers_for(0), 0U);
    EXPECT_EQ(g.tiers_for(1), 1U);
    EXPECT_EQ(g.tiers_for(g.base()), 1U);
    EXPECT_EQ(g.tiers_for(g.base() + 1), 2U);
    EXPECT_EQ(g.tiers_for(max_slots), g.max_tier_count());
    EXPECT_EQ(g.tiers_for(max_slots + 1), g.max_tier_count()); // 2^32 slots: same tiers

    std::uint64_t sum = 0;
    for (unsigned t = 0; t < g.max_tier_count(); ++t) {
      SCOPED_TRACE(testing::Message() << "tier " << t);
      sum += g.tier_size(t);
      // capacity_through is the running sum of the tier sizes, and the next begin.
      ASSERT_EQ(g.capacity_through(t), sum);
      ASSERT_EQ(g.tier_begin(t + 1), sum);
      // The fewest tiers that hold n slots: exactly t + 1 at the capacity, one more
      // just past it, and t + 1 from one past the previous capacity.
      ASSERT_EQ(g.tiers_for(sum), t + 1);
      if (sum < max_slots) {
        ASSERT_EQ(g.tiers_for(sum + 1), t + 2);
      }
      ASSERT_EQ(g.tiers_for(g.tier_begin(t) + 1), t + 1);
      // n slots use indices 0..n-1: the last one's tier decides.
      ASSERT_EQ(g.tiers_for(sum), g.tier_of(static_cast<std::uint32_t>(sum - 1)) + 1);
    }
    EXPECT_EQ(sum, last_index + 1);
  }
}

TEST(tier, locate_round_trips_on_a_random_sample) {
  std::mt19937_64 rng(0x5eed'7a3bULL);
  std::uniform_int_distribution<std::uint32_t> any_index;
  constexpr int samples = 1 << 21;
  int failures = 0;
  for (int i = 0; i < samples && failures < 10; ++i) {
    const auto b = static_cast<unsigned>(i & 31);
    const tier_geometry g(b);
    // Half uniform over 2^32, half biased towards small indices (where tiers are dense).
    std::uint32_t index = any_index(rng);
    if ((i & 32) != 0) index >>= (index & 31U);
    const tier_pos p = g.locate(index);
    const bool ok = p.tier == g.tier_of(index) && p.tier < g.max_tier_count() &&
                    p.offset < g.tier_size(p.tier) && g.tier_begin(p.tier) + p.offset == index &&
                    g.tiers_for(std::uint64_t{index} + 1) == p.tier + 1;
    if (!ok) {
      ++failures;
      ADD_FAILURE() << "b=" << b << " index=" << index << " -> tier " << p.tier << " offset "
                    << p.offset;
    }
  }
  EXPECT_EQ(failures, 0);

  // And against the reference walk, for fewer (it is slow) but still many indices.
  for (unsigned b = 0; b <= 31; ++b) {
    const ref_tiers r(b);
    const tier_geometry g(b);
    for (int i = 0; i < 4096; ++i) {
      const std::uint32_t index = any_index(rng) >> (i & 31);
      ASSERT_EQ(g.locate(index), r.locate(index)) << "b=" << b << " index=" << index;
    }
  }
}

TEST(tier, for_base_rounds_up_to_a_power_of_two) {
  EXPECT_EQ(tier_geometry::for_base(0).base(), 1U);
  EXPECT_EQ(tier_geometry::for_base(1).base(), 1U);
  EXPECT_EQ(tier_geometry::for_base(2).base(), 2U);
  EXPECT_EQ(tier_geometry::for_base(3).base(), 4U);
  // Exhaustive for small counts: the smallest power of two that is >= n.
  for (std::uint64_t n = 1; n <= 70000; ++n) {
    const std::uint64_t got = tier_geometry::for_base(n).base();
    ASSERT_GE(got, n) << n;
    ASSERT_LT(got / 2, n) << n;
    ASSERT_EQ(got & (got - 1), 0U) << n;
  }
  // Around every power of two up to the cap of 2^31.
  for (unsigned k = 1; k <= 31; ++k) {
    const std::uint64_t p = std::uint64_t{1} << k;
    if (k >= 2) {
      EXPECT_EQ(tier_geometry::for_base(p - 1).base_log2(), k) << k; // p/2 < p-1 <= p
    }
    EXPECT_EQ(tier_geometry::for_base(p).base_log2(), k) << k;
    if (k < 31) {
      EXPECT_EQ(tier_geometry::for_base(p + 1).base_log2(), k + 1) << k;
    }
  }
  // Past 2^31 the base is capped (2^32 indices would need no second tier otherwise).
  EXPECT_EQ(tier_geometry::for_base((std::uint64_t{1} << 31) + 1).base_log2(), 31U);
  EXPECT_EQ(tier_geometry::for_base(max_slots).base_log2(), 31U);
  EXPECT_EQ(tier_geometry::for_base(~std::uint64_t{0}).base_log2(), 31U);
}

TEST(tier, for_base_honours_min_base) {
  EXPECT_EQ(tier_geometry::for_base(0, 16).base(), 16U);
  EXPECT_EQ(tier_geometry::for_base(3, 64).base(), 64U);
  EXPECT_EQ(tier_geometry::for_base(64, 64).base(), 64U);
  EXPECT_EQ(tier_geometry::for_base(65, 64).base(), 128U);
  EXPECT_EQ(tier_geometry::for_base(1000, 16).base(), 1024U);
  EXPECT_EQ(tier_geometry::for_base(1, std::uint64_t{1} << 40).base_log2(), 31U);
  // "No minimum" spelled 0 still yields a usable geometry.
  EXPECT_EQ(tier_geometry::for_base(0, 0).base(), 1U);
  EXPECT_EQ(tier_geometry::for_base(5, 0).base(), 8U);
}

// The header's own checks, evaluated at compile time here too.
static_assert(tier_geometry(0).locate(0) == tier_pos{0, 0});
static_assert(tier_geometry(0).locate(1) == tier_pos{1, 0});
static_assert(tier_geometry(0).locate(2) == tier_pos{2, 0});
static_assert(tier_geometry(0).locate(3) == tier_pos{2, 1});
static_assert(tier_geometry(31).locate(0x7FFFFFFFU) == tier_pos{0, 0x7FFFFFFFU});
static_assert(tier_geometry(31).locate(0x80000000U) == tier_pos{1, 0});
static_assert(tier_geometry(31).locate(0xFFFFFFFFU) == tier_pos{1, 0x7FFFFFFFU});
static_assert(tier_geometry(31).max_tier_count() == 2);
static_assert(tier_geometry::for_base(0, 0).base() == 1);

} // namespace
