// Handles over slab::slab<T> (slab/handles.hpp): unique_slot, shared_slot, claim_guard
// and get_many. Lifetimes are checked against a model over every sequence of a few
// operations (make, move, copy, release, reset, erase by key behind the handles' back),
// so every order of moves, copies, releases and drops is covered, not a chosen few.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <slab/slab.hpp>

namespace {

using slab::key;

// Counts constructions and destructions; a destruction of something not alive, or a
// second one, fails at once.
struct counts {
  long constructed = 0;
  long destroyed = 0;
  std::set<const void*> live;
};
counts* cnt = nullptr;

struct tracked {
  long id;
  key self{}; // set by the claim tests: a value that knows its own key
  explicit tracked(long i, key s = {}) : id(i), self(s) {
    EXPECT_TRUE(cnt->live.insert(this).second) << "constructed over a live value";
    ++cnt->constructed;
  }
  tracked(const tracked&) = delete;
  tracked& operator=(const tracked&) = delete;
  ~tracked() {
    EXPECT_EQ(cnt->live.erase(this), 1U) << "destroyed a value that is not alive (id " << id << ")";
    ++cnt->destroyed;
  }
};

struct throws_on_demand {
  tracked t;
  throws_on_demand(long i, bool fail) : t(i) {
    if (fail) throw std::runtime_error("constructor failed on demand");
  }
};

class handles : public testing::Test {
protected:
  void SetUp() override { cnt = &c_; }
  void TearDown() override {
    EXPECT_EQ(c_.constructed, c_.destroyed);
    EXPECT_TRUE(c_.live.empty());
    cnt = nullptr;
  }
  [[nodiscard]] long alive() const { return c_.constructed - c_.destroyed; }
  counts c_;
};

using book_t = slab::slab<tracked>;

static_assert(!std::is_copy_constructible_v<slab::unique_slot<tracked>>);
static_assert(std::is_nothrow_move_constructible_v<slab::unique_slot<tracked>>);
static_assert(std::is_copy_constructible_v<slab::shared_slot<tracked>>);
static_assert(!std::is_copy_constructible_v<slab::claim_guard<tracked>>);
static_assert(
    std::is_same_v<decltype(std::declval<book_t&>().make_unique(1L)), slab::unique_slot<tracked>>);

// ---- unique_slot ------------------------------------------------------------------

TEST_F(handles, unique_slot_erases_on_destruction_and_dereferences_its_value) {
  book_t book;
  key k;
  {
    slab::unique_slot<tracked> u = book.make_unique(7L);
    k = u.key();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, 7);
    EXPECT_EQ(&*u, book.get(k));
    EXPECT_EQ(u.get(), book.get(k));
    EXPECT_EQ(book.size(), 1U);
  }
  EXPECT_EQ(book.get(k), nullptr);
  EXPECT_EQ(book.size(), 0U);
  EXPECT_EQ(alive(), 0);
}

TEST_F(handles, unique_slot_release_keeps_the_value_and_returns_its_key) {
  book_t book;
  slab::unique_slot<tracked> u = book.make_unique(1L);
  const key k = u.key();
  EXPECT_EQ(u.release(), k);
  EXPECT_FALSE(u);
  EXPECT_EQ(u.key(), key{});
  EXPECT_EQ(u.release(), key{}); // an empty handle releases nothing
  u.reset();                     // and erases nothing
  ASSERT_NE(book.get(k), nullptr);
  EXPECT_EQ(alive(), 1);
  EXPECT_TRUE(book.erase(k));
  EXPECT_EQ(alive(), 0);
}

TEST_F(handles, unique_slot_move_assignment_erases_the_value_it_replaces) {
  book_t book;
  slab::unique_slot<tracked> a = book.make_unique(1L);
  slab::unique_slot<tracked> b = book.make_unique(2L);
  const key ka = a.key(), kb = b.key();
  b = std::move(a);
  EXPECT_EQ(book.get(kb), nullptr);
  ASSERT_NE(book.get(ka), nullptr);
  EXPECT_EQ(b.key(), ka);
  EXPECT_EQ(b->id, 1);
  EXPECT_FALSE(a); // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  b = std::move(b);
  EXPECT_EQ(b->id, 1);
  EXPECT_EQ(alive(), 1);
}

