// The ledger: who owns each slot of a pool right now, in memory shared by the test and
// every child it forks (made before the forks). It is how the process tests see a slot
// handed out twice: each allocation claims its slot index in the ledger (0 -> its tag)
// and finds it clear, and the value's destructor, which runs in whichever process wins
// the erase, releases it (tag -> 0) before the slot can be handed out again.
//
// (The ledger stands beside the pool rather than in the slot's payload because an
// allocation cannot look at a slot's bytes before pool<T>::emplace constructs over them.
// The payload carries the same tag, which the process that erases checks.)
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>

#include <unistd.h>

#include <slab/key.hpp>

#include <slabtest/shared.hpp>

namespace slabtest {

struct ledger_counters {
  std::atomic<std::uint64_t> double_handouts{0}; ///< allocation found its slot owned
  std::atomic<std::uint64_t> bad_releases{0};    ///< destructor found another owner
  std::atomic<std::uint64_t> destructions{0};    ///< stamp destructors run
};

class ledger {
public:
  explicit ledger(std::size_t slots) : owner_(slots), counters_(1) {}

  /// Claims k's slot for `tag`. False (and counted) when someone owns it already.
  bool claim(slab::key k, std::uint64_t tag) {
    if (k.index() >= owner_.size()) return false;
    std::uint64_t expected = 0;
    if (owner_[k.index()].compare_exchange_strong(expected, tag)) return true;
    counters_->double_handouts.fetch_add(1);
    std::fprintf(stderr, "[pid %d] slot %u handed out to tag %llx while owned by %llx\n",
                 static_cast<int>(::getpid()), k.index(), static_cast<unsigned long long>(tag),
                 static_cast<unsigned long long>(expected));
    return false;
  }
  /// Releases k's slot from `tag` (the value's destructor).
  void release(std::uint64_t raw_key, std::uint64_t tag) noexcept {
    counters_->destructions.fetch_add(1);
    const slab::key k = slab::key::from_raw(raw_key);
    std::uint64_t expected = tag;
    if (k.index() < owner_.size() && owner_[k.index()].compare_exchange_strong(expected, 0)) return;
    counters_->bad_releases.fetch_add(1);
    std::fprintf(stderr, "[pid %d] slot %u destroyed for tag %llx but the ledger says %llx\n",
                 static_cast<int>(::getpid()), k.index(), static_cast<unsigned long long>(tag),
                 static_cast<unsigned long long>(expected));
  }
  [[nodiscard]] std::uint64_t owner(slab::key k) {
    return k.index() < owner_.size() ? owner_[k.index()].load() : ~std::uint64_t{0};
  }
  /// Slots the ledger says are owned.
  [[nodiscard]] std::uint64_t owned() {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < owner_.size(); ++i)
      if (owner_[i].load(std::memory_order_relaxed) != 0) ++n;
    return n;
  }
  ledger_counters& counters() noexcept { return *counters_; }

private:
  shared_array<std::atomic<std::uint64_t>> owner_;
  shared_array<ledger_counters> counters_;
};

/// The ledger of the running test, set before it forks (children inherit the pointer).
inline ledger* current_ledger = nullptr;

/// What the process tests store in a slot: the allocator's tag (pid << 32 | sequence,
/// never 0) and the slot's own key, written right after emplace.
struct stamp {
  std::uint64_t tag;
  std::uint64_t key = 0;
  explicit stamp(std::uint64_t t) noexcept : tag(t) {}
  stamp(const stamp&) = delete;
  stamp& operator=(const stamp&) = delete;
  ~stamp() {
    if (current_ledger != nullptr) current_ledger->release(key, tag);
  }
};

/// A tag for the calling process's n-th allocation (thread t of it): never 0.
inline std::uint64_t make_tag(std::uint32_t thread, std::uint32_t n) noexcept {
  return (std::uint64_t{static_cast<std::uint32_t>(::getpid())} << 32) |
         (std::uint64_t{thread & 0xFFU} << 24) | (n & 0xFFFFFFU);
}

} // namespace slabtest
