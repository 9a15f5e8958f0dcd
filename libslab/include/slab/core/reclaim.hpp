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
  std::uint32_t magazines = 0;       ///< whole magazines handed to the depot
  std::uint32_t slots_adopted = 0;   ///< slots moved one by one from partial magazines
  std::uint32_t rescued = 0;         ///< magazines found by their stamp after the record lost them
  std::uint32_t claims_released = 0; ///< claimed, never written slots freed
  std::string resolved;              ///< what the intent said and how it was settled
  std::vector<std::string> problems;
  /// The record said something no death can leave behind (a scribbled or torn record):
  /// it is quarantined (never reused) instead of freed. What it named that another
  /// context or the depot holds was left alone; what it held was given back.
  bool corrupt = false;
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
  reclaimer(R& r, std::uint32_t dead, context_state prior, cache<R>& by)
      : r_(r), rec_(r.context(dead)), dead_(dead), prior_(prior), by_(by) {}

  reclaim_report run() SLAB_STEP_NOEXCEPT {
    check_active();
    resolve_intent();
    fault::point("reclaim.resolved");
    rec_.intent.op.store(0, std::memory_order_release);
    dedupe_fields();
    undo_half_alloc();
    std::atomic<std::uint32_t>* fields[3] = {&rec_.mag[0], &rec_.mag[1], &rec_.spare};
    for (auto* f : fields)
      validate(*f);
    for (auto* f : fields)
      hand_over(*f);
    if (rep_.corrupt) rescue();
    release_claims();
    return std::move(rep_);
  }

