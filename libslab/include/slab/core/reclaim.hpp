// reclaim: gives back everything a dead context held, whatever instant it died at.
//
// Run by one reclaimer (the daemon's own context) for a record whose owner is known to
// be dead, while every other context keeps running. Three phases:
//
//  1. Resolve the intent. The record names the one shared step that may be half done;
//     wide_cell.hpp says how a CAS's outcome is decided after the fact. The outcome is
//     written into the record's own fields (a popped magazine into spare, a pushed one
//     out of the fields, carved or freed slots into the loaded magazine), so that the
//     fields alone then say exactly what the context held.
//  2. Undo a half-done alloc (the top of the loaded magazine published live but not yet
//     taken off the count: its key never reached the program) and validate every held
//     magazine: ids that do not exist, counts over K, garbage indices, live slots and
//     duplicates are dropped and reported, never followed.
//  3. Hand the magazines to the depot through the reclaimer's cache: whole ones (K or
//     0 slots) as they are, partial ones slot by slot into the reclaimer's own cache
//     (adopt), so that the FULL stack only ever holds whole magazines.
//
// Each phase only writes the dead record and the reclaimer's own state, in an order
// that a second run (a reclaimer that itself died and was replaced) repeats safely.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <slab/core/cache.hpp>
#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>

namespace slab::core {

struct reclaim_report {
  std::uint32_t magazines = 0;     ///< whole magazines handed to the depot
  std::uint32_t slots_adopted = 0; ///< slots moved one by one from partial magazines
  std::string resolved;            ///< what the intent said and how it was settled
  std::vector<std::string> problems;
};

/// Did context `who`'s CAS on cell c, which observed seq s, happen? (wide_cell.hpp)
template <region R>
bool transition_won(R& r, std::uint32_t who, cell_id c, std::uint64_t s) noexcept {
  const cell_value now = r.state().cell(c).load();
  if (now.seq <= s) return false;
  if (now.seq == s + 1 && now.winner == who) return true;
  return r.context(who).won[static_cast<std::uint32_t>(c)].load(std::memory_order_acquire) == s + 1;
}

namespace detail {

template <region R> class reclaimer {
public:
  reclaimer(R& r, std::uint32_t dead, cache<R>& by)
      : r_(r), rec_(r.context(dead)), dead_(dead), by_(by) {}

  reclaim_report run() SLAB_STEP_NOEXCEPT {
    resolve_intent();
    dedupe_fields();
    undo_half_alloc();
    std::atomic<std::uint32_t>* fields[3] = {&rec_.mag[0], &rec_.mag[1], &rec_.spare};
    for (auto* f : fields)
      validate(*f);
    for (auto* f : fields)
      hand_over(*f);
    return std::move(rep_);
  }

private:
  void problem(std::string s) {
    rep_.problems.push_back("context " + std::to_string(dead_) + ": " + std::move(s));
  }

  magazine* loaded() noexcept {
    const std::uint32_t m = rec_.mag[rec_.active.load(relaxed) & 1U].load(relaxed);
    return (m != no_magazine && r_.has_magazine(m)) ? &r_.mag(m) : nullptr;
  }
  bool holds(std::uint32_t m) const noexcept {
    return rec_.mag[0].load(relaxed) == m || rec_.mag[1].load(relaxed) == m ||
           rec_.spare.load(relaxed) == m;
  }
  void forget(std::uint32_t m) noexcept {
    for (auto* f : {&rec_.mag[0], &rec_.mag[1], &rec_.spare}) {
      if (f->load(relaxed) == m) f->store(no_magazine, relaxed);
    }
  }
  // Pushes idx into the loaded magazine unless it is already its top entry.
  void ensure_cached(std::uint32_t idx) {
    magazine* l = loaded();
    if (l == nullptr) return problem("no loaded magazine to return slot " + std::to_string(idx));
    const std::uint32_t c = l->count.load(relaxed);
    if (c > 0 && c <= magazine_slots && l->slots[c - 1].load(relaxed) == idx) return;
    if (c >= magazine_slots)
      return problem("loaded magazine full; slot " + std::to_string(idx) + " left out");
    l->slots[c].store(idx, relaxed);
    l->count.store(c + 1, relaxed);
  }

  void resolve_intent() {
    const auto op = static_cast<intent_op>(rec_.intent.op.load(std::memory_order_acquire));
    const std::uint32_t arg = rec_.intent.arg.load(relaxed);
    const std::uint64_t seq = rec_.intent.seq.load(relaxed);
    switch (op) {
    case intent_op::none: rep_.resolved = "no step under way"; break;
    case intent_op::pop_full:
    case intent_op::pop_empty: {
      const cell_id c = op == intent_op::pop_full ? cell_id::full : cell_id::empty;
      const bool won = transition_won(r_, dead_, c, seq);
      rep_.resolved =
          std::string("pop of magazine ") + std::to_string(arg) + (won ? ": won" : ": lost");
      if (won && !holds(arg)) {
        if (rec_.spare.load(relaxed) == no_magazine)
          rec_.spare.store(arg, relaxed);
        else
          problem("won a pop but its spare field is taken");
      }
      break;
    }
    case intent_op::push_full:
    case intent_op::push_empty: {
      const cell_id c = op == intent_op::push_full ? cell_id::full : cell_id::empty;
      const bool won = transition_won(r_, dead_, c, seq);
      rep_.resolved =
          std::string("push of magazine ") + std::to_string(arg) + (won ? ": won" : ": lost");
      if (won) forget(arg);
      break;
    }
    case intent_op::carve: {
      const bool won = transition_won(r_, dead_, cell_id::fresh, seq);
      rep_.resolved = std::string("carve at ") + std::to_string(arg) + (won ? ": won" : ": lost");
      magazine* l = loaded();
      if (won && l != nullptr && l->count.load(relaxed) == 0) {
        for (std::uint32_t i = 0; i < magazine_slots; ++i)
          l->slots[i].store(arg + i, relaxed);
        l->count.store(magazine_slots, relaxed);
      }
      break;
    }
    case intent_op::free: {
      const auto g = static_cast<std::uint32_t>(seq);
      const bool won =
          r_.has_slot(arg) && r_.header(arg).load() == shared_header::value{g + 1, dead_};
      rep_.resolved =
          std::string("free of slot ") + std::to_string(arg) + (won ? ": done" : ": not done");
      if (won) ensure_cached(arg);
      break;
    }
    case intent_op::adopt: {
      // The dead context was itself a reclaimer, moving `arg` out of magazine `seq`.
      rep_.resolved = std::string("adopt of slot ") + std::to_string(arg);
      magazine* l = loaded();
      const auto src_id = static_cast<std::uint32_t>(seq);
      if (l == nullptr || !r_.has_magazine(src_id)) break;
      magazine& src = r_.mag(src_id);
      const std::uint32_t lc = l->count.load(relaxed), sc = src.count.load(relaxed);
      const bool copied = lc > 0 && lc <= magazine_slots && l->slots[lc - 1].load(relaxed) == arg;
      if (copied && sc > 0 && sc <= magazine_slots && src.slots[sc - 1].load(relaxed) == arg) {
        src.count.store(sc - 1, relaxed);
      }
      break;
    }
    default: problem("unknown intent " + std::to_string(static_cast<std::uint32_t>(op)));
    }
    rec_.intent.op.store(0, std::memory_order_release);
  }

  // An exchange copies the spare into the loaded field before clearing the spare: a
  // death in between leaves one magazine in two fields. Keep it once.
  void dedupe_fields() noexcept {
    const std::uint32_t s = rec_.spare.load(relaxed);
    if (s != no_magazine && (rec_.mag[0].load(relaxed) == s || rec_.mag[1].load(relaxed) == s)) {
      rec_.spare.store(no_magazine, relaxed);
    }
    if (rec_.mag[0].load(relaxed) == rec_.mag[1].load(relaxed))
      rec_.mag[1].store(no_magazine, relaxed);
  }

  void undo_half_alloc() {
    magazine* l = loaded();
    if (l == nullptr) return;
    const std::uint32_t c = l->count.load(relaxed);
    if (c == 0 || c > magazine_slots) return;
    const std::uint32_t idx = l->slots[c - 1].load(relaxed);
    if (!r_.has_slot(idx)) return;
    shared_header& h = r_.header(idx);
    const shared_header::value v = h.load();
    if (gen_live(v.gen) && v.aux == dead_) h.store({v.gen + 1, dead_});
  }

  // Drops every entry that cannot be a free slot of this magazine.
  void validate(std::atomic<std::uint32_t>& field) {
    const std::uint32_t m = field.load(relaxed);
    if (m == no_magazine) return;
    if (!r_.has_magazine(m)) {
      problem("magazine id " + std::to_string(m) + " does not exist; dropped");
      field.store(no_magazine, relaxed);
      return;
    }
    magazine& mag = r_.mag(m);
    std::uint32_t n = mag.count.load(relaxed);
    if (n > magazine_slots) {
      problem("magazine " + std::to_string(m) + " count " + std::to_string(n) + " > K; emptied");
      n = 0;
    }
    std::uint32_t kept = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t idx = mag.slots[i].load(relaxed);
      if (!r_.has_slot(idx) || gen_live(r_.header(idx).gen()) || seen_before(idx)) {
        problem("magazine " + std::to_string(m) + " entry " + std::to_string(idx) +
                " is not a free slot; dropped");
        continue;
      }
      mag.slots[kept++].store(idx, relaxed);
    }
    mag.count.store(kept, relaxed);
  }
  bool seen_before(std::uint32_t idx) {
    for (std::uint32_t s : seen_) {
      if (s == idx) return true;
    }
    seen_.push_back(idx);
    return false;
  }