TEST_F(handles, a_handle_whose_value_was_erased_by_key_erases_nothing_later) {
  book_t book;
  slab::unique_slot<tracked> u = book.make_unique(1L);
  ASSERT_TRUE(book.erase(u.key()));
  const key reused = book.emplace(2L); // same slot, next generation
  EXPECT_EQ(reused.index(), u.key().index());
  u.reset(); // stale key: refused, the new occupant survives
  ASSERT_NE(book.get(reused), nullptr);
  EXPECT_EQ(book.get(reused)->id, 2);
  book.clear();
}

// ---- shared_slot ------------------------------------------------------------------

TEST_F(handles, shared_slot_last_copy_erases) {
  book_t book;
  slab::shared_slot<tracked> a = book.make_shared(5L);
  const key k = a.key();
  EXPECT_EQ(a.use_count(), 1U);
  {
    slab::shared_slot<tracked> b = a;
    slab::shared_slot<tracked> c;
    c = b;
    EXPECT_EQ(a.use_count(), 3U);
    EXPECT_EQ(c.get(), a.get());
    EXPECT_EQ(&*c, book.get(k));
  }
  EXPECT_EQ(a.use_count(), 1U);
  slab::shared_slot<tracked> d = std::move(a);
  EXPECT_EQ(d.use_count(), 1U);
  EXPECT_EQ(a.use_count(), 0U); // NOLINT(bugprone-use-after-move)
  ASSERT_NE(book.get(k), nullptr);
  d.reset();
  EXPECT_EQ(book.get(k), nullptr);
  EXPECT_EQ(alive(), 0);
}

TEST_F(handles, shared_slot_from_unique_slot_takes_over_the_value) {
  book_t book;
  slab::unique_slot<tracked> u = book.make_unique(3L);
  const key k = u.key();
  slab::shared_slot<tracked> s = std::move(u);
  EXPECT_FALSE(u); // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(s.key(), k);
  EXPECT_EQ(s.use_count(), 1U);
  slab::shared_slot<tracked> t = s;
  s.reset();
  ASSERT_NE(book.get(k), nullptr);
  t.reset();
  EXPECT_EQ(book.get(k), nullptr);
  slab::shared_slot<tracked> empty = slab::unique_slot<tracked>{};
  EXPECT_FALSE(empty);
}

TEST_F(handles, shared_count_lives_in_the_slot_header_not_the_free_list) {
  // Erasing a shared value by key, then reusing the slot: the old handles must neither
  // count nor erase the new occupant, and the free list must stay intact.
  book_t book;
  slab::shared_slot<tracked> a = book.make_shared(1L);
  slab::shared_slot<tracked> b = a;
  ASSERT_TRUE(book.erase(a.key()));
  EXPECT_EQ(a.use_count(), 0U);
  const key k2 = book.emplace(2L);
  ASSERT_EQ(k2.index(), a.key().index());
  slab::shared_slot<tracked> c = a; // copying a dead handle touches nothing
  a.reset();
  b.reset();
  c.reset();
  ASSERT_NE(book.get(k2), nullptr);
  std::set<std::uint32_t> idx{k2.index()};
  for (long i = 0; i < 100; ++i)
    EXPECT_TRUE(idx.insert(book.emplace(i).index()).second) << "slot handed out twice";
  book.clear();
  slab::shared_slot<tracked> d = book.make_shared(9L);
  book.clear(); // clear() kills shared values too; their handles go dead
  EXPECT_EQ(d.use_count(), 0U);
  d.reset();
  EXPECT_EQ(alive(), 0);
}

// ---- every order --------------------------------------------------------------------

// One operation on a row of three handle variables.
struct op {
  enum kind : std::uint8_t { make, copy, move, release, reset, erase_key } what;
  std::uint8_t a, b;
};

std::vector<op> alphabet(bool shared) {
  std::vector<op> ops;
  for (std::uint8_t i = 0; i < 3; ++i) {
    ops.push_back({op::make, i, i});
    ops.push_back({op::reset, i, i});
    ops.push_back({op::erase_key, i, i});
    if (!shared) ops.push_back({op::release, i, i});
    for (std::uint8_t j = 0; j < 3; ++j) {
      if (i == j) continue;
      ops.push_back({op::move, i, j});
      if (shared) ops.push_back({op::copy, i, j});
    }
  }
  return ops;
}

