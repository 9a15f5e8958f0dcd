// The shared algorithms (cache, depot, audit) over a local region, in one process.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <unordered_set>
#include <vector>

#include <slab/core/audit.hpp>
#include <slab/core/cache.hpp>
#include <slab/core/local_region.hpp>

namespace {

using slab::key;
using slab::core::audit;
using slab::core::cache;
using slab::core::local_region;
using slab::core::magazine_slots;

void expect_clean(local_region& r) {
  const auto rep = audit(r);
  for (const auto& p : rep.problems)
    ADD_FAILURE() << p;
  EXPECT_EQ(rep.live + rep.free_depot + rep.free_cached, rep.used);
}

TEST(cache, allocates_every_ready_slot_once_then_reports_exhaustion) {
  local_region r(4096, 4);
  r.grow(1024);
  cache<local_region> c(r, r.attach());
  ASSERT_TRUE(c.ready());
  std::unordered_set<std::uint32_t> seen;
  for (int i = 0; i < 1024; ++i) {
    const key k = c.alloc();
    ASSERT_TRUE(k.plausible()) << "alloc " << i;
    EXPECT_TRUE(seen.insert(k.index()).second) << "slot handed out twice: " << k.index();
  }
  EXPECT_EQ(c.alloc(), key{}) << "no slot past the ready tiers";
  r.grow(2048);
  EXPECT_TRUE(c.alloc().plausible()) << "growth makes slots available again";
  const auto rep = audit(r);
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.live, 1025U);
}

TEST(cache, a_carved_magazine_hands_out_its_range_once_walking_the_header_lines_in_turn) {
  local_region r(4096, 4);
  r.grow(1024);
  cache<local_region> c(r, r.attach());
  ASSERT_TRUE(c.ready());
  constexpr std::uint32_t per_line = 64 / sizeof(slab::core::shared_header);
  std::vector<std::uint32_t> got;
  for (std::uint32_t i = 0; i < magazine_slots; ++i)
    got.push_back(c.alloc().index());
  // Consecutive allocs never share a header line: another process reading or freeing
  // the previous slot does not take the next one's line away.
  for (std::size_t i = 1; i < got.size(); ++i)
    EXPECT_NE(got[i] / per_line, got[i - 1] / per_line) << "allocs " << i - 1 << " and " << i;
  // ... and together they are exactly the carved range.
  std::sort(got.begin(), got.end());
  for (std::uint32_t i = 0; i < magazine_slots; ++i)
    EXPECT_EQ(got[i], got[0] + i);
  EXPECT_EQ(got[0] % magazine_slots, 0U);
}

TEST(cache, free_refuses_stale_double_and_hostile_keys) {
  local_region r(1024, 2);
  r.grow(1024);
  cache<local_region> c(r, r.attach());
  const key k = c.alloc();
  EXPECT_TRUE(c.free(k));
  EXPECT_FALSE(c.free(k)) << "double free";
  const key k2 = c.alloc();
  EXPECT_EQ(k2.index(), k.index()) << "LIFO: the slot just freed comes back first";
  EXPECT_NE(k2, k);
  EXPECT_FALSE(c.free(k)) << "stale key of a reused slot";
  EXPECT_FALSE(c.free(key{}));
  EXPECT_FALSE(c.free(key::make(5000, 1))) << "index past the region";
  EXPECT_FALSE(c.free(key::make(k2.index(), k2.generation() + 1))) << "even generation";
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const key h = key::from_raw(rng());
    if (h == k2) continue;
    EXPECT_FALSE(c.free(h));
  }
  EXPECT_TRUE(c.free(k2));
  expect_clean(r);
}

TEST(cache, churn_through_the_depot_keeps_every_slot_accounted_for) {
  local_region r(1 << 16, 4);
  r.grow(1 << 16);
  cache<local_region> a(r, r.attach());
  cache<local_region> b(r, r.attach());
  std::mt19937 rng(42);
  std::vector<key> live;
  // Waves of mostly allocs, then mostly frees, from both contexts at random: 55 allocs
  // in 100 over a pair of waves. A wave is long enough (16 K operations: each context
  // frees some 3 K more than it allocates in a wave of frees, and allocates more yet in
  // one of allocs) for a context's cache to fill both its magazines and push full ones
  // to the depot, then to run dry and pop them back, whatever K is.
  constexpr int wave = 16 * static_cast<int>(magazine_slots);
  for (int round = 0; round < 200000; ++round) {
    const unsigned allocs_in_100 = round / wave % 2 == 0 ? 80 : 30;
    if (live.empty() || (rng() % 100 < allocs_in_100 && live.size() < 60000)) {
      const key k = (rng() & 1 ? a : b).alloc();
      ASSERT_TRUE(k.plausible());
      live.push_back(k);
    } else {
      const std::size_t i = rng() % live.size();
      ASSERT_TRUE((rng() & 1 ? a : b).free(live[i])) << "cross-context free";
      live[i] = live.back();
      live.pop_back();
    }
  }
  expect_clean(r);
  const auto rep = audit(r);
  EXPECT_EQ(rep.live, live.size());
  EXPECT_GT(a.record().counters.depot_gets.load() + b.record().counters.depot_gets.load(), 0U);
  EXPECT_GT(a.record().counters.depot_puts.load() + b.record().counters.depot_puts.load(), 0U);
}

} // namespace

// The debug layer (core/check.hpp): a context's own state broken by its caller stops the
// process with the invariant named, in builds with SLAB_CHECKS; release builds compile
// the checks out, so there is nothing to observe there.
TEST(cache_checks, a_claim_the_context_does_not_hold_stops_a_checked_build) {
  if (!slab::core::check::enabled) GTEST_SKIP() << "SLAB_CHECKS is off in this build";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  local_region r(1024, 2);
  r.grow(1024);
  cache<local_region> c(r, r.attach());
  std::uint32_t entry = 0;
  const key k = c.claim(entry);
  ASSERT_TRUE(k.plausible());
  EXPECT_DEATH(c.commit_claim(entry, key::make(k.index(), k.generation() + 2)),
               "slab invariant broken: commit of a claim this context does not hold");
  c.commit_claim(entry, k); // the right key still goes through
  EXPECT_NE(r.header(k.index()).gen(), 0U);
}

TEST(cache_checks, a_step_begun_while_another_is_recorded_stops_a_checked_build) {
  if (!slab::core::check::enabled) GTEST_SKIP() << "SLAB_CHECKS is off in this build";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  local_region r(1024, 2);
  r.grow(1024);
  const std::uint32_t ctx = r.attach();
  cache<local_region> c(r, ctx);
  const key k = c.alloc();
  // What a second thread inside the same context would leave: a step under way.
  r.context(ctx).intent.op.store(static_cast<std::uint32_t>(slab::core::intent_op::carve));
  EXPECT_DEATH((void)c.free(k), "slab invariant broken: a shared step begins while another is "
                                "under way");
  EXPECT_DEATH((void)c.alloc(), "slab invariant broken: a shared step begins");
  r.context(ctx).intent.op.store(0);
  EXPECT_TRUE(c.free(k));
}
