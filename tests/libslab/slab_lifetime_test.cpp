// slab::slab<T> object lifetimes: every value constructed and destroyed exactly once
// through emplace, erase, clear, the destructor and moves of the slab; exception safety
// when T's constructor throws.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

#include <slab/slab.hpp>

namespace {

using slab::key;

// Every live instance is registered by address: a double destruction, a destruction of
// something never constructed, or a value moved behind our back shows up at once.
struct registry {
  std::unordered_set<const void*> live;
  long constructed = 0;
  long destroyed = 0;
  long errors = 0;
};
registry* reg = nullptr;

struct tracked {
  std::uint64_t value;
  std::uint64_t check; // ~value while alive: a payload overwrite shows up here

  explicit tracked(std::uint64_t v) : value(v), check(~v) { enter(); }
  tracked(const tracked& o) : value(o.value), check(~o.value) { enter(); }
  tracked(tracked&& o) noexcept : value(o.value), check(~o.value) { enter(); }
  tracked& operator=(const tracked&) = default;
  tracked& operator=(tracked&&) = default;
  ~tracked() {
    if (reg->live.erase(this) != 1) {
      ++reg->errors;
      ADD_FAILURE() << "destroying an object that is not alive at " << this;
    }
    if (check != ~value) {
      ++reg->errors;
      ADD_FAILURE() << "payload corrupted: " << value;
    }
    ++reg->destroyed;
    check = value; // poison: a second destruction also fails the check above
  }
  [[nodiscard]] bool intact() const { return check == ~value && reg->live.count(this) == 1; }

private:
  void enter() {
    if (!reg->live.insert(this).second) {
      ++reg->errors;
      ADD_FAILURE() << "constructing over a live object at " << this;
    }
    ++reg->constructed;
  }
};

// A tracked member is constructed before the constructor body can throw, so the
// compiler destroys it on the way out; the slab must not destroy the whole again.
struct may_throw {
  tracked member;
  may_throw(std::uint64_t v, bool fail) : member(v) {
    if (fail) throw std::runtime_error("constructor failed on demand");
  }
};

class lifetime : public testing::Test {
protected:
  void SetUp() override { reg = &r_; }
  void TearDown() override {
    EXPECT_TRUE(r_.live.empty()) << r_.live.size() << " objects never destroyed";
    EXPECT_EQ(r_.constructed, r_.destroyed);
    EXPECT_EQ(r_.errors, 0);
    reg = nullptr;
  }
  [[nodiscard]] long alive() const { return r_.constructed - r_.destroyed; }
  registry r_;
};

TEST_F(lifetime, emplace_and_erase_construct_and_destroy_once) {
  slab::slab<tracked> s(slab::slab_options{.first_tier = 4});
  std::vector<key> keys;
  for (std::uint64_t i = 0; i < 300; ++i)
    keys.push_back(s.emplace(i));
  EXPECT_EQ(r_.constructed, 300);
  EXPECT_EQ(r_.destroyed, 0) << "growth never moves or copies values";
  for (std::size_t i = 0; i < keys.size(); i += 2) {
    ASSERT_TRUE(s.erase(keys[i]));
    ASSERT_FALSE(s.erase(keys[i]));
  }
  EXPECT_EQ(r_.destroyed, 150);
  EXPECT_EQ(alive(), 150);
  EXPECT_EQ(static_cast<long>(s.size()), alive());
  for (std::size_t i = 1; i < keys.size(); i += 2) {
    const tracked* p = s.get(keys[i]);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p->intact());
    EXPECT_EQ(p->value, i);
  }
  // Emplace by copy and by move from outside.
  const tracked outside(1000);
  const key kc = s.emplace(outside);
  const key km = s.emplace(tracked(1001));
  EXPECT_EQ(s.get(kc)->value, 1000U);
  EXPECT_EQ(s.get(km)->value, 1001U);
  EXPECT_EQ(alive(), 153); // 152 in the slab + outside
}

