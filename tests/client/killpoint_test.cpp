// Deterministic kill points in real processes: a client process, built with the
// fault-injection client library (slab_client_fi, SLAB_FAULT_INJECTION), SIGKILLs itself
// at the n-th passage through a named point of alloc, free, the depot exchanges and the
// fresh-space carve (slab/core/cache.hpp), while it churns through two contexts of one
// pool. shmd sees the process die and reclaims both contexts; then the audit must find
// every slot live or free exactly once and every magazine in one place, every key the
// client had in hand must still be live with its payload intact, and nothing else may
// be live but the one slot whose allocation the kill interrupted. A fresh client then
// erases every key the dead one left, and the pool is empty again.
//
// The in-process version, with contexts that throw out of a step, is
// tests/libslab/cache_torture_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <slab/client.hpp>
#include <slab/core/fault.hpp>

#include <slabtest/checks.hpp>

static_assert(slab::core::fault::enabled,
              "link slab_client_fi, which builds everything with SLAB_FAULT_INJECTION");

namespace {

using namespace std::chrono_literals;
using slab::key;
using slabtest::child;
using slabtest::daemon;
using slabtest::pool_view;
using slabtest::shared_array;

/// Every point a client passes (the reclaimer's own, adopt.*, give.* and reclaim.*, run in shmd).
const char* const client_points[] = {"alloc.publish",  "alloc.count",  "free.cas",   "free.store",
                                     "free.count",     "free.clear",   "pop.cas",    "pop.record",
                                     "pop.stamped",    "pop.recorded", "push.cas",   "push.done",
                                     "exchange.spare", "carve.cas",    "carve.fill", "carve.count"};
constexpr std::size_t point_count = std::size(client_points);

/// The passages killed at, for every point (fewer when the workload passes it less often):
/// the first few, then spread over the whole workload (the depot and carve points are
/// passed some 70 times, the 70th in the tier shmd added; alloc and free some 3700).
constexpr int passages[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 70, 144, 377, 987, 2584};

/// The value each slot holds: a serial and its checksum.
struct item {
  std::uint64_t serial = 0;
  std::uint64_t sum = 0;
  std::uint64_t pad[2]{};
};

std::uint64_t checksum_of(std::uint64_t serial) {
  return (serial ^ 0x5bd1e9955bd1e995ULL) * 0x9E3779B97F4A7C15ULL + 1;
}

/// What the victim shares with the test: the keys it holds live (recorded right after
/// emplace returns, removed right after erase returns), the one it is erasing, and how
/// often it passed each point.
constexpr std::size_t max_held = 4096;
struct victim_state {
  std::atomic<std::uint64_t> erasing{0};
  std::atomic<std::uint64_t> key[max_held];
  std::atomic<std::uint64_t> serial[max_held];
  std::atomic<std::uint64_t> passed[point_count];
  std::atomic<std::uint32_t> finished{0};
};

// The victim's hook (its only thread): counts passages, dies at the chosen one.
victim_state* hook_state = nullptr;
std::size_t kill_at = point_count; // point_count: never
int kill_after = 0;

void hook(const char* point) {
  for (std::size_t i = 0; i < point_count; ++i) {
    if (std::strcmp(point, client_points[i]) != 0) continue;
    hook_state->passed[i].fetch_add(1);
    if (i == kill_at && --kill_after == 0) std::raise(SIGKILL);
    return;
  }
}

/// The keys the victim holds, mirrored in victim_state.
class holdings {
public:
  explicit holdings(victim_state& st) : st_(st) {
    for (std::size_t i = max_held; i-- > 0;)
      free_.push_back(i);
  }

  void emplace(slab::pool<item>& p) {
    CHILD_CHECK(!free_.empty());
    const std::uint64_t serial = ++serial_;
    const key k = p.emplace(item{serial, checksum_of(serial), {}});
    const std::size_t pos = free_.back();
    free_.pop_back();
    st_.serial[pos].store(serial);
    st_.key[pos].store(k.raw());
    held_.push_back({k, pos});
  }

  void erase(slab::pool<item>& p, std::size_t j) {
    const entry e = held_[j];
    st_.erasing.store(e.k.raw());
    CHILD_CHECK_MSG(p.erase(e.k), "erase of held key " << std::hex << e.k.raw());
    st_.key[e.pos].store(0);
    st_.erasing.store(0);
    free_.push_back(e.pos);
    held_[j] = held_.back();
    held_.pop_back();
  }

