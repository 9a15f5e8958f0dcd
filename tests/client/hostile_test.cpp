// Hostile clients: a client process scribbles over its own context record in shared
// memory (zeros, ones, random bytes, or plausible ids of magazines it does not hold),
// then dies. shmd must report the record and quarantine it, hand out nothing twice,
// give back what the client really held, keep the other clients' values intact, and
// never hand the quarantined record to a new client.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <random>
#include <set>
#include <string>

#include <slab/client.hpp>

#include <slabtest/checks.hpp>

namespace {

using namespace std::chrono_literals;
using slab::key;
using slabtest::child;
using slabtest::daemon;
using slabtest::daemon_cfg;
using slabtest::pool_view;
using slabtest::shared_array;

struct value {
  std::uint64_t raw;
  std::uint64_t check;
};
std::uint64_t check_of(std::uint64_t raw) { return raw * 0x9E3779B97F4A7C15ULL ^ 0xabcdefU; }

enum class scribble { zeros, ones, random_bytes, others_magazines };

constexpr std::size_t kept_max = 300;
struct shared_state {
  std::atomic<std::uint64_t> kept[kept_max]; ///< the honest client's live keys
  std::atomic<std::uint32_t> honest_ctx{0};
  std::atomic<std::uint32_t> ready{0};
};

daemon_cfg config() {
  daemon_cfg cfg;
  cfg.pools[0].capacity = 4096;
  cfg.pools[0].max_capacity = 1 << 16;
  cfg.pools[0].slot_size = sizeof(value);
  return cfg;
}

// The honest client: values it keeps live, a cache with free slots in it; then it waits.
int honest(const std::string& socket, shared_state& st) {
  slab::client c = slab::client::connect(socket);
  auto p = c.open_raw("test", sizeof(value), alignof(value));
  std::vector<key> keys;
  for (std::size_t i = 0; i < 2 * kept_max; ++i)
    keys.push_back(p->alloc());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i % 2 == 0) {
      CHILD_CHECK(p->free(keys[i], [] {}));
      continue;
    }
    auto* v = static_cast<value*>(p->get(keys[i]));
    v->raw = keys[i].raw();
    v->check = check_of(v->raw);
    st.kept[i / 2].store(keys[i].raw());
  }
  st.honest_ctx.store(p->context());
  st.ready.store(1);
  for (;;)
    ::pause(); // killed by the test at the end
}

// The hostile one: allocates and frees (so it caches free slots), scribbles, dies.
int hostile(const std::string& socket, shared_state& st, scribble how, unsigned seed) {
  slab::client c = slab::client::connect(socket);
  auto p = c.open_raw("test", sizeof(value), alignof(value));
  std::vector<key> keys;
  for (int i = 0; i < 150; ++i)
    keys.push_back(p->alloc());
  for (std::size_t i = 0; i < keys.size(); i += 2)
    CHILD_CHECK(p->free(keys[i], [] {}));
  slab::core::context_record& rec = p->map().context(p->context());
  auto* bytes = reinterpret_cast<unsigned char*>(&rec);
  switch (how) {
  case scribble::zeros: std::memset(bytes, 0, sizeof rec); break;
  case scribble::ones: std::memset(bytes, 0xFF, sizeof rec); break;
  case scribble::random_bytes: {
    std::mt19937 rng(seed);
    for (std::size_t i = 0; i < sizeof rec; ++i)
      bytes[i] = static_cast<unsigned char>(rng());
    break;
  }
  case scribble::others_magazines: {
    const slab::core::context_record& o = p->map().context(st.honest_ctx.load());
    rec.mag[0].store(o.mag[0].load());
    rec.mag[1].store(o.mag[1].load());
    rec.spare.store(o.mag[0].load());
    break;
  }
  }
  ::raise(SIGKILL);
  return 0;
}

class hostile_client : public ::testing::TestWithParam<scribble> {};

TEST_P(hostile_client, is_quarantined_and_the_pool_stays_consistent) {
  daemon d(config());
  shared_array<shared_state> st(1);
  child h = child::spawn([&] { return honest(d.socket_path(), st[0]); });
  ASSERT_TRUE(slabtest::eventually([&] { return st[0].ready.load() != 0; }, 10s));
  for (unsigned round = 0; round < 3; ++round) {
    child bad =
        child::spawn([&] { return hostile(d.socket_path(), st[0], GetParam(), 100 + round); });
    ASSERT_EQ(bad.wait().signal(), SIGKILL);
  }
  // Each of the three records reported and quarantined.
  ASSERT_TRUE(slabtest::eventually(
      [&] {
        const std::string log = d.stderr_text();
        std::size_t n = 0;
        for (std::size_t at = log.find("quarantined"); at != std::string::npos;
             at = log.find("quarantined", at + 1))
          ++n;
        return n >= 3;
      },
      10s))
      << d.stderr_text();
  // The honest client's values are intact.
  {
    pool_view v(d.socket_path(), "test");
    ASSERT_TRUE(v.map_all());
    slab::mapped::pool_map& m = v.map();
    for (const auto& a : st[0].kept) {
      const key k = key::from_raw(a.load());
      ASSERT_EQ(m.header(k.index()).gen(), slabtest::slot_generation(m, k));
      const auto* val = static_cast<const value*>(m.payload(k.index()));
      EXPECT_EQ(val->raw, k.raw());
      EXPECT_EQ(val->check, check_of(k.raw()));
    }
  }
  // A newcomer drains what the pool has ready without getting any slot twice or any
  // slot the honest client holds; it never gets a quarantined record either.
  child drain = child::spawn([&] {
    slab::client c = slab::client::connect(d.socket_path());
    auto p = c.open_raw("test", sizeof(value), alignof(value));
    const std::uint32_t me = p->context();
    const auto state = p->map().context(me).state.load();
    CHILD_CHECK(state == static_cast<std::uint32_t>(slab::core::context_state::active));
    std::set<std::uint32_t> seen;
    for (const auto& a : st[0].kept)
      seen.insert(key::from_raw(a.load()).index());
    for (int i = 0; i < 3000; ++i) {
      const key k = p->alloc();
      CHILD_CHECK(seen.insert(k.index()).second);
    }
    return 0;
  });
  EXPECT_EQ(drain.wait().code(), 0);
  h.signal(SIGKILL);
  (void)h.wait();
  const slab::core::audit_report rep = slabtest::audit_after_storm(d);
  // Live: the honest client's, the newcomer's, and the 75 each hostile client held live
  // when it died (live values stay live: other processes may hold their keys).
  EXPECT_EQ(rep.live, kept_max + 3000 + 3 * 75) << pool_view::describe(rep);
}

std::string scribble_name(const ::testing::TestParamInfo<scribble>& p) {
  switch (p.param) {
  case scribble::zeros: return "zeros";
  case scribble::ones: return "ones";
  case scribble::random_bytes: return "random_bytes";
  case scribble::others_magazines: return "others_magazines";
  }
  return "unknown";
}

INSTANTIATE_TEST_SUITE_P(scribbles, hostile_client,
                         ::testing::Values(scribble::zeros, scribble::ones, scribble::random_bytes,
                                           scribble::others_magazines),
                         scribble_name);

} // namespace
