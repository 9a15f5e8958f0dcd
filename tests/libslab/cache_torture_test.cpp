// Deterministic kill points: a context "dies" (throws out of the shared step, never to
// be used again) at the n-th passage through a named point of alloc, free, the depot
// exchanges and the fresh-space carve, while other contexts keep running; reclaim then
// runs and the audit must find every slot live or free exactly once, and every live
// value intact. Built with SLAB_FAULT_INJECTION.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <slab/core/audit.hpp>
#include <slab/core/cache.hpp>
#include <slab/core/local_region.hpp>
#include <slab/core/reclaim.hpp>

static_assert(slab::core::fault::enabled, "build this test with SLAB_FAULT_INJECTION");

namespace {

using slab::key;
using slab::core::cache;
using slab::core::context_record;
using slab::core::local_region;
using slab::core::magazine_slots;

struct death {};

thread_local std::string kill_at;
thread_local int kill_after = 0;
thread_local std::set<std::string>* points_seen = nullptr;

void hook(const char* point) {
  if (points_seen != nullptr) points_seen->insert(point);
  if (kill_at == point && --kill_after == 0) throw death{};
}

std::uint64_t checksum(key k) { return k.raw() * 0x9E3779B97F4A7C15ULL; }

struct world {
  local_region r{4096, 4, 64};
  std::map<std::uint64_t, std::uint64_t> live; // raw key -> expected payload
  world() { r.grow(1024); }
  std::uint64_t& payload(key k) { return *static_cast<std::uint64_t*>(r.payload(k.index())); }
  void note_alloc(key k) {
    payload(k) = checksum(k);
    live[k.raw()] = checksum(k);
  }
  /// Listed values still live under their key and holding their checksum.
  std::uint64_t intact() {
    std::uint64_t n = 0;
    for (const auto& [raw, sum] : live) {
      const key k = key::from_raw(raw);
      if (r.header(k.index()).gen() == k.generation() && payload(k) == sum) ++n;
    }
    return n;
  }
};

// Drives a context through a mix that passes every kill point: fills past one magazine
// into the depot, frees it all back, and grows once (carve at the new tier). 15 K
// operations, 60 allocs in 100: some 3 K slots held at the end, more than the cache's
// two magazines hold, so that freeing them pushes full ones.
void workload(world& w, cache<local_region>& c, std::mt19937& rng, std::vector<key>& held) {
  for (std::uint32_t i = 0; i < 15 * magazine_slots; ++i) {
    const bool alloc = held.empty() || rng() % 100 < 60;
    if (alloc) {
      const key k = c.alloc();
      if (!k.plausible()) continue;
      held.push_back(k);
      w.note_alloc(k);
    } else {
      const std::size_t j = rng() % held.size();
      const key k = held[j];
      ASSERT_TRUE(c.free(k));
      w.live.erase(k.raw());
      held[j] = held.back();
      held.pop_back();
    }
  }
  while (!held.empty()) {
    ASSERT_TRUE(c.free(held.back()));
    w.live.erase(held.back().raw());
    held.pop_back();
  }
}

bool reclaimer_only(const std::string& point) {
  return point.rfind("adopt.", 0) == 0 || point.rfind("give.", 0) == 0 ||
         point.rfind("reclaim.", 0) == 0;
}

// Two-phase allocations: claims written (committed, listed live) or abandoned, up to
// claim_slots pending at a time, some written values freed again.
void claim_workload(world& w, cache<local_region>& c, std::mt19937& rng, std::vector<key>& held) {
  struct pending {
    key k;
    std::uint32_t entry;
  };
  std::vector<pending> claims;
  for (int i = 0; i < 200; ++i) {
    const auto dice = rng() % 100;
    if (dice < 40 && claims.size() < slab::core::claim_slots) {
      std::uint32_t entry = 0;
      const key k = c.claim(entry);
      if (k.plausible()) claims.push_back({k, entry});
    } else if (dice < 80 && !claims.empty()) {
      const pending p = claims.back();
      claims.pop_back();
      if (rng() % 2 == 0) {
        w.payload(p.k) = checksum(p.k); // "write"
        c.commit_claim(p.entry, p.k);
        w.live[p.k.raw()] = checksum(p.k);
        held.push_back(p.k);
      } else {
        c.abandon_claim(p.entry, p.k);
      }
    } else if (!held.empty()) {
      const key k = held.back();
      held.pop_back();
      ASSERT_TRUE(c.free(k));
      w.live.erase(k.raw());
    }
  }
  for (const pending& p : claims)
    c.abandon_claim(p.entry, p.k);
}

std::set<std::string> all_points() {
  world w;
  std::set<std::string> seen;
  kill_at.clear(); // collect only: no death
  points_seen = &seen;
  slab::core::fault::hook = hook;
  {
    cache<local_region> c(w.r, w.r.attach());
    std::mt19937 rng(1);
    std::vector<key> held;
    workload(w, c, rng, held);
    claim_workload(w, c, rng, held);
    // a partial reclaim passes the reclaimer's own points
    cache<local_region> victim(w.r, w.r.attach());
    std::vector<key> vk;
    for (int i = 0; i < 40; ++i)
      vk.push_back(victim.alloc());
    for (int i = 0; i < 20; ++i)
      EXPECT_TRUE(victim.free(vk[static_cast<std::size_t>(i)]));
    std::uint32_t entry = 0;
    EXPECT_TRUE(victim.claim(entry)) << "a claim left pending for reclaim to free";
    const auto rep = slab::core::reclaim(w.r, victim.id(), c);
    EXPECT_GT(rep.slots_adopted, 0U) << "the victim held a partial magazine";
    EXPECT_EQ(rep.claims_released, 1U);
  }
  points_seen = nullptr;
  slab::core::fault::hook = nullptr;
  return seen;
}

TEST(cache_torture, every_kill_point_is_reached) {
  const auto points = all_points();
  for (const char* p :
       {"alloc.publish",    "alloc.count",      "free.cas",       "free.store",   "free.count",
        "free.clear",       "pop.cas",          "pop.record",     "pop.stamped",  "pop.recorded",
        "push.cas",         "push.done",        "exchange.spare", "carve.cas",    "carve.fill",
        "carve.count",      "adopt.count",      "adopt.source",   "give.stamped", "give.clear",
        "reclaim.resolved", "reclaim.validated"}) {
    EXPECT_TRUE(points.count(p)) << "kill point never reached: " << p;
  }
}

// For every kill point and the first passages through it: kill a context there, with a
// neighbour context holding live slots, reclaim, audit, check payloads.
TEST(cache_torture, a_context_killed_at_any_point_loses_nothing) {
  const auto points = all_points();
  int kills = 0;
  for (const std::string& point : points) {
    if (reclaimer_only(point)) continue;
    for (int nth = 1; nth <= 40; ++nth) {
      world w;
      cache<local_region> daemon(w.r, w.r.attach());
      cache<local_region> neighbour(w.r, w.r.attach());
      for (int i = 0; i < 50; ++i)
        w.note_alloc(neighbour.alloc());
      const std::uint32_t victim_id = w.r.attach();
      bool died = false;
      {
        std::optional<cache<local_region>> victim;
        victim.emplace(w.r, victim_id);
        std::mt19937 rng(static_cast<unsigned>(nth));
        std::vector<key> held;
        kill_at = point;
        kill_after = nth;
        slab::core::fault::hook = hook;
        try {
          workload(w, *victim, rng, held);
          w.r.grow(2048);
          workload(w, *victim, rng, held);
        } catch (const death&) {
          died = true;
        }
        slab::core::fault::hook = nullptr;
        // What the victim held live stays live: its keys went to the program.
      }
      if (!died) break; // fewer than nth passages: next point
      ++kills;
      const auto rep = slab::core::reclaim(w.r, victim_id, daemon);
      for (const auto& p : rep.problems)
        ADD_FAILURE() << point << "#" << nth << ": " << p;
      EXPECT_FALSE(rep.corrupt) << point << "#" << nth << ": a death is not corruption";
      const auto a = slab::core::audit(w.r);
      for (const auto& p : a.problems)
        ADD_FAILURE() << point << "#" << nth << ": " << p;
      const std::uint64_t intact = w.intact();
      // A free interrupted after its CAS leaves the key dead though the program still
      // lists it (the free is completed); one interrupted before it leaves it live (the
      // free is rolled back). Either way at most that one listed key may have gone.
      EXPECT_GE(intact + 1, w.live.size()) << point << "#" << nth;
      EXPECT_EQ(a.live, intact) << point << "#" << nth << ": " << rep.resolved;
    }
  }
  EXPECT_GT(kills, 200) << "the torture must kill many times";
  std::printf("kills: %d\n", kills);
}

// The reclaimer itself dies (shmd killed -9 mid-reclaim) at every point of its own and
// the first passages through each, while reclaiming a victim that held full, partial and
// empty magazines and died mid-free. A new reclaimer then does what a restarted shmd
// does: reclaims the old reclaimer's record, then the victim's (still marked dead).
TEST(cache_torture, a_reclaimer_killed_at_any_point_loses_nothing) {
  const auto points = all_points();
  const auto k = static_cast<int>(magazine_slots); // the counts below are 150, 75, 100 at K = 32
  int kills = 0;
  for (const std::string& point : points) {
    for (int nth = 1; nth <= 40; ++nth) {
      world w;
      w.r.grow(std::max<std::uint32_t>(1024, 8 * magazine_slots));
      const std::uint32_t old_daemon = w.r.attach();
      std::optional<cache<local_region>> reclaimer;
      reclaimer.emplace(w.r, old_daemon);
      cache<local_region> neighbour(w.r, w.r.attach());
      for (int i = 0; i < 50; ++i)
        w.note_alloc(neighbour.alloc());
      const std::uint32_t victim_id = w.r.attach();
      {
        cache<local_region> victim(w.r, victim_id);
        std::vector<key> held;
        for (int i = 0; i < 5 * k - 10; ++i) { // past the loaded magazine, into the depot
          held.push_back(victim.alloc());
          w.note_alloc(held.back());
        }
        for (int i = 0; i < 2 * k + 11; ++i) { // frees fill one magazine and part of another
          ASSERT_TRUE(victim.free(held[static_cast<std::size_t>(i)]));
          w.live.erase(held[static_cast<std::size_t>(i)].raw());
        }
        std::uint32_t entry = 0; // a claim it never writes: reclaim gives it back
        ASSERT_TRUE(victim.claim(entry));
        // ... and dies in a free, after its header CAS: a step for reclaim to finish.
        kill_at = "free.store";
        kill_after = 1;
        slab::core::fault::hook = hook;
        const auto dying = static_cast<std::size_t>(3 * k + 4);
        EXPECT_THROW(victim.free(held[dying]), death);
        w.live.erase(held[dying].raw());
      }
      bool died = false;
      kill_at = point;
      kill_after = nth;
      try {
        (void)slab::core::reclaim(w.r, victim_id, *reclaimer);
      } catch (const death&) {
        died = true;
      }
      slab::core::fault::hook = nullptr;
      reclaimer.reset();
      if (!died) break; // fewer than nth passages: next point
      ++kills;
      cache<local_region> fresh(w.r, w.r.attach());
      for (std::uint32_t dead : {old_daemon, victim_id}) {
        const auto rep = slab::core::reclaim(w.r, dead, fresh);
        EXPECT_FALSE(rep.corrupt) << point << "#" << nth << ": context " << dead << ": "
                                  << (rep.problems.empty() ? "" : rep.problems.front());
      }
      const auto a = slab::core::audit(w.r);
      for (const auto& p : a.problems)
        ADD_FAILURE() << point << "#" << nth << ": " << p;
      const std::uint64_t intact = w.intact();
      EXPECT_EQ(intact, w.live.size()) << point << "#" << nth;
      EXPECT_EQ(a.live, intact) << point << "#" << nth;
      EXPECT_EQ(a.claimed, 0U) << point << "#" << nth;
    }
  }
  EXPECT_GT(kills, 40) << "the reclaimer must die at many points";
  std::printf("reclaimer kills: %d\n", kills);
}

// A context killed at any point of claim, write or abandon: reclaim frees every slot it
// claimed and did not write, and keeps every written one.
TEST(cache_torture, a_claiming_context_killed_at_any_point_loses_nothing) {
  const auto points = all_points();
  int kills = 0;
  for (const std::string& point : points) {
    if (reclaimer_only(point)) continue;
    for (int nth = 1; nth <= 30; ++nth) {
      world w;
      cache<local_region> daemon(w.r, w.r.attach());
      const std::uint32_t victim_id = w.r.attach();
      bool died = false;
      {
        cache<local_region> victim(w.r, victim_id);
        std::mt19937 rng(static_cast<unsigned>(nth) * 7U);
        std::vector<key> held;
        kill_at = point;
        kill_after = nth;
        slab::core::fault::hook = hook;
        try {
          claim_workload(w, victim, rng, held);
          claim_workload(w, victim, rng, held);
        } catch (const death&) {
          died = true;
        }
        slab::core::fault::hook = nullptr;
      }
      if (!died) break;
      ++kills;
      const auto rep = slab::core::reclaim(w.r, victim_id, daemon);
      EXPECT_FALSE(rep.corrupt) << point << "#" << nth;
      const auto a = slab::core::audit(w.r);
      for (const auto& p : a.problems)
        ADD_FAILURE() << point << "#" << nth << ": " << p;
      const std::uint64_t intact = w.intact();
      // Every live slot is a written value the program lists (but for a free cut short:
      // completed by reclaim, the listed key died), or the one value written whose
      // write() never returned (killed at claim.committed: written is live). No claimed,
      // unwritten slot stays live or claimed.
      EXPECT_GE(intact + 1, w.live.size()) << point << "#" << nth;
      const std::uint64_t unlisted = point == "claim.committed" ? 1 : 0;
      EXPECT_EQ(a.live, intact + unlisted) << point << "#" << nth << ": " << rep.resolved;
      EXPECT_EQ(a.claimed, 0U) << point << "#" << nth;
    }
  }
  EXPECT_GT(kills, 100);
  std::printf("claiming context kills: %d\n", kills);
}

// Two contexts die in one exchange of the same magazine: B right after the push that
// put it in the FULL stack (its stamp not cleared yet), C right after popping it (not
// stamped yet). Reclaimed in either order, neither is corrupt and nothing is lost.
TEST(cache_torture, a_pusher_and_a_popper_of_one_magazine_both_killed) {
  for (const bool popper_first : {true, false}) {
    SCOPED_TRACE(popper_first ? "popper reclaimed first" : "pusher reclaimed first");
    world w;
    cache<local_region> daemon(w.r, w.r.attach());
    const std::uint32_t b_id = w.r.attach(), c_id = w.r.attach();
    std::optional<cache<local_region>> b, c;
    b.emplace(w.r, b_id);
    c.emplace(w.r, c_id);
    std::vector<key> ks;
    for (std::uint32_t i = 0; i < 3 * magazine_slots; ++i) // its frees fill both, then push
      ks.push_back(b->alloc());
    slab::core::fault::hook = hook;
    kill_at = "push.done";
    kill_after = 1;
    bool died = false;
    std::uint64_t freed = 0;
    try {
      for (const key k : ks) {
        ASSERT_TRUE(b->free(k));
        ++freed;
      }
    } catch (const death&) {
      died = true; // in the free that made room: before its header CAS, so not freed
    }
    ASSERT_TRUE(died) << "B never pushed a full magazine";
    kill_at = "pop.record";
    kill_after = 1;
    died = false;
    try {
      (void)c->alloc(); // C's cache is empty: it pops B's magazine from FULL
    } catch (const death&) {
      died = true;
    }
    slab::core::fault::hook = nullptr;
    ASSERT_TRUE(died) << "C never popped";
    b.reset();
    c.reset();
    for (const std::uint32_t dead :
         popper_first ? std::vector{c_id, b_id} : std::vector{b_id, c_id}) {
      const auto rep = slab::core::reclaim(w.r, dead, daemon);
      EXPECT_FALSE(rep.corrupt) << "context " << dead << ": "
                                << (rep.problems.empty() ? "" : rep.problems.front());
    }
    const auto a = slab::core::audit(w.r);
    for (const auto& p : a.problems)
      ADD_FAILURE() << p;
    EXPECT_EQ(a.live, ks.size() - freed);
  }
}

// A claim cut short between its header store and its count store (the slot still in
// the loaded magazine), then the record scribbled: `active` flipped (a valid value, so
// the wrong magazine looks loaded), or its fields lost (so rescue finds the magazines).
// The slot must come back once, not from both the magazine and the claim entry.
TEST(cache_torture, a_half_done_claim_in_a_scribbled_record_comes_back_once) {
  for (const bool lose_fields : {false, true}) {
    SCOPED_TRACE(lose_fields ? "fields lost" : "active flipped");
    world w;
    cache<local_region> daemon(w.r, w.r.attach());
    const std::uint32_t v_id = w.r.attach();
    {
      cache<local_region> v(w.r, v_id);
      for (std::uint32_t i = 0; i < magazine_slots + 8; ++i) // both magazines carved
        (void)v.alloc();
      slab::core::fault::hook = hook;
      kill_at = "alloc.count";
      kill_after = 1;
      std::uint32_t entry = 0;
      EXPECT_THROW((void)v.claim(entry), death);
      slab::core::fault::hook = nullptr;
    }
    context_record& rec = w.r.context(v_id);
    if (lose_fields) {
      rec.mag[0].store(slab::core::no_magazine);
      rec.mag[1].store(slab::core::no_magazine);
      rec.active.store(7);
    } else {
      rec.active.store(rec.active.load() ^ 1U);
    }
    (void)slab::core::reclaim(w.r, v_id, daemon);
    const auto a = slab::core::audit(w.r);
    for (const auto& p : a.problems)
      ADD_FAILURE() << p;
    EXPECT_EQ(a.claimed, 0U);
    EXPECT_EQ(a.live, magazine_slots + 8);
  }
}

// A carve that records its intent, loses its CAS to another context that takes the last
// fresh slots, and so gives up, leaves nothing recorded: the record says "none" between
// two operations (so that a later step written without clearing first never lands
// beside a stale op), and the context's next operations work (a checked build would stop
// on a stale intent).
thread_local cache<local_region>* thief = nullptr;
thread_local int stolen = 0;

void steal_the_fresh_slots(const char* point) {
  if (thief == nullptr || std::strcmp(point, "carve.cas") != 0) return;
  cache<local_region>* t = std::exchange(thief, nullptr); // its own carves pass here too
  while (t->alloc() != key{})
    ++stolen;
}

TEST(cache_torture, a_carve_that_loses_the_last_fresh_slots_leaves_no_step_recorded) {
  local_region r(4096, 4);
  r.grow(1024);
  cache<local_region> a(r, r.attach());
  cache<local_region> b(r, r.attach());
  ASSERT_TRUE(a.ready() && b.ready());
  thief = &b;
  stolen = 0;
  slab::core::fault::hook = steal_the_fresh_slots;
  const key k = a.alloc(); // refill: no full magazine, so a carve, which b beats
  slab::core::fault::hook = nullptr;
  EXPECT_EQ(thief, nullptr) << "the carve was never reached";
  EXPECT_EQ(stolen, 1024);
  EXPECT_EQ(k, key{}) << "every fresh slot went to the other context";
  const auto op = static_cast<slab::core::intent_op>(r.context(a.id()).intent.op.load());
  EXPECT_EQ(op, slab::core::intent_op::none) << "a step given up is still recorded";
  // The context goes on: after growth it carves again.
  r.grow(2048);
  const key again = a.alloc();
  EXPECT_TRUE(again.plausible());
  EXPECT_TRUE(a.free(again));
  const auto rep = slab::core::audit(r);
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.live, 1024U);
}

} // namespace