// What the handles should hold: per variable, the value id or -1; per id, whether it is
// alive. A value dies when no handle holds it (and it was not released), or when it is
// erased by key.
struct model {
  std::array<long, 3> held{-1, -1, -1};
  std::map<long, bool> alive;
  std::set<long> released;
  [[nodiscard]] long holders(long id) const {
    long n = 0;
    for (const long h : held)
      n += h == id ? 1 : 0;
    return n;
  }
  // Variable `var` now holds `id` (or nothing); what it held dies with its last holder.
  void replace(std::size_t var, long id) {
    const long old = std::exchange(held[var], id);
    if (old >= 0 && holders(old) == 0 && released.count(old) == 0) alive[old] = false;
  }
  [[nodiscard]] long live_count() const {
    long n = 0;
    for (const auto& [id, a] : alive)
      n += a ? 1 : 0;
    return n;
  }
};

template <class Handle, class Make>
void run_sequence(book_t& book, const std::vector<op>& seq, Make make_handle, long& next_id,
                  std::string& trace) {
  std::array<Handle, 3> h;
  model m;
  std::map<long, key> keys;
  for (const op& o : seq) {
    trace += std::to_string(o.what) + ":" + std::to_string(o.a) + std::to_string(o.b) + " ";
    switch (o.what) {
    case op::make: {
      const long id = next_id++;
      h[o.a] = make_handle(book, id);
      keys[id] = h[o.a].key();
      m.replace(o.a, id);
      m.alive[id] = true;
      break;
    }
    case op::copy:
      if constexpr (std::is_copy_assignable_v<Handle>) {
        h[o.b] = h[o.a];
        m.replace(o.b, m.held[o.a]);
      }
      break;
    case op::move: {
      h[o.b] = std::move(h[o.a]);
      m.replace(o.b, std::exchange(m.held[o.a], -1));
      break;
    }
    case op::release:
      if constexpr (requires { h[0].release(); }) {
        const key k = h[o.a].release();
        const long id = std::exchange(m.held[o.a], -1);
        EXPECT_EQ(k, id >= 0 ? keys[id] : key{}) << trace;
        if (id >= 0) m.released.insert(id);
      }
      break;
    case op::reset:
      h[o.a].reset();
      m.replace(o.a, -1);
      break;
    case op::erase_key: {
      const long id = m.held[o.a];
      const bool was_alive = id >= 0 && m.alive[id];
      EXPECT_EQ(book.erase(h[o.a].key()), was_alive) << trace;
      if (id >= 0) m.alive[id] = false;
      break;
    }
    }
    // After every step: exactly the model's values are alive, each readable by its key,
    // and every handle points at its value.
    ASSERT_EQ(book.size(), static_cast<std::size_t>(m.live_count())) << trace;
    for (const auto& [id, a] : m.alive) {
      const tracked* p = book.get(keys[id]);
      ASSERT_EQ(p != nullptr, a) << "value " << id << " after " << trace;
      if (p != nullptr) {
        ASSERT_EQ(p->id, id) << trace;
      }
    }
    for (std::size_t v = 0; v < 3; ++v) {
      const long id = m.held[v];
      ASSERT_EQ(static_cast<bool>(h[v]), id >= 0) << trace;
      if (id >= 0 && m.alive[id]) {
        ASSERT_EQ(h[v]->id, id) << trace;
        if constexpr (requires { h[v].use_count(); }) {
          ASSERT_EQ(h[v].use_count(), static_cast<std::uint32_t>(m.holders(id))) << trace;
        }
      }
    }
  }
  for (Handle& x : h)
    x.reset();
  for (const long id : m.released) {
    if (m.alive[id]) {
      EXPECT_TRUE(book.erase(keys[id])) << trace;
    }
  }
  ASSERT_EQ(book.size(), 0U) << trace;
}

TEST_F(handles, unique_slot_every_order_of_four_operations) {
  const std::vector<op> ab = alphabet(false);
  book_t book;
  long next_id = 0;
  std::size_t sequences = 0;
  std::vector<op> seq(4);
  for (const op& a : ab)
    for (const op& b : ab)
      for (const op& c : ab)
        for (const op& d : ab) {
          seq = {a, b, c, d};
          std::string trace;
          run_sequence<slab::unique_slot<tracked>>(
              book, seq, [](book_t& bk, long id) { return bk.make_unique(id); }, next_id, trace);
          ASSERT_EQ(alive(), 0) << trace;
          ++sequences;
          if (HasFatalFailure()) return;
        }
  EXPECT_EQ(sequences, ab.size() * ab.size() * ab.size() * ab.size());
  EXPECT_EQ(c_.constructed, next_id);
}

