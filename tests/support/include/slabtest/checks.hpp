// Helpers of the process tests: the checks around every allocation and erase, the
// audit each storm ends with, keys parked in shared memory.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>

#include <slab/client.hpp>

#include <slabtest/daemon.hpp>
#include <slabtest/ledger.hpp>
#include <slabtest/pool_view.hpp>

namespace slabtest {

using slab::key;

/// emplace, then the checks every allocation makes: the value reads back through the key
/// and the ledger had the slot free.
inline slab::key allocate(slab::pool<stamp>& p, std::uint32_t thread, std::uint32_t n) {
  const std::uint64_t tag = slabtest::make_tag(thread, n);
  const key k = p.emplace(tag);
  stamp* s = p.get(k);
  CHILD_CHECK_MSG(s != nullptr && s->tag == tag, "fresh key " << std::hex << k.raw());
  s->key = k.raw();
  CHILD_CHECK_MSG(current_ledger->claim(k, tag), "slot " << k.index() << " handed out twice");
  return k;
}

/// The checks before and after erasing a key this process did not necessarily make: the
/// value is the one its allocator stamped, erase succeeds once, the key is stale after.
inline void check_and_erase(slab::pool<stamp>& p, key k, std::optional<std::uint64_t> tag = {}) {
  stamp* s = p.get(k);
  CHILD_CHECK_MSG(s != nullptr, "live key " << std::hex << k.raw() << " reads as nullptr");
  CHILD_CHECK_MSG(s->key == k.raw(), "key " << std::hex << k.raw() << " holds " << s->key);
  CHILD_CHECK_MSG(!tag || s->tag == *tag, "key " << std::hex << k.raw() << " tag " << s->tag);
  CHILD_CHECK_MSG(current_ledger->owner(k) == s->tag, "ledger disagrees on slot " << k.index());
  CHILD_CHECK_MSG(p.erase(k), "erase of live key " << std::hex << k.raw() << " refused");
  CHILD_CHECK(p.get(k) == nullptr);
  CHILD_CHECK(!p.erase(k));
}

/// The audit every storm ends with: shmd has reclaimed every client context, the pool
/// is consistent (every slot live or free exactly once, every magazine in one place,
/// records that should hold nothing hold nothing). Returns the report.
inline slab::core::audit_report audit_after_storm(daemon& d, const std::string& pool = "test") {
  pool_view v(d.socket_path(), pool);
  EXPECT_TRUE(v.wait_reclaimed()) << "contexts never reclaimed:\n" << d.stderr_text();
  const slab::core::audit_report r = v.audit();
  EXPECT_TRUE(r.ok()) << pool_view::describe(r);
  EXPECT_EQ(r.live + r.free_depot + r.free_cached, r.used) << pool_view::describe(r);
  const std::vector<std::string> idle = v.idle_record_problems();
  EXPECT_TRUE(idle.empty()) << idle.front() << (idle.size() > 1 ? " (and more)" : "");
  return r;
}

/// The same, and exactly `live` slots are live (as the test's ledger says too).
inline void expect_clean_audit(daemon& d, std::uint64_t live, const std::string& pool = "test") {
  const slab::core::audit_report r = audit_after_storm(d, pool);
  EXPECT_EQ(r.live, live) << pool_view::describe(r);
  if (current_ledger != nullptr) {
    EXPECT_EQ(current_ledger->owned(), live);
    EXPECT_EQ(current_ledger->counters().double_handouts.load(), 0U);
    EXPECT_EQ(current_ledger->counters().bad_releases.load(), 0U);
  }
}

/// Sets the test's ledger for itself and the children it forks.
class with_ledger {
public:
  explicit with_ledger(std::size_t slots) : l_(slots) { current_ledger = &l_; }
  ~with_ledger() { current_ledger = nullptr; }
  slabtest::ledger& operator*() noexcept { return l_; }
  slabtest::ledger* operator->() noexcept { return &l_; }

private:
  slabtest::ledger l_;
};

inline void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

/// Keys parked in shared memory: a thread that parks a key takes whatever key was there
/// and erases it, so most parked keys are erased by another thread or process.
using mailbox = shared_array<std::atomic<std::uint64_t>>;

inline std::uint64_t count_parked(mailbox& box) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < box.size(); ++i)
    if (box[i].load() != 0) ++n;
  return n;
}

} // namespace slabtest