TEST_F(lifetime, clear_and_destructor_destroy_each_live_value_once) {
  {
    slab::slab<tracked> s(slab::slab_options{.first_tier = 2});
    std::vector<key> keys;
    for (std::uint64_t i = 0; i < 100; ++i)
      keys.push_back(s.emplace(i));
    for (std::size_t i = 0; i < 100; i += 4)
      ASSERT_TRUE(s.erase(keys[i]));
    EXPECT_EQ(alive(), 75);
    s.clear();
    EXPECT_EQ(alive(), 0);
    EXPECT_EQ(r_.destroyed, 100);
    for (std::uint64_t i = 0; i < 50; ++i)
      s.emplace(i);
    EXPECT_EQ(alive(), 50);
    const key gone = s.emplace(99U);
    ASSERT_TRUE(s.erase(gone));
    EXPECT_EQ(alive(), 50);
  } // destructor: the 50 remaining, once each
  EXPECT_EQ(alive(), 0);
  EXPECT_EQ(r_.constructed, 151);
}

TEST_F(lifetime, move_construction_transfers_without_touching_values) {
  slab::slab<tracked> a(slab::slab_options{.first_tier = 4});
  std::vector<key> keys;
  std::vector<const tracked*> where;
  for (std::uint64_t i = 0; i < 200; ++i) {
    keys.push_back(a.emplace(i));
    where.push_back(a.get(keys.back()));
  }
  ASSERT_TRUE(a.erase(keys[10]));
  const long built = r_.constructed;
  const long gone = r_.destroyed;

  slab::slab<tracked> b(std::move(a));
  EXPECT_EQ(r_.constructed, built) << "moving the slab must not move its values";
  EXPECT_EQ(r_.destroyed, gone);
  EXPECT_EQ(b.size(), 199U);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i == 10) {
      EXPECT_EQ(b.get(keys[i]), nullptr);
      continue;
    }
    ASSERT_EQ(b.get(keys[i]), where[i]) << "address changed by the move";
    EXPECT_EQ(b.get(keys[i])->value, i);
  }
  // The moved-from slab is empty, knows none of the keys, and is usable again.
  EXPECT_EQ(a.size(), 0U); // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.capacity(), 0U);
  EXPECT_EQ(a.begin(), a.end());
  for (const key k : keys) {
    EXPECT_EQ(a.get(k), nullptr);
    EXPECT_FALSE(a.erase(k));
  }
  const key ka = a.emplace(7U);
  EXPECT_EQ(a.get(ka)->value, 7U);
  EXPECT_EQ(alive(), 200);
}

TEST_F(lifetime, move_assignment_destroys_the_old_values_once) {
  slab::slab<tracked> a(slab::slab_options{.first_tier = 4});
  slab::slab<tracked> b(slab::slab_options{.first_tier = 8});
  std::vector<key> ka;
  std::vector<const tracked*> where;
  for (std::uint64_t i = 0; i < 50; ++i) {
    ka.push_back(a.emplace(i));
    where.push_back(a.get(ka.back()));
  }
  std::vector<key> kb;
  for (std::uint64_t i = 0; i < 30; ++i)
    kb.push_back(b.emplace(i + 500));
  const long built = r_.constructed;

  b = std::move(a);
  EXPECT_EQ(r_.constructed, built);
  EXPECT_EQ(r_.destroyed, 30) << "b's own values destroyed exactly once";
  EXPECT_EQ(b.size(), 50U);
  for (std::size_t i = 0; i < ka.size(); ++i) {
    ASSERT_EQ(b.get(ka[i]), where[i]);
    EXPECT_EQ(b.get(ka[i])->value, i);
  }
  EXPECT_EQ(a.size(), 0U); // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.get(ka[0]), nullptr);

  // Self-move leaves everything in place.
  slab::slab<tracked>& alias = b;
  b = std::move(alias);
  EXPECT_EQ(b.size(), 50U);
  EXPECT_EQ(b.get(ka[3]), where[3]);
  EXPECT_EQ(alive(), 50);

  // Move-assign into a moved-from slab, and back.
  a = std::move(b);
  EXPECT_EQ(a.size(), 50U);
  EXPECT_EQ(a.get(ka[49]), where[49]);
  EXPECT_EQ(alive(), 50);
  // Move-assigning an empty slab over a full one destroys the full one's values.
  slab::slab<tracked> empty;
  a = std::move(empty);
  EXPECT_EQ(alive(), 0);
  EXPECT_TRUE(a.empty());
}

