// audit: the backstop. Rebuilds, from the slot headers, the depot stacks and every
// context record, whether each slot is live or free exactly once and each magazine is
// in exactly one place (and carries its holder's stamp). Run on a quiescent region (no context
// mid-step): after a storm in tests, after reclaim, and by slabctl audit.
//
// Every id read here may be garbage; walks are bounded by the magazine count, so a
// cycle or a corrupt link is reported, never followed forever.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/key.hpp>

namespace slab::core {

struct audit_report {
  std::uint64_t ready = 0;       ///< slots in published tiers
  std::uint64_t used = 0;        ///< slots below the fresh cursor (handed out at least once)
  std::uint64_t live = 0;        ///< odd generation
  std::uint64_t free_depot = 0;  ///< in FULL magazines
  std::uint64_t free_cached = 0; ///< in contexts' magazines
  std::uint64_t claimed = 0;     ///< claimed by a context, not written yet (cache::claim)
  std::uint64_t magazines = 0, magazines_full = 0, magazines_empty = 0, magazines_held = 0;
  std::vector<std::string> problems;
  [[nodiscard]] bool ok() const noexcept { return problems.empty(); }
};

namespace detail {

template <region R> class auditor {
public:
  explicit auditor(R& r) : r_(r) {}

  audit_report run() {
    pool_state& st = r_.state();
    rep_.ready = st.ready_slots.load(std::memory_order_acquire);
    rep_.used = st.cell(cell_id::fresh).peek().value; // peek: the region may be read-only
    rep_.magazines = r_.magazine_count();
    slot_seen_.assign(rep_.used, 0);
    mag_seen_.assign(rep_.magazines, 0);
    if (rep_.used > rep_.ready || rep_.used % magazine_slots != 0) {
      problem("fresh cursor " + std::to_string(rep_.used) + " past ready slots " +
              std::to_string(rep_.ready) + " or not a multiple of K");
      return rep_;
    }
    walk_stack(cell_id::full);
    walk_stack(cell_id::empty);
    for (std::uint32_t c = 0; c < r_.context_count(); ++c)
      audit_context(c);
    check_slots();
    for (std::uint64_t m = 0; m < rep_.magazines; ++m) {
      if (mag_seen_[m] == 0) problem("magazine " + std::to_string(m) + " is in no list (lost)");
    }
    return rep_;
  }

private:
  void problem(std::string s) { rep_.problems.push_back(std::move(s)); }

  // Claims magazine m for `where`; false if it does not exist or was seen already.
  bool claim_magazine(std::uint32_t m, const std::string& where) {
    if (!r_.has_magazine(m) || m >= rep_.magazines) {
      problem(where + ": magazine id " + std::to_string(m) + " does not exist");
      return false;
    }
    if (mag_seen_[m]++ != 0) {
      problem(where + ": magazine " + std::to_string(m) + " is in more than one place");
      return false;
    }
    return true;
  }

  void claim_contents(std::uint32_t m, const std::string& where, std::uint64_t& counter) {
    const magazine& mag = r_.mag(m);
    const std::uint32_t n = mag.count.load(std::memory_order_relaxed);
    if (n > magazine_slots) {
      problem(where + ": magazine " + std::to_string(m) + " count " + std::to_string(n) + " > K");
      return;
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t idx = mag.slots[i].load(std::memory_order_relaxed);
      if (idx >= rep_.used) {
        problem(where + ": slot " + std::to_string(idx) + " past the fresh cursor");
      } else if (slot_seen_[idx]++ != 0) {
        problem(where + ": slot " + std::to_string(idx) + " is free more than once");
      } else {
        ++counter;
      }
    }
  }

  // Quiescent, a magazine's owner stamp names its holder (shared_layout.hpp).
  void check_stamp(std::uint32_t m, std::uint32_t expected, const std::string& where) {
    const std::uint32_t st = r_.mag(m).owner.load(std::memory_order_relaxed);
    if (st != expected) {
      problem(where + ": magazine " + std::to_string(m) + " carries owner stamp " +
              std::to_string(st) + ", expected " + std::to_string(expected));
    }
  }

  void walk_stack(cell_id c) {
    const bool full = c == cell_id::full;
    const std::string where = full ? "FULL stack" : "EMPTY stack";
    std::uint32_t m = r_.state().cell(c).peek().value;
    for (std::uint64_t steps = 0; m != no_magazine; ++steps) {
      if (steps > rep_.magazines || !claim_magazine(m, where)) {
        if (steps > rep_.magazines) problem(where + ": longer than the magazine count (cycle)");
        return;
      }
      const std::uint32_t n = r_.mag(m).count.load(std::memory_order_relaxed);
      if (full && n != magazine_slots) {
        problem(where + ": magazine " + std::to_string(m) + " holds " + std::to_string(n) +
                " != K");
      }
      if (!full && n != 0) {
        problem(where + ": magazine " + std::to_string(m) + " is not empty");
      }
      claim_contents(m, where, rep_.free_depot);
      check_stamp(m, no_owner, where);
      ++(full ? rep_.magazines_full : rep_.magazines_empty);
      m = r_.mag(m).next.load(std::memory_order_relaxed);
    }
  }

  void audit_context(std::uint32_t c) {
    context_record& rec = r_.context(c);
    const auto state = static_cast<context_state>(rec.state.load(std::memory_order_acquire));
    if (state == context_state::free) return;
    const std::string where = "context " + std::to_string(c);
    if (rec.intent.op.load(std::memory_order_acquire) != 0) {
      problem(where + ": a shared step is unfinished (intent " +
              std::to_string(rec.intent.op.load()) + ")");
    }
    const std::uint32_t ms[3] = {rec.mag[0].load(), rec.mag[1].load(), rec.spare.load()};
    for (std::uint32_t m : ms) {
      if (m == no_magazine) continue;
      if (!claim_magazine(m, where)) continue;
      check_stamp(m, stamp_of(c), where);
      ++rep_.magazines_held;
      claim_contents(m, where, rep_.free_cached);
    }
  }

  // A slot out of every list, its header flagged claimed by a context whose record
  // names it in a claim entry (cache::claim): pending, not lost.
  bool claimed_by_a_record(std::uint32_t i) {
    const shared_header::value v = r_.header(i).load(std::memory_order_relaxed);
    if ((v.aux & claimed_flag) == 0) return false;
    const std::uint32_t c = v.aux & ~claimed_flag;
    if (c >= r_.context_count()) return false;
    for (const auto& e : r_.context(c).claims) {
      const key k = key::from_raw(e.load(std::memory_order_relaxed));
      if (k.index() == i && k.generation() == v.gen + 1) return true;
    }
    return false;
  }

  void check_slots() {
    for (std::uint64_t i = 0; i < rep_.used; ++i) {
      const std::uint32_t gen = r_.header(static_cast<std::uint32_t>(i)).gen();
      const bool live = (gen & 1U) != 0;
      if (live) ++rep_.live;
      if (live && slot_seen_[i] != 0) {
        problem("slot " + std::to_string(i) + " is live and in a free list");
      } else if (!live && slot_seen_[i] == 0) {
        if (claimed_by_a_record(static_cast<std::uint32_t>(i))) {
          ++rep_.claimed;
          continue;
        }
        problem("slot " + std::to_string(i) + " is free but in no list (lost)");
      }
    }
    for (std::uint64_t i = rep_.used; i < rep_.ready; ++i) {
      if (r_.header(static_cast<std::uint32_t>(i)).gen() != 0) {
        problem("slot " + std::to_string(i) + " past the fresh cursor has been used");
      }
    }
  }

  R& r_;
  audit_report rep_;
  std::vector<std::uint8_t> slot_seen_;
  std::vector<std::uint8_t> mag_seen_;
};

} // namespace detail

template <region R> audit_report audit(R& r) { return detail::auditor<R>(r).run(); }

} // namespace slab::core
