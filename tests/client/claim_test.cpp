// Two-phase allocation across processes: pool<T>::claim reserves a slot that no key
// reaches until write() constructs the value; a guard dropped unwritten gives the slot
// back, and so does shmd when the claiming process is killed -9 with claims pending.
#include <gtest/gtest.h>

#include <csignal>

#include <slab/client.hpp>

#include <slabtest/checks.hpp>

namespace {

using slab::key;
using slabtest::child;
using slabtest::daemon;
using slabtest::daemon_cfg;
using slabtest::pool_view;
using slabtest::shared_array;

struct order {
  std::uint64_t id;
  std::uint64_t self; ///< its own key, known before it was written
};

struct outcome {
  std::atomic<std::uint64_t> written{0};
  std::atomic<std::uint64_t> pending[slab::core::claim_slots]{};
  std::atomic<std::uint32_t> checks{0};
};

TEST(pool_claim, dropped_and_dead_claims_come_back_written_ones_stay) {
  daemon_cfg cfg;
  cfg.pools[0].slot_size = sizeof(order);
  daemon d(cfg);
  shared_array<outcome> out(1);
  child c = child::spawn([&] {
    slab::client cl = slab::client::connect(d.socket_path());
    slab::pool<order> p = cl.open<order>("test");
    auto g = p.claim();
    const key announced = g.key();
    CHILD_CHECK(announced && p.get(announced) == nullptr); // nothing there until written
    const key k = g.write(order{7, announced.raw()});
    CHILD_CHECK(k == announced && p.get(k) != nullptr && p.get(k)->self == k.raw());
    CHILD_CHECK(!g.pending());
    key dropped;
    {
      auto h = p.claim();
      dropped = h.key();
    } // dropped unwritten: back to the cache, its key never valid
    CHILD_CHECK(p.get(dropped) == nullptr && !p.erase(dropped));
    out[0].written.store(k.raw());
    // Four pending claims (the most a context may have), then a fifth is refused.
    std::vector<slab::claim_guard<order, slab::pool<order>>> held;
    for (std::uint32_t i = 0; i < slab::core::claim_slots; ++i) {
      held.push_back(p.claim());
      out[0].pending[i].store(held.back().key().raw());
    }
    try {
      (void)p.claim();
      CHILD_CHECK(false && "a fifth pending claim was accepted");
    } catch (const slab::error& e) {
      CHILD_CHECK(e.code() == slab::errc::exhausted);
    }
    out[0].checks.store(1);
    ::raise(SIGKILL); // with four claims pending
    return 0;
  });
  ASSERT_EQ(c.wait().signal(), SIGKILL);
  ASSERT_EQ(out[0].checks.load(), 1U) << "the child's checks did not all pass";
  ASSERT_TRUE(d.wait_for_log("4 claimed slot(s) given back")) << d.stderr_text();
  const slab::core::audit_report rep = slabtest::audit_after_storm(d);
  EXPECT_EQ(rep.live, 1U) << pool_view::describe(rep);
  EXPECT_EQ(rep.claimed, 0U);
  pool_view v(d.socket_path(), "test");
  ASSERT_TRUE(v.map_all());
  const key w = key::from_raw(out[0].written.load());
  EXPECT_EQ(v.map().header(w.index()).gen(), slabtest::slot_generation(v.map(), w));
  EXPECT_EQ(static_cast<const order*>(v.map().payload(w.index()))->self, w.raw());
  for (const auto& p : out[0].pending) {
    const key k = key::from_raw(p.load());
    EXPECT_FALSE(slab::core::gen_live(v.map().header(k.index()).gen()));
    EXPECT_NE(v.map().header(k.index()).gen(), slabtest::slot_generation(v.map(), k))
        << "a dead claim's key is void";
  }
}

} // namespace