  [[nodiscard]] std::size_t size() const noexcept { return held_.size(); }

private:
  struct entry {
    key k;
    std::size_t pos;
  };
  victim_state& st_;
  std::vector<std::size_t> free_;
  std::vector<entry> held_;
  std::uint64_t serial_ = 0;
};

// The victim: two contexts of the pool; allocations past one magazine (fresh space
// carved), frees in the allocating context and in the other one (magazines exchanged
// with the depot), a climb past the growth threshold (the daemon adds a tier), random
// churn, everything freed. The hook is installed before the pools are opened: their
// first magazines come from the depot too.
int victim(const std::string& socket, victim_state& st, std::size_t point, int nth) {
  slab::client c = slab::client::connect(socket);
  hook_state = &st;
  kill_at = point;
  kill_after = nth;
  slab::core::fault::hook = hook;
  slab::pool<item> p1 = c.open<item>("test");
  slab::pool<item> p2 = c.open<item>("test");
  slab::pool<item>* pools[2] = {&p1, &p2};
  holdings h(st);
  std::mt19937 rng(12345);

  for (int i = 0; i < 100; ++i) // three magazines carved and then some
    h.emplace(p1);
  for (int i = 0; i < 40; ++i) // back into p1's cache
    h.erase(p1, rng() % h.size());
  while (h.size() > 0) // cross-context: p2's cache overflows into the depot
    h.erase(p2, rng() % h.size());
  for (int i = 0; i < 2300; ++i) // full magazines from the depot, then past tier 0
    h.emplace(*pools[(i / 50) % 2]);
  for (int i = 0; i < 3000; ++i) {
    slab::pool<item>& p = *pools[rng() % 2];
    if (h.size() == 0 || (rng() % 100 < 45 && h.size() < max_held - 1)) {
      h.emplace(p);
    } else {
      h.erase(p, rng() % h.size());
    }
  }
  for (std::size_t i = 0; h.size() > 0; ++i)
    h.erase(*pools[i % 2], h.size() - 1);

  slab::core::fault::hook = nullptr;
  st.finished.store(1);
  return 0;
}

slabtest::daemon_cfg small_pool() {
  slabtest::daemon_cfg cfg;
  cfg.pools[0].capacity = 2048;
  cfg.pools[0].max_capacity = 1U << 16;
  cfg.pools[0].contexts = 16;
  return cfg;
}

/// A live key as the pool says: its generation is odd and the key's.
bool live_in(pool_view& v, key k) {
  return v.map().has_slot(k.index()) &&
         v.map().header(k.index()).gen(std::memory_order_acquire) ==
             slabtest::slot_generation(v.map(), k) &&
         slab::core::gen_live(k.generation());
}

const item& item_in(pool_view& v, key k) {
  return *static_cast<const item*>(v.map().payload(k.index()));
}

struct tally {
  int kills = 0;
  int unreached = 0;    ///< combinations whose passage the workload never reached
  int extra_live = 0;   ///< kills after which one slot was live that no key names
  int erasing_gone = 0; ///< kills inside an erase after its CAS (the key went)
};

// One kill: point `point`, passage `nth`. False when the victim finished without
// reaching it.
bool kill_once(std::size_t point, int nth, tally& t) {
  const std::string where = std::string(client_points[point]) + "#" + std::to_string(nth);
  daemon d(small_pool());
  shared_array<victim_state> st(1);
  child v = child::spawn([&] { return victim(d.socket_path(), *st, point, nth); });
  const pid_t pid = v.pid();
  const slabtest::exit_status es = v.wait(20s);
  if (es.ok() && st->finished.load() == 1) return false;
  EXPECT_EQ(es.signal(), SIGKILL) << where << ": " << es.describe();
  if (es.signal() != SIGKILL) return true;
  ++t.kills;
  EXPECT_TRUE(d.wait_for_log("of pid " + std::to_string(pid) + ":"))
      << where << ": no reclaim of pid " << pid << " in\n"
      << d.stderr_text();

  // The pool is consistent, every context reclaimed, every idle record empty.
  const slab::core::audit_report r = slabtest::audit_after_storm(d);
  EXPECT_TRUE(r.ok()) << where;
  EXPECT_FALSE(slabtest::contains(d.stderr_text(), "warning: pool"))
      << where << ": reclaim reported problems\n"
      << d.stderr_text();

  // Every key the victim held is live and intact; the one it was erasing may have gone
  // (killed after the free's CAS, which reclaim completes) or stayed (killed before).
  const std::uint64_t erasing = st->erasing.load();
  std::uint64_t recorded = 0, intact = 0;
  bool erasing_live = false;
  {
    pool_view view(d.socket_path(), "test"); // closed before the next child forks
    view.map_all();
    for (std::size_t i = 0; i < max_held; ++i) {
      const std::uint64_t raw = st->key[i].load();
      if (raw == 0) continue;
      ++recorded;
      const key k = key::from_raw(raw);
      const bool live = live_in(view, k);
      if (raw == erasing) {
        erasing_live = live;
        if (!live) continue;
      }
      EXPECT_TRUE(live) << where << ": held key " << std::hex << raw << " lost";
      if (!live) continue;
      const item& it = item_in(view, k);
      EXPECT_TRUE(it.serial == st->serial[i].load() && it.sum == checksum_of(it.serial))
          << where << ": held key " << std::hex << raw << " corrupt";
      ++intact;
    }
  }
  if (erasing != 0) {
    // Killed in the free's own steps after its CAS, the erase is completed by reclaim;
    // anywhere before (free.cas, or making room in the cache) it is rolled back.
    const std::string p = client_points[point];
    const bool after_cas = p == "free.store" || p == "free.count" || p == "free.clear";
    EXPECT_EQ(erasing_live, !after_cas) << where << ": the key being erased";
    if (!erasing_live) ++t.erasing_gone;
  }
  EXPECT_GE(r.live, intact) << where << "\n" << pool_view::describe(r);
  EXPECT_LE(r.live, intact + 1) << where << ": recorded " << recorded << ", intact " << intact
                                << "\n"
                                << pool_view::describe(r);
  if (r.live == intact + 1) ++t.extra_live;

  // A fresh client reads and erases every key the victim left; the pool is then empty
  // but for the one slot no key names.
  const std::uint64_t extra = r.live - intact;
  const slabtest::exit_status cleaner = slabtest::run_in_child([&] {
    slab::client c = slab::client::connect(d.socket_path());
    slab::pool<item> p = c.open<item>("test");
    for (std::size_t i = 0; i < max_held; ++i) {
      const std::uint64_t raw = st->key[i].load();
      if (raw == 0) continue;
      const key k = key::from_raw(raw);
      const item* it = p.get(k);
      if (it == nullptr && raw == erasing) continue;
      CHILD_CHECK_MSG(it != nullptr, "held key " << std::hex << raw << " not live");
      CHILD_CHECK(it->serial == st->serial[i].load() && it->sum == checksum_of(it->serial));
      CHILD_CHECK(p.erase(k));
    }
    return 0;
  });
  EXPECT_TRUE(cleaner.ok()) << where << ": " << cleaner.describe();
  const slab::core::audit_report after = slabtest::audit_after_storm(d);
  EXPECT_EQ(after.live, extra) << where << "\n" << pool_view::describe(after);
  return true;
}

TEST(client_killpoint, every_point_is_passed_by_the_workload) {
  daemon d(small_pool());
  shared_array<victim_state> st(1);
  const slabtest::exit_status es =
      slabtest::run_in_child([&] { return victim(d.socket_path(), *st, point_count, 0); });
  ASSERT_TRUE(es.ok()) << es.describe();
  for (std::size_t i = 0; i < point_count; ++i) {
    EXPECT_GT(st->passed[i].load(), 0U) << "never passed: " << client_points[i];
    std::printf("%-15s passed %llu times\n", client_points[i],
                static_cast<unsigned long long>(st->passed[i].load()));
  }
  EXPECT_TRUE(slabtest::contains(d.stderr_text(), "tier 1 ready")) << "the pool never grew\n"
                                                                   << d.stderr_text();
  const slab::core::audit_report r = slabtest::audit_after_storm(d);
  EXPECT_EQ(r.live, 0U) << pool_view::describe(r);
}

// For every point and several passages through it: a victim process killed there, shmd's
// reclaim, the audit, the victim's keys checked and erased by a fresh client.
TEST(client_killpoint, a_client_killed_at_any_point_loses_nothing) {
  tally t;
  std::map<std::string, int> kills;
  for (std::size_t point = 0; point < point_count; ++point) {
    for (const int nth : passages) {
      if (!kill_once(point, nth, t)) {
        ++t.unreached;
        break; // fewer passages than nth: next point
      }
      ++kills[client_points[point]];
      if (::testing::Test::HasFailure()) break;
    }
    EXPECT_GT(kills[client_points[point]], 0) << "never killed at " << client_points[point];
    if (::testing::Test::HasFailure()) break;
  }
  for (const auto& [p, n] : kills)
    std::printf("%-15s %d kills\n", p.c_str(), n);
  std::printf("kills: %d; one unnamed live slot after %d; an erase completed by reclaim %d\n",
              t.kills, t.extra_live, t.erasing_gone);
  EXPECT_GE(t.kills, 90) << "the torture must kill many times";
}

} // namespace