  void hand_over(std::atomic<std::uint32_t>& field) SLAB_STEP_NOEXCEPT {
    const std::uint32_t m = field.load(relaxed);
    if (m == no_magazine) return;
    magazine& mag = r_.mag(m);
    std::uint32_t n = mag.count.load(relaxed);
    if (n != 0 && n != magazine_slots) {
      for (; n > 0; --n) {
        by_.adopt(mag.slots[n - 1].load(relaxed), m);
        ++rep_.slots_adopted;
      }
    }
    by_.give_magazine(m, field);
    ++rep_.magazines;
  }

  R& r_;
  context_record& rec_;
  std::uint32_t dead_;
  cache<R>& by_;
  reclaim_report rep_;
  std::vector<std::uint32_t> seen_;
};

} // namespace detail

/// Reclaims dead context `dead` through the reclaimer's cache `by`, then frees the
/// record for reuse. The caller guarantees the owner is dead.
template <region R>
reclaim_report reclaim(R& r, std::uint32_t dead, cache<R>& by) SLAB_STEP_NOEXCEPT {
  context_record& rec = r.context(dead);
  rec.state.store(static_cast<std::uint32_t>(context_state::dead), std::memory_order_release);
  reclaim_report rep = detail::reclaimer<R>(r, dead, by).run();
  rec.active.store(0, relaxed);
  rec.state.store(static_cast<std::uint32_t>(context_state::free), std::memory_order_release);
  return rep;
}

} // namespace slab::core
