// Handles over slab::pool<T> and pools in arena mode, with a real shmd and real
// processes: a unique_slot's value is visible to another process until the handle dies;
// shared_slot counts this process's references only, and a value erased by another
// process is never erased twice; an arena pool refuses to be used as a slab (and the
// other way round), and its values, written by one process, read in another without a
// generation check, through growth.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <slab/client.hpp>

#include <slabtest/daemon.hpp>

namespace {

using namespace std::chrono_literals;
using slab::key;
using slabtest::child;
using slabtest::daemon;
using slabtest::daemon_cfg;
using slabtest::pipe_pair;
using slabtest::pool_cfg;

struct order {
  std::uint64_t id;
  std::uint64_t check;
  explicit order(std::uint64_t i) : id(i), check(~i) {}
};

struct may_throw {
  std::uint64_t v;
  may_throw(std::uint64_t x, bool fail) : v(x) {
    if (fail) throw std::runtime_error("constructor failed on demand");
  }
};

template <class P>
concept has_erase = requires(P p, key k) {
  p.erase(k);
};
static_assert(!has_erase<slab::arena_pool<order>>, "an arena pool has no erase");
static_assert(has_erase<slab::pool<order>>);
static_assert(!std::is_copy_constructible_v<slab::pool_unique_slot<order>>);

daemon_cfg two_pools() {
  daemon_cfg cfg;
  pool_cfg arena;
  arena.name = "arena";
  arena.slot_size = 16;
  arena.capacity = 1024;
  arena.max_capacity = 1U << 16;
  arena.mode = "arena";
  cfg.pools.push_back(arena);
  return cfg;
}

// Runs body in a child attached to the daemon's pool `name`; the child's exit code.
template <class F> int in_child(const daemon& d, F body) {
  child c = child::spawn([&] {
    slab::client cl = slab::client::connect(d.socket_path());
    return body(cl);
  });
  const slabtest::exit_status st = c.wait();
  EXPECT_TRUE(st.ok()) << st.describe();
  return st.code();
}

TEST(pool_handles, unique_slot_value_is_seen_elsewhere_until_the_handle_dies) {
  daemon d;
  pipe_pair to_parent, go;
  child owner = child::spawn([&] {
    slab::client cl = slab::client::connect(d.socket_path());
    slab::pool<order> p = cl.open<order>("test");
    key k;
    {
      slab::pool_unique_slot<order> u = p.make_unique(7U);
      CHILD_CHECK(u && u->id == 7 && u.get() == p.get(u.key()));
      k = u.key();
      const std::uint64_t raw = k.raw();
      CHILD_CHECK(slabtest::send_value(to_parent.write_end.get(), raw));
      char c = 0;
      CHILD_CHECK(slabtest::receive_value(go.read_end.get(), c)); // the parent has looked
    }
    CHILD_CHECK(p.get(k) == nullptr);
    // release: the value stays, by key.
    slab::pool_unique_slot<order> r = p.make_unique(8U);
    const key kept = r.release();
    CHILD_CHECK(!r && p.get(kept) != nullptr && p.get(kept)->id == 8);
    const std::uint64_t raw = kept.raw();
    CHILD_CHECK(slabtest::send_value(to_parent.write_end.get(), raw));
    return 0;
  });
  std::uint64_t raw = 0;
  ASSERT_TRUE(slabtest::receive_value(to_parent.read_end.get(), raw));
  // Seen from a second process while the handle lives.
  EXPECT_EQ(in_child(d,
                     [&](slab::client& cl) {
                       slab::pool<order> p = cl.open<order>("test");
                       const order* o = p.get(key::from_raw(raw));
                       CHILD_CHECK(o != nullptr && o->id == 7 && o->check == ~7ULL);
                       return 0;
                     }),
            0);
  ASSERT_TRUE(slabtest::send_value(go.write_end.get(), 'g'));
  std::uint64_t kept = 0;
  ASSERT_TRUE(slabtest::receive_value(to_parent.read_end.get(), kept));
  const slabtest::exit_status st = owner.wait();
  ASSERT_TRUE(st.ok()) << st.describe();
  // After the owner is gone: the dropped handle's value is gone, the released one lives.
  EXPECT_EQ(in_child(d,
                     [&](slab::client& cl) {
                       slab::pool<order> p = cl.open<order>("test");
                       CHILD_CHECK(p.get(key::from_raw(raw)) == nullptr);
                       CHILD_CHECK(p.get(key::from_raw(kept)) != nullptr);
                       CHILD_CHECK(p.erase(key::from_raw(kept)));
                       return 0;
                     }),
            0);
}

TEST(pool_handles, shared_slot_counts_in_this_process_and_the_last_erases) {
  daemon d;
  EXPECT_EQ(in_child(d,
                     [&](slab::client& cl) {
                       slab::pool<order> p = cl.open<order>("test");
                       slab::pool_shared_slot<order> a = p.make_shared(1U);
                       const key k = a.key();
                       {
                         slab::pool_shared_slot<order> b = a;
                         slab::pool_shared_slot<order> c = b;
                         CHILD_CHECK(a.use_count() == 3 && c->id == 1);
                       }
                       CHILD_CHECK(a.use_count() == 1 && p.get(k) != nullptr);
                       slab::pool_shared_slot<order> moved = std::move(a);
                       CHILD_CHECK(moved.use_count() == 1);
                       moved.reset();
                       CHILD_CHECK(p.get(k) == nullptr);
                       // From a unique_slot.
                       slab::pool_shared_slot<order> s = p.make_unique(2U);
                       CHILD_CHECK(s.use_count() == 1 && s->id == 2);
                       // A throwing constructor leaves nothing taken.
                       slab::pool<may_throw> q = cl.open<may_throw>("test");
                       const std::uint64_t live = q.stats().live;
                       bool threw = false;
                       try {
                         (void)q.make_shared(3U, true);
                       } catch (const std::runtime_error&) {
                         threw = true;
                       }
                       CHILD_CHECK(threw && q.stats().live == live);
                       return 0;
                     }),
            0);
}

TEST(pool_handles, a_value_erased_by_another_process_is_not_erased_again_by_the_handles) {
  daemon d;
  pipe_pair to_parent, go;
  child holder = child::spawn([&] {
    slab::client cl = slab::client::connect(d.socket_path());
    slab::pool<order> p = cl.open<order>("test");
    slab::pool_shared_slot<order> a = p.make_shared(1U);
    slab::pool_shared_slot<order> b = a;
    slab::pool_unique_slot<order> u = p.make_unique(2U);
    const std::uint64_t keys[2] = {a.key().raw(), u.key().raw()};
    CHILD_CHECK(slabtest::send_value(to_parent.write_end.get(), keys));
    char c = 0;
    CHILD_CHECK(slabtest::receive_value(go.read_end.get(), c)); // both erased elsewhere
    CHILD_CHECK(p.get(a.key()) == nullptr && p.get(u.key()) == nullptr);
    // Reuse the slots from this context: the handles' stale keys must not reach them.
    std::vector<key> fresh;
    for (std::uint64_t i = 0; i < 64; ++i)
      fresh.push_back(p.emplace(100 + i));
    a.reset();
    b.reset();
    u.reset();
    for (std::uint64_t i = 0; i < 64; ++i) {
      const order* o = p.get(fresh[i]);
      CHILD_CHECK_MSG(o != nullptr && o->id == 100 + i, "fresh value " << i << " damaged");
      CHILD_CHECK(p.erase(fresh[i]));
    }
    CHILD_CHECK(p.stats().live == 0);
    return 0;
  });
  std::uint64_t keys[2] = {};
  ASSERT_TRUE(slabtest::receive_value(to_parent.read_end.get(), keys));
  EXPECT_EQ(in_child(d,
                     [&](slab::client& cl) {
                       slab::pool<order> p = cl.open<order>("test");
                       CHILD_CHECK(p.erase(key::from_raw(keys[0])));
                       CHILD_CHECK(p.erase(key::from_raw(keys[1])));
                       return 0;
                     }),
            0);
  ASSERT_TRUE(slabtest::send_value(go.write_end.get(), 'g'));
  const slabtest::exit_status st = holder.wait();
  EXPECT_TRUE(st.ok()) << st.describe();
}

TEST(arena_pool, modes_are_refused_across_with_an_error_that_names_the_fix) {
  daemon d(two_pools());
  EXPECT_EQ(in_child(d,
                     [&](slab::client& cl) {
                       try {
                         (void)cl.open<order>("arena");
                         CHILD_CHECK_MSG(false, "opened an arena pool as slab::pool<T>");
                       } catch (const slab::error& e) {
                         CHILD_CHECK(e.code() == slab::errc::not_supported);
                         const std::string m = e.what();
                         CHILD_CHECK_MSG(slabtest::contains(m, "'arena' is an arena") &&
                                             slabtest::contains(m, "open_arena"),
                                         m);
                       }
                       try {
                         (void)cl.open_arena<order>("test");
                         CHILD_CHECK_MSG(false, "opened a slab pool as an arena");
                       } catch (const slab::error& e) {
                         CHILD_CHECK(e.code() == slab::errc::not_supported);
                         CHILD_CHECK_MSG(slabtest::contains(e.what(), "use client::open<T>"),
                                         e.what());
                       }
                       // The refused contexts went back: the pools still open.
                       slab::arena_pool<order> a = cl.open_arena<order>("arena");
                       slab::pool<order> p = cl.open<order>("test");
                       CHILD_CHECK(a.stats().arena && !p.stats().arena);
                       // The untyped view says which mode it is.
                       CHILD_CHECK(cl.open_raw("arena", 8, 8)->arena());
                       return 0;
                     }),
            0);
}

TEST(arena_pool, values_written_in_one_process_read_in_another_through_growth) {
  constexpr std::uint64_t n = 20'000; // tier 0 holds 1024: growth all along
  daemon d(two_pools());
  pipe_pair keys_pipe, done;
  child writer = child::spawn([&] {
    slab::client cl = slab::client::connect(d.socket_path());
    slab::arena_pool<order> a = cl.open_arena<order>("arena");
    std::vector<order*> refs;
    for (std::uint64_t i = 0; i < n; ++i) {
      order* o = nullptr;
      key k;
      if (i % 2 == 0) {
        k = a.emplace(i);
        o = a.get(k);
      } else {
        o = &a.alloc(i);
        k = key::from_raw(0); // alloc gives no key: find it by the index below
      }
      refs.push_back(o);
      if (k) {
        const std::uint64_t raw = k.raw();
        CHILD_CHECK(slabtest::send_value(keys_pipe.write_end.get(), raw));
      }
    }
    for (std::uint64_t i = 0; i < n; ++i) // every reference where it was, through growth
      CHILD_CHECK_MSG(refs[i]->id == i && refs[i]->check == ~i, "reference " << i << " moved");
    const slab::pool_stats s = a.stats();
    CHILD_CHECK_MSG(s.tiers >= 4, s.tiers << " tiers");
    keys_pipe.write_end.close();
    char c = 0;
    CHILD_CHECK(slabtest::receive_value(done.read_end.get(), c)); // keep the pool mapped
    return 0;
  });
  keys_pipe.write_end.close();
  child reader = child::spawn([&] {
    slab::client cl = slab::client::connect(d.socket_path());
    slab::arena_pool<order> a = cl.open_arena<order>("arena");
    std::uint64_t raw = 0;
    std::uint64_t got = 0;
    while (slabtest::receive_value(keys_pipe.read_end.get(), raw)) {
      const order* o = a.get(key::from_raw(raw));
      CHILD_CHECK_MSG(o != nullptr && o->id == got * 2 && o->check == ~o->id,
                      "key " << std::hex << raw);
      ++got;
    }
    CHILD_CHECK_MSG(got == n / 2, got << " keys");
    // Past the pool's mapped tiers: refused, not a crash.
    CHILD_CHECK(a.get(key::make(0xFFFFFFF0U, 1)) == nullptr);
    return 0;
  });
  keys_pipe.read_end.close();
  const slabtest::exit_status rs = reader.wait(60s);
  EXPECT_TRUE(rs.ok()) << rs.describe();
  ASSERT_TRUE(slabtest::send_value(done.write_end.get(), 'd'));
  const slabtest::exit_status ws = writer.wait(60s);
  EXPECT_TRUE(ws.ok()) << ws.describe() << "\nshmd:\n" << d.stderr_text();
}

} // namespace