TEST_F(lifetime, throwing_constructor_takes_nothing) {
  slab::slab<may_throw> s(slab::slab_options{.first_tier = 4});
  std::vector<key> keys;
  for (std::uint64_t i = 0; i < 3; ++i)
    keys.push_back(s.emplace(i, false));
  ASSERT_EQ(s.size(), 3U);

  // Fresh space: index 3 would be taken.
  EXPECT_THROW(s.emplace(100U, true), std::runtime_error);
  EXPECT_EQ(s.size(), 3U);
  EXPECT_EQ(alive(), 3) << "the member built before the throw is gone, nothing else";
  for (auto e : s)
    EXPECT_NE(e.key.index(), 3U) << "the failed slot is not live";
  const key k3 = s.emplace(3U, false);
  EXPECT_EQ(k3.index(), 3U) << "the failed slot is the next one used";
  EXPECT_EQ(k3.generation(), 1U) << "the failed attempt did not step the generation";
  keys.push_back(k3);

  // Free-list space: reuse of an erased slot fails, then succeeds.
  const key old = keys[1];
  ASSERT_TRUE(s.erase(old));
  EXPECT_THROW(s.emplace(101U, true), std::runtime_error);
  EXPECT_EQ(s.size(), 3U);
  EXPECT_EQ(s.get(old), nullptr);
  // try_emplace lets constructor exceptions through too.
  EXPECT_THROW((void)s.try_emplace(102U, true), std::runtime_error);
  EXPECT_EQ(s.size(), 3U);
  const key again = s.emplace(1U, false);
  EXPECT_EQ(again.index(), old.index());
  EXPECT_EQ(again.generation(), old.generation() + 2U);
  EXPECT_EQ(s.get(old), nullptr);
  keys[1] = again;

  // The throw that comes right after adding a tier: capacity grows, nothing is taken.
  const std::size_t cap = s.capacity();
  for (std::size_t i = s.size(); i < cap; ++i)
    keys.push_back(s.emplace(i, false));
  ASSERT_EQ(s.capacity(), cap) << "filling the free space needed a new tier: a slot was lost";
  const std::size_t n = s.size();
  ASSERT_EQ(n, cap);
  EXPECT_THROW(s.emplace(103U, true), std::runtime_error);
  EXPECT_EQ(s.size(), n);
  EXPECT_GT(s.capacity(), cap);
  const key next = s.emplace(n, false);
  EXPECT_EQ(next.index(), n);
  keys.push_back(next);

  // Every key handed out so far still works, with its value.
  ASSERT_EQ(keys.size(), s.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const may_throw* p = s.get(keys[i]);
    ASSERT_NE(p, nullptr) << i;
    EXPECT_TRUE(p->member.intact());
    EXPECT_EQ(p->member.value, i);
  }
  std::size_t visited = 0;
  for (auto e : s) {
    EXPECT_TRUE(e.value.member.intact());
    ++visited;
  }
  EXPECT_EQ(visited, s.size());
  EXPECT_EQ(alive(), static_cast<long>(s.size()));
}

TEST_F(lifetime, many_interleaved_failures) {
  slab::slab<may_throw> s(slab::slab_options{.first_tier = 1});
  std::vector<key> keys;
  std::uint64_t failures = 0;
  std::size_t peak = 0;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    const bool fail = i % 3 == 0;
    try {
      keys.push_back(s.emplace(i, fail));
      EXPECT_FALSE(fail);
    } catch (const std::runtime_error&) {
      EXPECT_TRUE(fail);
      ++failures;
    }
    peak = std::max(peak, keys.size());
    if (i % 7 == 0 && !keys.empty()) {
      ASSERT_TRUE(s.erase(keys.back()));
      keys.pop_back();
    }
  }
  EXPECT_GT(failures, 0U);
  EXPECT_EQ(s.size(), keys.size());
  EXPECT_EQ(alive(), static_cast<long>(keys.size()));
  // No slot was lost to a failed emplace: freed and failed slots are reused first, so
  // no index at or above the peak number of live values was ever handed out.
  for (const key k : keys) {
    ASSERT_NE(s.get(k), nullptr);
    EXPECT_LT(k.index(), peak);
  }
  for (auto e : s)
    EXPECT_LT(e.key.index(), peak);
}

} // namespace
