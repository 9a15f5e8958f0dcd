// reclaim: gives back everything a dead context held, whatever instant it died at.
//
// Run by one reclaimer (the daemon's own context) for a record whose owner is known to
// be dead, while every other context keeps running. Three phases:
//
//  1. Resolve the intent (resolve.hpp): the one step that may be half done is finished
//     or undone into the record's own fields, and the fields are checked against the
//     magazines' stamps (ownership.hpp).
//  2. Undo a half-done alloc (the top of the loaded magazine published live but not yet
//     taken off the count: its key never reached the program) and validate every held
//     magazine: ids that do not exist, counts over K, garbage indices, live slots and
//     duplicates are dropped and reported, never followed.
//  3. Hand the magazines to the depot through the reclaimer's cache (handover.hpp):
//     whole ones (K or 0 slots) as they are, partial ones slot by slot into the
//     reclaimer's own cache (adopt), so that the FULL stack only ever holds whole
//     magazines. Then free what the context claimed and never wrote.
//
// Each phase only writes the dead record and the reclaimer's own state, in an order
// that a second run (a reclaimer that itself died and was replaced) repeats safely.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <slab/core/cache.hpp>
#include <slab/core/check.hpp>
#include <slab/core/dead_record.hpp>
#include <slab/core/fault.hpp>
#include <slab/core/handover.hpp>
#include <slab/core/intent.hpp>
#include <slab/core/ownership.hpp>
#include <slab/core/region.hpp>
#include <slab/core/resolve.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/key.hpp>

namespace slab::core {
namespace detail {

template <region R> class reclaimer {
public:
  reclaimer(R& r, std::uint32_t dead, context_state prior, cache<R>& by)
      : r_(r), d_(r, dead, prior), own_(r, dead, by.id()), by_(by), give_(by) {}

  reclaim_report run() SLAB_STEP_NOEXCEPT {
    check_active();
    intent_resolver<R>(d_, own_).run();
    fault::point("reclaim.resolved");
    publish(d_.rec().intent.op, std::uint32_t{0}); // the outcome is in the fields now
    dedupe_fields();
    undo_half_alloc();
    for (unsigned i : {0U, 1U, 2U})
      validate(*d_.fields(i));
    for (unsigned i : {0U, 1U, 2U})
      hand_over(*d_.fields(i));
    if (d_.report().corrupt) rescue();
    release_claims();
    return std::move(d_.report());
  }

private:
  void check_active() {
    const std::uint32_t a = observe(d_.rec().active);
    if (a > 1) d_.corrupt("active field " + std::to_string(a) + " is neither 0 nor 1");
  }

  // An exchange copies the spare into the loaded field before clearing the spare: a
  // death in between leaves one magazine in two fields. Keep it once.
  void dedupe_fields() noexcept {
    context_record& rec = d_.rec();
    const std::uint32_t s = observe(rec.spare);
    if (s != no_magazine && (observe(rec.mag[0]) == s || observe(rec.mag[1]) == s))
      publish(rec.spare, no_magazine);
    if (observe(rec.mag[0]) == observe(rec.mag[1])) publish(rec.mag[1], no_magazine);
  }

  void undo_half_alloc() {
    magazine* l = d_.loaded();
    if (l == nullptr) return;
    const std::uint32_t c = observe(l->count);
    if (c == 0 || c > magazine_slots) return;
    const std::uint32_t idx = observe(l->slots[c - 1]);
    if (!r_.has_slot(idx)) return;
    shared_header& h = r_.header(idx);
    const shared_header::value v = h.load();
    const std::uint32_t dead = d_.id();
    if (gen_live(v.gen) && v.aux == dead) h.store({v.gen + 1, dead});
    // A claim cut short the same way: the slot is still counted in the magazine.
    if (!gen_live(v.gen) && v.aux == (dead | claimed_flag)) h.store({v.gen, dead});
  }

  // Drops every entry that cannot be a free slot of this magazine.
  void validate(std::atomic<std::uint32_t>& field) {
    const std::uint32_t m = observe(field);
    if (m == no_magazine) return;
    if (!r_.has_magazine(m)) {
      d_.corrupt("magazine id " + std::to_string(m) + " does not exist; dropped");
      publish(field, no_magazine);
      return;
    }
    validate_contents(m);
  }
  void validate_contents(std::uint32_t m) {
    magazine& mag = r_.mag(m);
    std::uint32_t n = observe(mag.count);
    if (n > magazine_slots) {
      d_.corrupt("magazine " + std::to_string(m) + " count " + std::to_string(n) + " > K; emptied");
      n = 0;
    }
    std::uint32_t kept = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t idx = observe(mag.slots[i]);
      if (!free_entry(m, idx)) continue;
      publish(mag.slots[kept++], idx);
    }
    fault::point("reclaim.validated");
    publish(mag.count, kept); // after the entries kept below it
  }
  // Is idx, found in the dead context's magazine m, a free slot listed nowhere else?
  bool free_entry(std::uint32_t m, std::uint32_t idx) {
    const bool exists = r_.has_slot(idx);
    const shared_header::value v = exists ? r_.header(idx).load() : shared_header::value{1, 0};
    // Its own claim cut short before the count moved (wherever a scribbled `active`
    // left it): the slot is still in this magazine, so it is free, not claimed.
    const bool half_claimed = !gen_live(v.gen) && v.aux == (d_.id() | claimed_flag);
    if (!exists || gen_live(v.gen) || ((v.aux & claimed_flag) != 0 && !half_claimed) ||
        seen_before(idx)) {
      d_.corrupt("magazine " + std::to_string(m) + " entry " + std::to_string(idx) +
                 " is not a free slot; dropped");
      return false;
    }
    if (half_claimed) r_.header(idx).store({v.gen, d_.id()});
    return true;
  }
  bool seen(std::uint32_t idx) const noexcept {
    for (std::uint32_t s : seen_) {
      if (s == idx) return true;
    }
    return false;
  }
  bool seen_before(std::uint32_t idx) {
    if (seen(idx)) return true;
    seen_.push_back(idx);
    return false;
  }

