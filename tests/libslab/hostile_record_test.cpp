// A context that scribbles over its own record before it dies (a buggy or hostile
// client, a torn write): reclaim must report the record, quarantine it, hand out
// nothing that another context or the depot holds, and give back what the context
// really held. The pool stays consistent: the audit finds every slot live or free
// exactly once, and a neighbour that keeps allocating never gets a slot twice.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <slab/core/audit.hpp>
#include <slab/core/cache.hpp>
#include <slab/core/local_region.hpp>
#include <slab/core/reclaim.hpp>

namespace {

using slab::key;
using slab::core::cache;
using slab::core::context_record;
using slab::core::context_state;
using slab::core::local_region;

constexpr int K = static_cast<int>(slab::core::magazine_slots); // slots per magazine

struct scene {
  local_region r{8192, 4, 64};
  std::uint32_t daemon_id, neighbour_id, victim_id;
  cache<local_region> daemon;
  cache<local_region> neighbour;
  std::vector<key> neighbour_live, victim_live;

  // The victim's allocs by default: the neighbour's full magazine from the depot, then
  // three carves, 8 slots left; its frees (every other key) push a full magazine and
  // leave it one full and one partial.
  explicit scene(int victim_allocs = 4 * K - 8, bool free_half = true)
      : daemon_id((r.grow(4096), r.attach())), neighbour_id(r.attach()), victim_id(r.attach()),
        daemon(r, daemon_id), neighbour(r, neighbour_id) {
    for (int i = 0; i < 3 * K + 4; ++i) // four carves, K - 4 slots left
      neighbour_live.push_back(neighbour.alloc());
    for (int i = 0; i < K + 8; ++i) // some back to the depot through a full magazine
      EXPECT_TRUE(neighbour.free(neighbour_live[static_cast<std::size_t>(i)]));
    neighbour_live.erase(neighbour_live.begin(), neighbour_live.begin() + K + 8);
    cache<local_region> victim(r, victim_id);
    std::vector<key> keys;
    for (int i = 0; i < victim_allocs; ++i)
      keys.push_back(victim.alloc());
    for (std::size_t i = 0; i < keys.size(); ++i) { // every other one freed: partial magazines
      if (free_half && i % 2 == 0) {
        EXPECT_TRUE(victim.free(keys[i]));
      } else {
        victim_live.push_back(keys[i]);
      }
    }
  }
  context_record& victim_record() { return r.context(victim_id); }
};

// Runs reclaim on the scribbled record, then checks the pool and lets the neighbour
// drain it: every slot it is handed must be one nobody holds live.
void reclaim_and_check(scene& s, const std::string& what, bool expect_corrupt = true) {
  SCOPED_TRACE(what);
  const auto rep = slab::core::reclaim(s.r, s.victim_id, s.daemon);
  if (expect_corrupt) {
    EXPECT_TRUE(rep.corrupt) << "a scribbled record is reported";
    EXPECT_FALSE(rep.problems.empty());
    EXPECT_EQ(s.victim_record().state.load(),
              static_cast<std::uint32_t>(context_state::quarantined));
  }
  const auto a = slab::core::audit(s.r);
  for (const auto& p : a.problems)
    ADD_FAILURE() << p;
  EXPECT_EQ(a.live, s.neighbour_live.size() + s.victim_live.size()) << "live values stay live";
  // Drain the pool from the neighbour: no slot twice, none that is live.
  std::set<std::uint32_t> held;
  for (const key k : s.neighbour_live)
    held.insert(k.index());
  for (const key k : s.victim_live)
    held.insert(k.index());
  for (std::size_t n = 0;; ++n) {
    ASSERT_LE(n, 4096U) << "more slots than the pool has: the depot is corrupt";
    const key k = s.neighbour.alloc();
    if (!k.plausible()) break;
    ASSERT_TRUE(held.insert(k.index()).second) << "slot " << k.index() << " handed out twice";
  }
  // Nothing lost: what the neighbour could not get sits in the reclaimer's cache (the
  // slots of partial magazines it adopted one by one).
  const context_record& d = s.r.context(s.daemon_id);
  std::size_t in_reclaimer = 0;
  for (const std::uint32_t m : {d.mag[0].load(), d.mag[1].load()})
    in_reclaimer += s.r.mag(m).count.load();
  EXPECT_EQ(held.size() + in_reclaimer, 4096U) << "every slot of the pool is accounted for";
  const auto after = slab::core::audit(s.r);
  for (const auto& p : after.problems)
    ADD_FAILURE() << "after the drain: " << p;
}

TEST(hostile_record, zeroed) {
  scene s;
  std::memset(static_cast<void*>(&s.victim_record()), 0, sizeof(context_record));
  reclaim_and_check(s, "zeroed");
}

TEST(hostile_record, all_ones) {
  scene s;
  std::memset(static_cast<void*>(&s.victim_record()), 0xFF, sizeof(context_record));
  reclaim_and_check(s, "0xFF");
}

TEST(hostile_record, random_bytes) {
  for (unsigned seed = 1; seed <= 50; ++seed) {
    scene s;
    std::mt19937 rng(seed);
    auto* bytes = reinterpret_cast<unsigned char*>(&s.victim_record());
    for (std::size_t i = 0; i < sizeof(context_record); ++i)
      bytes[i] = static_cast<unsigned char>(rng());
    reclaim_and_check(s, "random seed " + std::to_string(seed));
  }
}

// Plausible values, not garbage: ids of magazines that exist but belong to others.
TEST(hostile_record, names_another_contexts_magazines) {
  scene s;
  context_record& v = s.victim_record();
  const context_record& n = s.r.context(s.neighbour_id);
  v.mag[0].store(n.mag[0].load());
  v.mag[1].store(n.mag[1].load());
  v.spare.store(slab::core::no_magazine);
  reclaim_and_check(s, "neighbour's magazines");
}

TEST(hostile_record, names_the_depots_magazines) {
  scene s;
  context_record& v = s.victim_record();
  v.mag[0].store(s.r.state().cell(slab::core::cell_id::full).peek().value);
  v.mag[1].store(s.r.state().cell(slab::core::cell_id::empty).peek().value);
  v.spare.store(s.r.context(s.daemon_id).mag[0].load());
  reclaim_and_check(s, "depot heads and the reclaimer's own magazine");
}

TEST(hostile_record, forged_steps) {
  using slab::core::intent_op;
  const std::vector<std::function<void(scene&)>> forgeries = {
      // an adopt out of the neighbour's magazine
      [](scene& s) {
        context_record& v = s.victim_record();
        const std::uint32_t nm = s.r.context(s.neighbour_id).mag[0].load();
        v.intent.arg.store(s.r.mag(nm).slots[0].load());
        v.intent.seq.store(nm);
        v.intent.op.store(static_cast<std::uint32_t>(intent_op::adopt));
      },
      // a won pop of the neighbour's magazine
      [](scene& s) {
        context_record& v = s.victim_record();
        v.spare.store(slab::core::no_magazine);
        v.intent.arg.store(s.r.context(s.neighbour_id).mag[1].load());
        v.intent.seq.store(0);
        v.won[static_cast<std::uint32_t>(slab::core::cell_id::full)].store(1);
        v.intent.op.store(static_cast<std::uint32_t>(intent_op::pop_full));
      },
      // active out of range
      [](scene& s) { s.victim_record().active.store(7); },
  };
  int i = 0;
  for (const auto& forge : forgeries) {
    scene s;
    forge(s);
    reclaim_and_check(s, "forgery " + std::to_string(i++));
  }
}

// A won carve of slots that are in use (the neighbour's): refused, nothing refilled.
TEST(hostile_record, forged_carve) {
  scene s(2 * K, false); // the victim allocated two magazines' worth: both empty
  context_record& v = s.victim_record();
  ASSERT_EQ(s.r.mag(v.mag[v.active.load() & 1U].load()).count.load(), 0U);
  using slab::core::intent_op;
  v.intent.arg.store(0); // slots 0..K-1: the neighbour's, live or in its cache
  v.intent.seq.store(0);
  v.won[static_cast<std::uint32_t>(slab::core::cell_id::fresh)].store(1);
  v.intent.op.store(static_cast<std::uint32_t>(intent_op::carve));
  reclaim_and_check(s, "forged carve");
}

// A won pop of the magazine at the top of the FULL stack (it sits in the depot, so no
// pop of the victim's took it): refused, the stack stays acyclic.
TEST(hostile_record, forged_pop_of_a_depot_magazine) {
  using slab::core::intent_op;
  scene s;
  const std::uint32_t head = s.r.state().cell(slab::core::cell_id::full).peek().value;
  ASSERT_NE(head, slab::core::no_magazine) << "the neighbour filled a magazine into FULL";
  context_record& v = s.victim_record();
  v.spare.store(slab::core::no_magazine);
  v.intent.arg.store(head);
  v.intent.seq.store(0);
  v.won[static_cast<std::uint32_t>(slab::core::cell_id::full)].store(1);
  v.intent.op.store(static_cast<std::uint32_t>(intent_op::pop_full));
  reclaim_and_check(s, "forged pop of the FULL head");
}

// A won carve over the range of a slot another context holds claimed (its header names
// that context): refused, as the range's headers are not all untouched.
TEST(hostile_record, forged_carve_over_a_claimed_range) {
  using slab::core::intent_op;
  scene s(2 * K, false); // the victim's magazines are empty
  std::uint32_t entry = 0;
  const key claimed = s.neighbour.claim(entry);
  ASSERT_TRUE(claimed.plausible());
  context_record& v = s.victim_record();
  v.intent.arg.store(claimed.index() / slab::core::magazine_slots * slab::core::magazine_slots);
  v.intent.seq.store(0);
  v.won[static_cast<std::uint32_t>(slab::core::cell_id::fresh)].store(1);
  v.intent.op.store(static_cast<std::uint32_t>(intent_op::carve));
  const auto rep = slab::core::reclaim(s.r, s.victim_id, s.daemon);
  EXPECT_TRUE(rep.corrupt);
  const auto a = slab::core::audit(s.r);
  for (const auto& p : a.problems)
    ADD_FAILURE() << p;
  EXPECT_EQ(a.claimed, 1U);
}

// A record that is fine is not reported: the check must not cry wolf.
TEST(hostile_record, an_intact_record_is_not_reported) {
  scene s;
  const auto rep = slab::core::reclaim(s.r, s.victim_id, s.daemon);
  EXPECT_FALSE(rep.corrupt);
  EXPECT_TRUE(rep.problems.empty());
  EXPECT_EQ(s.victim_record().state.load(), static_cast<std::uint32_t>(context_state::free));
  const auto a = slab::core::audit(s.r);
  for (const auto& p : a.problems)
    ADD_FAILURE() << p;
}

} // namespace