TEST_F(handles, shared_slot_every_order_of_four_operations) {
  const std::vector<op> ab = alphabet(true);
  book_t book;
  long next_id = 0;
  std::vector<op> seq(4);
  for (const op& a : ab)
    for (const op& b : ab)
      for (const op& c : ab)
        for (const op& d : ab) {
          seq = {a, b, c, d};
          std::string trace;
          run_sequence<slab::shared_slot<tracked>>(
              book, seq, [](book_t& bk, long id) { return bk.make_shared(id); }, next_id, trace);
          ASSERT_EQ(alive(), 0) << trace;
          if (HasFatalFailure()) return;
        }
  EXPECT_EQ(c_.constructed, next_id);
}

TEST_F(handles, copies_dropped_in_every_permutation_destroy_once_at_the_last) {
  book_t book;
  std::array<int, 4> order{0, 1, 2, 3};
  int perms = 0;
  do {
    std::array<slab::shared_slot<tracked>, 4> h;
    h[0] = book.make_shared(1L);
    h[1] = h[0];
    h[2] = h[1];
    h[3] = h[2];
    for (std::size_t i = 0; i < 4; ++i) {
      ASSERT_EQ(alive(), 1);
      h[static_cast<std::size_t>(order[i])].reset();
      EXPECT_EQ(alive(), i == 3 ? 0 : 1);
    }
    ++perms;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(perms, 24);
  EXPECT_EQ(c_.destroyed, 24);
}

// ---- exceptions ---------------------------------------------------------------------

TEST_F(handles, handles_erase_their_values_when_an_exception_unwinds_them) {
  book_t book;
  key ku, ks;
  auto work = [&] {
    slab::unique_slot<tracked> u = book.make_unique(1L);
    slab::shared_slot<tracked> s = book.make_shared(2L);
    slab::shared_slot<tracked> s2 = s;
    ku = u.key();
    ks = s.key();
    EXPECT_EQ(alive(), 2);
    throw std::runtime_error("unwind");
  };
  EXPECT_THROW(work(), std::runtime_error);
  EXPECT_EQ(alive(), 0);
  EXPECT_EQ(book.get(ku), nullptr);
  EXPECT_EQ(book.get(ks), nullptr);
  EXPECT_EQ(book.size(), 0U);
}

TEST_F(handles, a_throwing_constructor_leaves_no_handle_and_no_slot_taken) {
  slab::slab<throws_on_demand> book;
  const key k0 = book.emplace(0L, false);
  EXPECT_THROW((void)book.make_unique(1L, true), std::runtime_error);
  EXPECT_THROW((void)book.make_shared(2L, true), std::runtime_error);
  EXPECT_EQ(book.size(), 1U);
  const key k1 = book.emplace(3L, false);
  EXPECT_EQ(k1.index(), k0.index() + 1); // the slot tried twice went back each time
  EXPECT_EQ(alive(), 2);
  book.clear();
}

// ---- claim --------------------------------------------------------------------------

TEST_F(handles, claim_write_gives_the_announced_key_and_the_value_can_hold_it) {
  book_t book;
  auto c = book.claim();
  ASSERT_TRUE(c.pending());
  const key k = c.key();
  EXPECT_TRUE(k.plausible());
  EXPECT_EQ(book.get(k), nullptr); // nothing there before write
  EXPECT_EQ(book.size(), 0U);
  EXPECT_EQ(c.write(1L, k), k);
  EXPECT_FALSE(c.pending());
  EXPECT_EQ(c.key(), key{});
  ASSERT_NE(book.get(k), nullptr);
  EXPECT_EQ(book.get(k)->self, k);
  EXPECT_THROW(c.write(2L), slab::error); // written once only
  EXPECT_EQ(alive(), 1);
  EXPECT_TRUE(book.erase(k));
}

TEST_F(handles, an_abandoned_claim_gives_its_slot_back) {
  book_t book;
  key claimed;
  {
    auto c = book.claim();
    claimed = c.key();
    auto c2 = book.claim(); // a second, different slot
    EXPECT_NE(c2.key().index(), claimed.index());
    c2.give_back();
    EXPECT_FALSE(c2.pending());
  } // dropped unwritten
  EXPECT_EQ(book.size(), 0U);
  EXPECT_EQ(alive(), 0);
  // Both slots are free again: the next emplaces take them (LIFO) and no others.
  std::set<std::uint32_t> got;
  got.insert(book.emplace(1L).index());
  got.insert(book.emplace(2L).index());
  EXPECT_EQ(got.count(claimed.index()), 1U);
  EXPECT_EQ(*got.rbegin(), 1U);
  // The abandoned key never became valid, not even now that its slot is reused.
  EXPECT_EQ(book.get(claimed), nullptr);
  book.clear();
}

TEST_F(handles, a_claim_survives_a_move_of_the_guard_and_a_throwing_write) {
  slab::slab<throws_on_demand> book;
  auto c = book.claim();
  const key k = c.key();
  auto moved = std::move(c);
  EXPECT_FALSE(c.pending()); // NOLINT(bugprone-use-after-move)
  EXPECT_THROW(moved.write(1L, true), std::runtime_error);
  EXPECT_TRUE(moved.pending()); // still claimed after the failed constructor
  EXPECT_EQ(moved.key(), k);
  EXPECT_EQ(moved.write(2L, false), k);
  EXPECT_EQ(book.get(k)->t.id, 2);
  EXPECT_EQ(alive(), 1);
  book.clear();
}

TEST_F(handles, clear_voids_pending_claims) {
  book_t book;
  auto c = book.claim();
  const key k = c.key();
  book.clear();
  std::set<std::uint32_t> idx;
  for (long i = 0; i < 10; ++i)
    idx.insert(book.emplace(i).index()); // reuses the claimed slot: clear forgot it
  EXPECT_EQ(idx.count(k.index()), 1U);
  EXPECT_THROW(c.write(99L), slab::error);
  c.give_back(); // does nothing: the slot is someone else's now
  for (long i = 0; i < 10; ++i)
    EXPECT_TRUE(idx.insert(book.emplace(i).index()).second) << "slot handed out twice";
  book.clear();
}

// ---- get_many -----------------------------------------------------------------------

TEST_F(handles, get_many_returns_distinct_live_values) {
  book_t book;
  const key a = book.emplace(1L), b = book.emplace(2L), c = book.emplace(3L);
  auto v = book.get_many(a, b, c);
  ASSERT_TRUE(v.has_value());
  auto [x, y, z] = *v;
  EXPECT_EQ(x, book.get(a));
  EXPECT_EQ(y, book.get(b));
  EXPECT_EQ(z, book.get(c));
  std::swap(x->id, z->id); // both at once, mutably
  EXPECT_EQ(book.get(a)->id, 3);
  EXPECT_EQ(book.get(c)->id, 1);
  auto one = book.get_many(b);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ((*one)[0]->id, 2);
  book.clear();
}

TEST_F(handles, get_many_refuses_duplicates_and_stale_keys_and_says_which) {
  book_t book;
  const key a = book.emplace(1L), b = book.emplace(2L);
  const key gone = book.emplace(3L);
  ASSERT_TRUE(book.erase(gone));
  const key reused = book.emplace(4L); // the same slot as `gone`, a new generation
  ASSERT_EQ(reused.index(), gone.index());

  EXPECT_FALSE(book.get_many(a, a).has_value());
  EXPECT_FALSE(book.get_many(a, b, a).has_value());
  EXPECT_FALSE(book.get_many(a, gone).has_value());
  EXPECT_FALSE(book.get_many(a, key{}).has_value());
  EXPECT_FALSE(book.get_many(a, key::make(1000, 1)).has_value());
  EXPECT_TRUE(book.get_many(a, b, reused).has_value());

  using st = slab::get_many_result::status;
  std::array<tracked*, 3> out{};
  const std::array<key, 3> dup{a, b, a};
  auto r = book.get_many(std::span<const key>(dup), std::span<tracked*>(out));
  EXPECT_EQ(r.what, st::duplicate);
  EXPECT_EQ(r.first, 0U);
  EXPECT_EQ(r.second, 2U);
  // Same slot, different generations: still the same slot, refused as a duplicate.
  const std::array<key, 2> same_slot{reused, gone};
  r = book.get_many(std::span<const key>(same_slot), std::span<tracked*>(out));
  EXPECT_EQ(r.what, st::duplicate);
  const std::array<key, 3> stale{a, gone, b};
  r = book.get_many(std::span<const key>(stale), std::span<tracked*>(out));
  EXPECT_EQ(r.what, st::stale);
  EXPECT_EQ(r.first, 1U);
  EXPECT_FALSE(r);
  r = book.get_many(std::span<const key>(stale), std::span<tracked*>(out.data(), 2));
  EXPECT_EQ(r.what, st::too_small);
  const std::array<key, 2> fine{b, a};
  r = book.get_many(std::span<const key>(fine), std::span<tracked*>(out));
  EXPECT_TRUE(r);
  EXPECT_EQ(out[0]->id, 2);
  EXPECT_EQ(out[1]->id, 1);
  EXPECT_TRUE(book.get_many(std::span<const key>{}, std::span<tracked*>{}));
  book.clear();
}

} // namespace