  void hand_over(std::atomic<std::uint32_t>& field) SLAB_STEP_NOEXCEPT {
    const std::uint32_t m = observe(field);
    if (m == no_magazine) return;
    magazine& mag = r_.mag(m);
    std::uint32_t n = observe(mag.count);
    if (n != 0 && n != magazine_slots) {
      for (; n > 0; --n) {
        give_.adopt(observe(mag.slots[n - 1]), m);
        ++d_.report().slots_adopted;
      }
    }
    give_.give_magazine(m, field);
    ++d_.report().magazines;
  }

  // Slots the dead context claimed and never wrote (cache::claim): their headers still
  // say so ({generation, dead | claimed_flag}). Put into the reclaimer's own cache under
  // a free intent of its own; then the entry is cleared (a second run finds the header
  // moved on and only clears it). A claim whose value was written is live: kept.
  void release_claims() SLAB_STEP_NOEXCEPT {
    for (auto& e : d_.rec().claims) {
      const std::uint64_t raw = observe(e);
      if (raw == 0) continue;
      const key k = key::from_raw(raw);
      const std::uint32_t idx = k.index();
      // (A slot a magazine of its held is free already, whatever the claim says.)
      if (gen_live(k.generation()) && !seen(idx) &&
          by_.return_claimed(idx, k.generation() - 1, d_.id()))
        ++d_.report().claims_released;
      fault::point("reclaim.claim");
      publish(e, std::uint64_t{0});
    }
  }

  // The record was scribbled: magazines it held may no longer be named in it. Their
  // stamps still name it; take back those that nobody else holds now (not in the depot,
  // not in another record, not in another context's won pop).
  void rescue() SLAB_STEP_NOEXCEPT {
    reclaim_report& rep = d_.report();
    for (std::uint32_t m = 0; m < r_.magazine_count(); ++m) {
      if (!r_.has_magazine(m) || observe(r_.mag(m).owner) != stamp_of(d_.id())) continue;
      if (!own_.nobody_else_has(m)) continue;
      // Still its: had another context taken it meanwhile, it would have stamped it.
      if (observe(r_.mag(m).owner) != stamp_of(d_.id())) continue;
      validate_contents(m);
      publish(d_.rec().spare, m);
      hand_over(d_.rec().spare);
      ++rep.rescued;
    }
    if (rep.rescued != 0)
      d_.problem(std::to_string(rep.rescued) + " magazine(s) it no longer named were rescued");
  }

  R& r_;
  dead_record<R> d_;
  ownership<R> own_;
  cache<R>& by_;
  handover<R> give_;
  std::vector<std::uint32_t> seen_;
};

} // namespace detail

/// Reclaims dead context `dead` through the reclaimer's cache `by`, then frees the
/// record for reuse, or quarantines it when it was corrupt. The caller guarantees the
/// owner is dead.
template <region R>
reclaim_report reclaim(R& r, std::uint32_t dead, cache<R>& by) SLAB_STEP_NOEXCEPT {
  SLAB_ASSERT(dead != by.id(), "a context cannot reclaim itself");
  context_record& rec = r.context(dead);
  const auto prior = static_cast<context_state>(observe(rec.state));
  publish(rec.state, static_cast<std::uint32_t>(context_state::dead));
  reclaim_report rep = detail::reclaimer<R>(r, dead, prior, by).run();
  publish(rec.active, std::uint32_t{0});
  const context_state next = rep.corrupt ? context_state::quarantined : context_state::free;
  publish(rec.state, static_cast<std::uint32_t>(next));
  return rep;
}

} // namespace slab::core
