// client_options::map_ahead: a client maps each tier shmd adds as soon as it is offered,
// from its own background thread, so that no allocation maps memory on its time. Off,
// a tier is mapped by the first operation that reaches it.
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include <slab/client.hpp>

#include <slabtest/checks.hpp>

namespace {

using namespace std::chrono_literals;
using slabtest::child;
using slabtest::daemon;
using slabtest::daemon_cfg;
using slabtest::shared_array;

struct watch {
  std::atomic<std::uint64_t> mapped_before{0};
  std::atomic<std::uint64_t> mapped_after{0};
  std::atomic<std::uint32_t> attached{0};
  std::atomic<std::uint32_t> grown{0};
};

// Attaches, then does nothing but watch how much of the pool this process has mapped,
// until the test says the pool has grown (and a little after).
int watcher(const std::string& socket, bool map_ahead, watch& w) {
  slab::client_options opt;
  opt.map_ahead = map_ahead;
  slab::client c = slab::client::connect(socket, opt);
  auto p = c.open_raw("test", 64, 8);
  w.mapped_before.store(p->map().mapped_slots());
  w.attached.store(1);
  const bool grown = slabtest::eventually([&] { return w.grown.load() != 0; }, 20s);
  CHILD_CHECK(grown);
  const std::uint64_t ready = p->map().state().ready_slots.load();
  // With map_ahead, the mapping follows within a few intervals; without, never.
  (void)slabtest::eventually([&] { return p->map().mapped_slots() >= ready; },
                             map_ahead ? 5s : 300ms);
  w.mapped_after.store(p->map().mapped_slots());
  return 0;
}

TEST(map_ahead, a_client_maps_new_tiers_without_touching_them) {
  daemon_cfg cfg;
  cfg.pools[0].slot_size = 64;
  cfg.pools[0].capacity = 4096;
  cfg.pools[0].max_capacity = 1 << 16;
  daemon d(cfg);
  shared_array<watch> w(2);
  child ahead = child::spawn([&] { return watcher(d.socket_path(), true, w[0]); });
  child lazy = child::spawn([&] { return watcher(d.socket_path(), false, w[1]); });
  ASSERT_TRUE(
      slabtest::eventually([&] { return w[0].attached.load() && w[1].attached.load(); }, 10s));
  // Another process fills the pool past grow_at: shmd adds a tier.
  child filler = child::spawn([&] {
    slab::client c = slab::client::connect(d.socket_path());
    auto p = c.open_raw("test", 64, 8);
    for (int i = 0; i < 4000; ++i)
      (void)p->alloc();
    const bool grew =
        slabtest::eventually([&] { return p->map().state().ready_slots.load() > 4096; }, 10s);
    CHILD_CHECK(grew);
    return 0;
  });
  ASSERT_TRUE(filler.wait().ok());
  w[0].grown.store(1);
  w[1].grown.store(1);
  ASSERT_TRUE(ahead.wait().ok());
  ASSERT_TRUE(lazy.wait().ok());
  EXPECT_EQ(w[0].mapped_before.load(), 4096U);
  EXPECT_GT(w[0].mapped_after.load(), 4096U) << "map_ahead mapped the new tier by itself";
  EXPECT_EQ(w[1].mapped_after.load(), 4096U) << "without map_ahead, nothing mapped it";
}

// The mapper thread may be halfway through asking shmd for a tier when the process drops
// its last pool and client: the client then goes down cleanly, whichever thread lets go
// of the session last. Here shmd is stopped, so that the mapper's request waits out its
// timeout behind the pool's close and outlives every other reference.
TEST(map_ahead, a_client_dropped_while_its_mapper_asks_for_a_tier_goes_down_cleanly) {
  daemon_cfg cfg;
  daemon d(cfg);
  shared_array<std::atomic<int>> step(1);
  child c = child::spawn([&] {
    slab::client_options opt;
    opt.map_ahead_interval = 200ms;
    opt.request_timeout = 1s;
    auto cl = std::make_unique<slab::client>(slab::client::connect(d.socket_path(), opt));
    auto p = cl->open_raw("test", 64, 8);
    step->store(1);
    CHILD_CHECK(slabtest::eventually([&] { return step->load() == 2; }, 10s)); // shmd stopped
    // Offer one slot more than is mapped: the mapper's next look asks shmd for the tier.
    p->map().state().ready_slots.fetch_add(1);
    p.reset(); // the close waits for shmd until its timeout; the mapper wakes meanwhile
    cl.reset();
    // The process lives on past the mapper's request, which now times out and lets go.
    std::this_thread::sleep_for(1500ms);
    return 0;
  });
  ASSERT_TRUE(slabtest::eventually([&] { return step->load() == 1; }, 10s));
  d.signal(SIGSTOP);
  step->store(2);
  const slabtest::exit_status st = c.wait(20s);
  d.signal(SIGCONT);
  EXPECT_TRUE(st.ok()) << st.describe();
}

} // namespace