private:
  void problem(std::string s) {
    rep_.problems.push_back("context " + std::to_string(dead_) + ": " + std::move(s));
  }
  void corrupt(std::string s) {
    rep_.corrupt = true;
    problem(std::move(s));
  }

  magazine* loaded() noexcept {
    const std::uint32_t m = rec_.mag[rec_.active.load(relaxed) & 1U].load(relaxed);
    return (m != no_magazine && r_.has_magazine(m)) ? &r_.mag(m) : nullptr;
  }
  bool holds(std::uint32_t m) const noexcept {
    return rec_.mag[0].load(relaxed) == m || rec_.mag[1].load(relaxed) == m ||
           rec_.spare.load(relaxed) == m;
  }
  static bool holds(const context_record& rec, std::uint32_t m) noexcept {
    // spare first (acquire): an exchange copies it into a mag field before clearing it
    return rec.spare.load(std::memory_order_acquire) == m || rec.mag[0].load(relaxed) == m ||
           rec.mag[1].load(relaxed) == m;
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

  void check_active() {
    const std::uint32_t a = rec_.active.load(relaxed);
    if (a > 1) corrupt("active field " + std::to_string(a) + " is neither 0 nor 1");
  }

  // Is magazine m, named by the dead record, really the dead context's? Its stamp names
  // the context (shared_layout.hpp), except in two windows a death can leave open:
  //  - the record's own won pop, before the stamp: the stamp is still the depot's
  //    (none), or that of a pusher that died before clearing it;
  //  - a reclaimer that stamped a dead context's magazine as its own (give_magazine)
  //    and died before pushing it: the stamp names a reclaimer that does not hold it,
  //    has no won push of it pending, and is not running (or is `by_` itself, a
  //    restarted daemon's record).
  // Anything else is held by someone else, or sits in the depot.
  bool owned(std::uint32_t m, std::uint32_t won_pop) noexcept {
    const std::uint32_t st = r_.mag(m).owner.load(relaxed);
    if (st == stamp_of(dead_)) return true;
    if (m == won_pop) return won_pop_is_ours(m, st);
    if (st == no_owner) return false;
    return reclaimer_left_it(m, st - 1);
  }
  // A stamp naming context c, which does not hold m: a reclaimer that stamped a dead
  // context's magazine (give_magazine) and died before pushing it; not a running context
  // (but `by_`, a restarted daemon's record), and not one that pushed m since.
  bool reclaimer_left_it(std::uint32_t m, std::uint32_t c) const noexcept {
    if (c >= r_.context_count()) return false;
    const context_record& o = r_.context(c);
    if (holds(o, m)) return false;
    const auto cs = static_cast<context_state>(o.state.load(std::memory_order_acquire));
    if (cs == context_state::active && c != by_.id()) return false;
    return !won_push_of(c, m);
  }
  // The record's won pop of m, cut short before its stamp: the stamp is still the
  // depot's (none), or that of a pusher that has not cleared it yet (its won push of m),
  // or a dead reclaimer's. A forged won pop would name a magazine someone else has: m
  // must be in no depot stack and held by nobody, as a stable walk shows.
  bool won_pop_is_ours(std::uint32_t m, std::uint32_t st) noexcept {
    if (st != no_owner && !won_push_of(st - 1, m) && !reclaimer_left_it(m, st - 1)) return false;
    return nobody_else_has(m);
  }
  bool won_push_of(std::uint32_t c, std::uint32_t m) const noexcept {
    return won_step_of(c, m, intent_op::push_full, intent_op::push_empty);
  }
  // Another context's won pop of m, between its CAS and its stamp.
  bool won_pop_of(std::uint32_t c, std::uint32_t m) const noexcept {
    return won_step_of(c, m, intent_op::pop_full, intent_op::pop_empty);
  }
  // Context c's intent is `on_full` or `on_empty` of magazine m, and its CAS happened.
  bool won_step_of(std::uint32_t c, std::uint32_t m, intent_op on_full,
                   intent_op on_empty) const noexcept {
    if (c >= r_.context_count()) return false;
    const context_record& o = r_.context(c);
    const auto op = static_cast<intent_op>(o.intent.op.load(std::memory_order_acquire));
    if (op != on_full && op != on_empty) return false;
    const std::uint32_t arg = o.intent.arg.load(relaxed);
    const std::uint64_t seq = o.intent.seq.load(relaxed);
    if (arg != m || o.intent.op.load(std::memory_order_acquire) != static_cast<std::uint32_t>(op))
      return false; // the intent changed while it was read
    return transition_won(r_, c, op == on_full ? cell_id::full : cell_id::empty, seq);
  }
  // Does any other context hold m (in its fields, or in a won pop not yet recorded)?
  // A context whose won push gave m away no longer holds it, whatever its fields say.
  bool held_elsewhere(std::uint32_t m) const noexcept {
    for (std::uint32_t c = 0; c < r_.context_count(); ++c) {
      if (c == dead_ || won_push_of(c, m)) continue;
      if (holds(r_.context(c), m) || won_pop_of(c, m)) return true;
    }
    return false;
  }
  // m is in neither depot stack and no other context holds it, read while neither stack
  // moved (a magazine changes hands between contexts only through the stacks). False
  // when that cannot be shown (a depot that keeps moving, a corrupt link): then m is
  // left alone, which at worst leaks it, never hands it out twice.
  bool nobody_else_has(std::uint32_t m) const noexcept {
    const std::uint32_t n = r_.magazine_count();
    for (int attempt = 0; attempt < 64; ++attempt) {
      const cell_value f = r_.state().cell(cell_id::full).peek();
      const cell_value e = r_.state().cell(cell_id::empty).peek();
      bool found = false, ok = true;
      for (std::uint32_t x : {f.value, e.value}) {
        for (std::uint32_t steps = 0; ok && !found && x != no_magazine; ++steps) {
          ok = steps <= n && x < n && r_.has_magazine(x);
          found = ok && x == m;
          if (ok) x = r_.mag(x).next.load(relaxed);
        }
      }
      if (!found && ok) found = held_elsewhere(m);
      if (r_.state().cell(cell_id::full).peek().seq == f.seq &&
          r_.state().cell(cell_id::empty).peek().seq == e.seq) {
        return ok && !found;
      }
    }
    return false;
  }

  // Keeps in the record only magazines that are the dead context's. A magazine named
  // here that another context or the depot holds is dropped from the record, untouched.
  void verify_fields(std::uint32_t won_pop) {
    for (auto* f : {&rec_.spare, &rec_.mag[0], &rec_.mag[1]}) {
      const std::uint32_t m = f->load(relaxed);
      if (m == no_magazine) continue;
      if (!r_.has_magazine(m)) {
        corrupt("magazine id " + std::to_string(m) + " does not exist; dropped");
      } else if (!owned(m, won_pop)) {
        const std::uint32_t st = r_.mag(m).owner.load(relaxed);
        const std::string where =
            st == no_owner ? std::string("the depot") : "context " + std::to_string(st - 1);
        // A reclaimer that died after pushing it leaves it named here: it went to the
        // depot, and perhaps on to another context since.
        if (prior_ == context_state::dead) {
          problem("magazine " + std::to_string(m) + " was given back already (" + where +
                  " holds it now); forgotten");
        } else {
          corrupt("names magazine " + std::to_string(m) + ", which " + where +
                  " holds; left alone");
        }
      } else {
        continue;
      }
      f->store(no_magazine, relaxed);
    }
  }

  void resolve_intent() {
    const auto op = static_cast<intent_op>(rec_.intent.op.load(std::memory_order_acquire));
    const std::uint32_t arg = rec_.intent.arg.load(relaxed);
    const std::uint64_t seq = rec_.intent.seq.load(relaxed);
    std::uint32_t won_pop = no_magazine;
    // A won push: the magazine is the depot's (or its next owner's) now. Settled before
    // the record's fields are checked, so that they no longer name it.
    if (op == intent_op::push_full || op == intent_op::push_empty) {
      const cell_id c = op == intent_op::push_full ? cell_id::full : cell_id::empty;
      const bool won = transition_won(r_, dead_, c, seq);
      rep_.resolved =
          std::string("push of magazine ") + std::to_string(arg) + (won ? ": won" : ": lost");
      if (won) {
        forget(arg);
        if (r_.has_magazine(arg)) {
          std::uint32_t st = stamp_of(dead_);
          r_.mag(arg).owner.compare_exchange_strong(st, no_owner, relaxed);
        }
      }
    }
    if (op == intent_op::pop_full || op == intent_op::pop_empty) {
      const cell_id c = op == intent_op::pop_full ? cell_id::full : cell_id::empty;
      const bool won = transition_won(r_, dead_, c, seq) && r_.has_magazine(arg);
      rep_.resolved =
          std::string("pop of magazine ") + std::to_string(arg) + (won ? ": won" : ": lost");
      if (won) won_pop = arg;
    }
    verify_fields(won_pop);
    switch (op) {
    case intent_op::none: rep_.resolved = "no step under way"; break;
    case intent_op::push_full:
    case intent_op::push_empty: break;
    case intent_op::pop_full:
    case intent_op::pop_empty:
      if (won_pop != no_magazine && !holds(won_pop)) {
        if (!owned(won_pop, won_pop)) {
          corrupt("won pop of magazine " + std::to_string(won_pop) + " that is not its own");
        } else if (rec_.spare.load(relaxed) == no_magazine) {
          rec_.spare.store(won_pop, relaxed);
        } else {
          corrupt("won a pop but its spare field is taken");
        }
      }
      break;
    case intent_op::carve: {
      const bool won = transition_won(r_, dead_, cell_id::fresh, seq);
      rep_.resolved = std::string("carve at ") + std::to_string(arg) + (won ? ": won" : ": lost");
      magazine* l = loaded();
      if (won && l != nullptr && l->count.load(relaxed) == 0) {
        if (!never_used(arg)) {
          corrupt("won carve at " + std::to_string(arg) + " names used or invalid slots");
          break;
        }
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
      // The dead context was itself a reclaimer, moving `arg` out of magazine `seq` of a
      // context it was reclaiming (dead, its magazine stamped so): anything else is not
      // a reclaimer's step, and writing another context's magazine would corrupt it.
      rep_.resolved = std::string("adopt of slot ") + std::to_string(arg);
      magazine* l = loaded();
      const auto src_id = static_cast<std::uint32_t>(seq);
      if (l == nullptr || seq >= no_magazine || !r_.has_magazine(src_id)) break;
      magazine& src = r_.mag(src_id);
      const std::uint32_t owner = src.owner.load(relaxed);
      if (owner == no_owner || owner - 1 >= r_.context_count() ||
          static_cast<context_state>(r_.context(owner - 1).state.load()) == context_state::active) {
        corrupt("adopt intent names magazine " + std::to_string(src_id) +
                ", which no dead context holds; ignored");
        break;
      }
      const std::uint32_t lc = l->count.load(relaxed), sc = src.count.load(relaxed);
      const bool copied = lc > 0 && lc <= magazine_slots && l->slots[lc - 1].load(relaxed) == arg;
      if (copied && sc > 0 && sc <= magazine_slots && src.slots[sc - 1].load(relaxed) == arg) {
        src.count.store(sc - 1, relaxed);
      }
      break;
    }
    default: corrupt("unknown intent " + std::to_string(static_cast<std::uint32_t>(op)));
    }
  }

  // The K slots a won carve took: aligned, below the cursor, never used by anyone.
  bool never_used(std::uint32_t first) noexcept {
    if (first % magazine_slots != 0) return false;
    if (std::uint64_t{first} + magazine_slots > r_.state().cell(cell_id::fresh).peek().value)
      return false;
    for (std::uint32_t i = 0; i < magazine_slots; ++i) {
      // {0, 0}: not even claimed (a claim leaves the generation but names its context)
      if (!r_.has_slot(first + i) || r_.header(first + i).load() != shared_header::value{0, 0})
        return false;
    }
    return true;
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
    // A claim cut short the same way: the slot is still counted in the magazine.
    if (!gen_live(v.gen) && v.aux == (dead_ | claimed_flag)) h.store({v.gen, dead_});
  }

  // Drops every entry that cannot be a free slot of this magazine.
  void validate(std::atomic<std::uint32_t>& field) {
    const std::uint32_t m = field.load(relaxed);
    if (m == no_magazine) return;
    if (!r_.has_magazine(m)) {
      corrupt("magazine id " + std::to_string(m) + " does not exist; dropped");
      field.store(no_magazine, relaxed);
      return;
    }
    validate_contents(m);
  }
  void validate_contents(std::uint32_t m) {
    magazine& mag = r_.mag(m);
    std::uint32_t n = mag.count.load(relaxed);
    if (n > magazine_slots) {
      corrupt("magazine " + std::to_string(m) + " count " + std::to_string(n) + " > K; emptied");
      n = 0;
    }
    std::uint32_t kept = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t idx = mag.slots[i].load(relaxed);
      const bool exists = r_.has_slot(idx);
      const shared_header::value v = exists ? r_.header(idx).load() : shared_header::value{1, 0};
      // Its own claim cut short before the count moved (wherever a scribbled `active`
      // left it): the slot is still in this magazine, so it is free, not claimed.
      const bool half_claimed = !gen_live(v.gen) && v.aux == (dead_ | claimed_flag);
      if (!exists || gen_live(v.gen) || ((v.aux & claimed_flag) != 0 && !half_claimed) ||
          seen_before(idx)) {
        corrupt("magazine " + std::to_string(m) + " entry " + std::to_string(idx) +
                " is not a free slot; dropped");
        continue;
      }
      if (half_claimed) r_.header(idx).store({v.gen, dead_});
      mag.slots[kept++].store(idx, relaxed);
    }
    fault::point("reclaim.validated");
    mag.count.store(kept, relaxed);
  }
  bool seen(std::uint32_t idx) const noexcept {
    for (std::uint32_t s : seen_) {
      if (s == idx) return true;
    }
    return false;
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

  // Slots the dead context claimed and never wrote (cache::claim): their headers still
  // say so ({generation, dead | claimed_flag}). Put into the reclaimer's own cache under
  // a free intent of its own; then the entry is cleared (a second run finds the header
  // moved on and only clears it). A claim whose value was written is live: kept.
  void release_claims() SLAB_STEP_NOEXCEPT {
    for (auto& e : rec_.claims) {
      const std::uint64_t raw = e.load(relaxed);
      if (raw == 0) continue;
      const key k = key::from_raw(raw);
      const std::uint32_t idx = k.index();
      // (A slot a magazine of its held is free already, whatever the claim says.)
      if (gen_live(k.generation()) && !seen(idx) &&
          by_.return_claimed(idx, k.generation() - 1, dead_))
        ++rep_.claims_released;
      fault::point("reclaim.claim");
      e.store(0, relaxed);
    }
  }

  // The record was scribbled: magazines it held may no longer be named in it. Their
  // stamps still name it; take back those that nobody else holds now (not in the depot,
  // not in another record, not in another context's won pop).
  void rescue() SLAB_STEP_NOEXCEPT {
    for (std::uint32_t m = 0; m < r_.magazine_count(); ++m) {
      if (!r_.has_magazine(m) || r_.mag(m).owner.load(relaxed) != stamp_of(dead_)) continue;
      if (!nobody_else_has(m)) continue;
      // Still its: had another context taken it meanwhile, it would have stamped it.
      if (r_.mag(m).owner.load(std::memory_order_acquire) != stamp_of(dead_)) continue;
      validate_contents(m);
      rec_.spare.store(m, relaxed);
      hand_over(rec_.spare);
      ++rep_.rescued;
    }
    if (rep_.rescued != 0)
      problem(std::to_string(rep_.rescued) + " magazine(s) it no longer named were rescued");
  }

  R& r_;
  context_record& rec_;
  std::uint32_t dead_;
  context_state prior_;
  cache<R>& by_;
  reclaim_report rep_;
  std::vector<std::uint32_t> seen_;
};

} // namespace detail

/// Reclaims dead context `dead` through the reclaimer's cache `by`, then frees the
/// record for reuse, or quarantines it when it was corrupt. The caller guarantees the
/// owner is dead.
template <region R>
reclaim_report reclaim(R& r, std::uint32_t dead, cache<R>& by) SLAB_STEP_NOEXCEPT {
  context_record& rec = r.context(dead);
  const auto prior = static_cast<context_state>(rec.state.load(std::memory_order_acquire));
  rec.state.store(static_cast<std::uint32_t>(context_state::dead), std::memory_order_release);
  reclaim_report rep = detail::reclaimer<R>(r, dead, prior, by).run();
  rec.active.store(0, relaxed);
  const context_state next = rep.corrupt ? context_state::quarantined : context_state::free;
  rec.state.store(static_cast<std::uint32_t>(next), std::memory_order_release);
  return rep;
}

} // namespace slab::core
