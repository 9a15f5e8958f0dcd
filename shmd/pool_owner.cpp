#include "pool_owner.hpp"

#include <bit>
#include <chrono>
#include <cstdio>
#include <string>

#include <slab/core/handover.hpp>
#include <slab/core/reclaim.hpp>
#include <slab/error.hpp>
#include <slab/platform/process.hpp>

#include "log.hpp"
#include "pool_detail.hpp"

namespace shmd {
namespace pool_detail {

namespace platform = slab::platform;
using slab::errc;

errc errc_of(platform::sys_cause c) {
  switch (c) {
  case platform::sys_cause::hugepages: return errc::hugepages;
  case platform::sys_cause::mlock: return errc::mlock;
  case platform::sys_cause::numa: return errc::numa;
  case platform::sys_cause::memory: return errc::out_of_memory;
  case platform::sys_cause::invalid_argument: return errc::invalid_argument;
  case platform::sys_cause::other: break;
  }
  return errc::system;
}

std::string remedy(const platform::sys_error& e, slab::mapped::pool_map* m, unsigned t) {
  const std::string tier = "tier " + std::to_string(t);
  switch (e.cause) {
  case platform::sys_cause::hugepages: {
    const std::size_t hp = platform::huge_page_size();
    if (m == nullptr || hp == 0) break;
    const std::uint64_t bytes = m->geometry().tier_slots(t) * m->geometry().stride;
    const std::uint64_t pages = (bytes + hp - 1) / hp;
    return "; " + tier + " needs " + std::to_string(pages) + " free hugepage" +
           (pages == 1 ? "" : "s") + " of " + std::to_string(hp >> 20) +
           " MiB for its slots: reserve them with vm.nr_hugepages (e.g. the shipped "
           "60-shmd-hugepages.conf in /etc/sysctl.d, then `sysctl --system`), or set "
           "hugepages = \"prefer\" to fall back to normal pages";
  }
  case platform::sys_cause::mlock: {
    if (m == nullptr) break;
    const slab::proto::tier_info& ti = m->info().tiers[t];
    const std::uint64_t need = ti.meta_bytes + ti.data_bytes;
    if (t != 0) return "; " + tier + " needs " + std::to_string(need) + " bytes locked";
    return "; the pool needs " + std::to_string(need + m->info().control_bytes) +
           " bytes locked to start (its control segment and tier 0)";
  }
  case platform::sys_cause::numa:
    return "; set numa_node to a node that exists, or omit it for the local node";
  default: break;
  }
  return {};
}

namespace {
std::string mib(std::uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return b;
}
} // namespace

std::string describe_tier(const slab::proto::tier_info& ti) {
  std::string s =
      std::to_string(ti.slots) + " slots, " + mib(ti.data_bytes + ti.meta_bytes) + " on " +
      ((ti.flags & slab::proto::tier_huge) != 0 ? "hugepages" : "normal pages") + ", mlocked";
  if (ti.numa_node >= 0) {
    s +=
        ", NUMA node " + std::to_string(ti.numa_node) +
        ((ti.flags & slab::proto::tier_numa_ok) != 0 ? " (verified)" : " (placement NOT verified)");
  }
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.1f ms", static_cast<double>(ti.prepare_ns) / 1e6);
  return s + ", prepared in " + ms;
}

} // namespace pool_detail

namespace {

namespace core = slab::core;
namespace platform = slab::platform;
using pool_detail::errc_of;
using pool_detail::remedy;
using slab::errc;

/// The pool header's record of a config mode.
std::uint32_t header_mode(pool_mode m) {
  return m == pool_mode::arena ? slab::proto::mode_arena : slab::proto::mode_slab;
}

} // namespace

std::unique_ptr<pool_owner> pool_owner::open(const pool_config& cfg,
                                             const platform::segment_store& store) {
  std::unique_ptr<pool_owner> p(new pool_owner(cfg));
  std::vector<slab::mapped::tier_segments> tiers;
  auto adopted = slab::mapped::pool_map::adopt(cfg.name, store, tiers);
  if (adopted) {
    p->map_ = std::move(adopted.value());
    p->adopt(std::move(tiers));
    return p;
  }
  if (adopted.error().err != ENOENT) {
    throw slab::error(errc::config,
                      "pool '" + cfg.name +
                          "': cannot adopt its existing segments: " + adopted.error().what +
                          " (the data is left in place; `shmd --destroy` removes it)");
  }
  slab::mapped::pool_spec spec;
  spec.name = cfg.name;
  spec.slot_size = cfg.slot_size;
  spec.capacity = cfg.capacity;
  spec.max_capacity = cfg.max_capacity;
  spec.contexts = cfg.contexts + 1; // record 0 is the daemon's
  spec.hugepages = cfg.hugepages;
  spec.numa_node = cfg.numa_node;
  auto m = slab::mapped::pool_map::create(spec, store);
  if (!m) {
    throw slab::error(errc_of(m.error().cause),
                      "pool '" + cfg.name + "': " + m.error().what + remedy(m.error(), nullptr, 0));
  }
  p->map_ = std::move(m.value());
  p->map_->info().daemon_pid.store(slab::platform::own_pid());
  p->map_->info().mode = header_mode(cfg.mode); // before any client can attach
  core::context_record& own = p->map_->context(0);
  own.state.store(static_cast<std::uint32_t>(core::context_state::active));
  own.pid.store(slab::platform::own_pid());
  p->own_.emplace(*p->map_, 0);
  if (!p->own_->ready())
    throw slab::error(errc::system, "pool '" + cfg.name + "': no magazine for the daemon");
  try {
    p->add_tier(0);
    while (p->growing())
      p->next_chunk(); // all of tier 0 before the pool is served
  } catch (const slab::error&) {
    slab::mapped::pool_map::destroy(cfg.name, store); // a pool that never came up leaves no file
    throw;
  }
  return p;
}

void pool_owner::check_matches_config() const {
  const slab::proto::pool_header& h = map_->info();
  const slab::mapped::pool_spec spec{cfg_.name,         cfg_.slot_size,    cfg_.capacity,
                                     cfg_.max_capacity, cfg_.contexts + 1, cfg_.hugepages,
                                     cfg_.numa_node};
  const slab::proto::pool_geometry want =
      slab::mapped::plan_geometry(spec, platform::huge_page_size());
  std::string diff;
  if (h.slot_size != cfg_.slot_size) diff += " slot_size " + std::to_string(h.slot_size);
  if (h.contexts != want.contexts) diff += " contexts " + std::to_string(h.contexts - 1);
  if (h.max_slots != want.max_slots) diff += " max_capacity " + std::to_string(h.max_slots);
  if (h.base_log2 != want.geo.base_log2())
    diff += " capacity " + std::to_string(1ULL << h.base_log2);
  if (h.mode != header_mode(cfg_.mode))
    diff += h.mode == slab::proto::mode_arena ? " mode \"arena\"" : " mode \"slab\"";
  if (!diff.empty()) {
    throw slab::error(errc::config, "pool '" + cfg_.name +
                                        "': its existing segments were made with" + diff +
                                        ", which the config no longer says; restore the config, "
                                        "or remove the pool and its data with `shmd --destroy`");
  }
}

// A previous daemon left this pool: settle what it had under way, take its record over,
// and sort the records of its clients into the dead (reclaimed now) and the living
// (watched until they exit).
void pool_owner::adopt(std::vector<slab::mapped::tier_segments> tiers) {
  check_matches_config();
  slab::mapped::pool_map& m = *map_;
  tiers_ = std::move(tiers);
  const unsigned published = m.info().tiers_published.load();
  if (published == 0)
    throw slab::error(errc::config, "pool '" + cfg_.name + "': adopted with no tier");
  core::context_record& old = m.context(0);
  // The old daemon may have died offering a chunk of the last tier: prepared (and maybe
  // its magazines donated) but its slots not offered yet.
  const slab::proto::tier_info& ti = m.info().tiers[published - 1];
  const std::uint64_t ready = ready_slots();
  std::uint64_t offered = ready;
  if (ready < ti.first_slot + ti.slots) {
    const std::uint64_t from = std::max(ready, ti.first_slot);
    const auto first_mag =
        static_cast<std::uint32_t>(m.geometry().extra_magazines + from / core::magazine_slots);
    if (old.intent.op.load() == static_cast<std::uint32_t>(core::intent_op::push_empty) &&
        old.intent.arg.load() == first_mag) {
      if (core::transition_won(m, 0, core::cell_id::empty, old.intent.seq.load()))
        offered = m.chunk_end(from); // donated: only ready_slots was left to store
      old.intent.op.store(0);        // settled here, not by reclaim
    }
  }
  const std::uint32_t tmp = reclaim_old_daemon_records();
  old.state.store(static_cast<std::uint32_t>(core::context_state::active));
  old.pid.store(slab::platform::own_pid());
  own_.emplace(m, 0);
  reclaim_record(tmp, *own_);
  if (offered != ready) {
    if (platform::status s = m.take_over(offered); !s) {
      throw slab::error(errc_of(s.error().cause),
                        "pool '" + cfg_.name + "': taking over its last chunk: " + s.error().what);
    }
  }
  // Exactly the magazines of what is offered are in the depot or in contexts (the old
  // daemon may have counted a chunk's before it died pushing them).
  m.state().magazines.store(
      static_cast<std::uint32_t>(m.geometry().extra_magazines + offered / core::magazine_slots),
      std::memory_order_release);
  m.state().ready_slots.store(offered, std::memory_order_release);
  // The rest of an unfinished tier is prepared and offered by the worker (maybe_grow).
  m.info().daemon_pid.store(slab::platform::own_pid());
  const unsigned dead = sort_client_records();
  log_notice("pool '" + cfg_.name + "': adopted from its segments: " + std::to_string(published) +
             " tier(s), " + std::to_string(live_estimate()) + " slots live, " +
             std::to_string(orphans_.size()) + " context(s) of running processes kept, " +
             std::to_string(dead) + " of dead ones reclaimed");
}

std::uint32_t pool_owner::reclaim_old_daemon_records() {
  // The old daemon's records: record 0 and the helpers of earlier adoptions that died
  // with it. A record left mid-reclaim (dead) is reclaimed after its reclaimer, which
  // finishes the step it had under way first: a helper only ever reclaims record 0 (then
  // record 0 is dead and the helper active), and record 0 only its own helper (the
  // other way round).
  std::vector<std::uint32_t> helpers_active, helpers_dead;
  for (std::uint32_t c = 1; c < map_->context_count(); ++c) {
    const core::context_record& rec = map_->context(c);
    if (rec.role.load() != static_cast<std::uint32_t>(core::context_role::daemon_helper)) continue;
    const auto st = static_cast<core::context_state>(rec.state.load());
    if (st == core::context_state::active) helpers_active.push_back(c);
    if (st == core::context_state::dead) helpers_dead.push_back(c);
  }
  // Reclaim them through a temporary record; the caller then owns record 0 again.
  const std::optional<std::uint32_t> tmp =
      attach_context(slab::platform::own_pid(), core::context_role::daemon_helper);
  if (!tmp)
    throw slab::error(errc::exhausted,
                      "pool '" + cfg_.name + "': no free context record to adopt it");
  {
    core::cache<slab::mapped::pool_map> helper(*map_, *tmp);
    if (!helper.ready())
      throw slab::error(errc::system, "pool '" + cfg_.name + "': no magazine to adopt it");
    for (const std::uint32_t c : helpers_active)
      reclaim_record(c, helper);
    reclaim_record(0, helper);
    for (const std::uint32_t c : helpers_dead)
      reclaim_record(c, helper);
  }
  return *tmp;
}

// The records of the old daemon's clients: those of running processes are kept (orphans,
// watched until they exit), the others reclaimed now. Returns how many were reclaimed.
unsigned pool_owner::sort_client_records() {
  slab::mapped::pool_map& m = *map_;
  unsigned dead = 0;
  for (std::uint32_t c = 1; c < m.context_count(); ++c) {
    core::context_record& rec = m.context(c);
    const auto st = static_cast<core::context_state>(rec.state.load());
    if (st == core::context_state::quarantined) set_assigned(c, true);
    if (st != core::context_state::active && st != core::context_state::dead) continue;
    if (st == core::context_state::active && slab::platform::process_exists(rec.pid.load())) {
      orphans_.push_back({c, rec.pid.load()});
      set_assigned(c, true);
    } else {
      reclaim(c);
      ++dead;
    }
  }
  return dead;
}

void pool_owner::set_assigned(std::uint32_t ctx, bool assigned) {
  std::lock_guard<std::mutex> g(records_mu_);
  assigned_.resize(map_->context_count());
  assigned_[ctx] = assigned;
}

std::optional<std::uint32_t> pool_owner::attach_context(std::uint32_t pid,
                                                        core::context_role role) {
  std::lock_guard<std::mutex> g(records_mu_);
  assigned_.resize(map_->context_count());
  for (std::uint32_t c = 1; c < map_->context_count(); ++c) {
    if (assigned_[c]) continue;
    core::context_record& rec = map_->context(c);
    auto expected = static_cast<std::uint32_t>(core::context_state::free);
    if (!rec.state.compare_exchange_strong(
            expected, static_cast<std::uint32_t>(core::context_state::active))) {
      continue;
    }
    rec.pid.store(pid, std::memory_order_relaxed);
    rec.role.store(static_cast<std::uint32_t>(role), std::memory_order_relaxed);
    rec.incarnation.fetch_add(1, std::memory_order_relaxed);
    assigned_[c] = true;
    return c;
  }
  return std::nullopt;
}

std::uint64_t pool_owner::ready_slots() noexcept {
  return map_->state().ready_slots.load(std::memory_order_acquire);
}

std::uint64_t pool_owner::live_estimate() noexcept { return map_->live_estimate(); }

void pool_owner::reclaim(std::uint32_t ctx) { reclaim_record(ctx, *own_); }

void pool_owner::reclaim_record(std::uint32_t ctx, core::cache<slab::mapped::pool_map>& by) {
  core::context_record& rec = map_->context(ctx);
  slab::proto::pool_header& h = map_->info();
  const std::uint32_t pid = rec.pid.load();
  const std::uint64_t allocs = rec.counters.allocs.exchange(0);
  const std::uint64_t frees = rec.counters.frees.exchange(0);
  const auto t0 = std::chrono::steady_clock::now();
  const core::reclaim_report rep = core::reclaim(*map_, ctx, by);
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  h.reclaims.fetch_add(1, std::memory_order_relaxed);
  set_assigned(ctx, rep.corrupt); // a quarantined record is never handed out again
  std::string msg = "pool '" + cfg_.name + "': reclaimed context " + std::to_string(ctx) +
                    " of pid " + std::to_string(pid) + ": " + std::to_string(rep.magazines) +
                    " magazines back to the depot, " + std::to_string(rep.slots_adopted) +
                    " slots moved one by one, " + std::to_string(rep.claims_released) +
                    " claimed slot(s) given back, in " + std::to_string(us) + " us; " +
                    rep.resolved;
  if (!rep.corrupt) {
    h.retired_allocs.fetch_add(allocs, std::memory_order_relaxed);
    h.retired_frees.fetch_add(frees, std::memory_order_relaxed);
    log_info(msg);
    for (const std::string& p : rep.problems)
      log_warning("pool '" + cfg_.name + "': " + p);
    return;
  }
  // Its counters are as untrustworthy as the rest of it: count the live slots instead.
  recount_live();
  log_error(msg + "; its record was corrupt: quarantined (never reused), " +
            std::to_string(rep.rescued) + " magazine(s) it held rescued by their stamps");
  for (const std::string& p : rep.problems)
    log_error("pool '" + cfg_.name + "': " + p);
}

void pool_owner::recount_live() {
  slab::mapped::pool_map& m = *map_;
  const std::uint64_t used = m.state().cell(core::cell_id::fresh).peek().value;
  std::uint64_t live = 0;
  for (std::uint64_t i = 0; i < used; ++i)
    live += core::gen_live(m.header(static_cast<std::uint32_t>(i)).gen()) ? 1U : 0U;
  // Modular: the estimate becomes the count (clients keep moving it meanwhile; it is an
  // estimate for growth and status, never for correctness).
  m.info().retired_allocs.fetch_add(live - m.live_estimate(), std::memory_order_relaxed);
}

std::string pool_names(const std::vector<std::unique_ptr<pool_owner>>& pools) {
  std::string s;
  for (const auto& p : pools)
    s += (s.empty() ? "" : ", ") + p->name();
  return s;
}

} // namespace shmd
