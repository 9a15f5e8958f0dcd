// What slabctl reads of a pool at one moment (snapshot.hpp): the read-only mapping,
// and what only shmd knows. The renderers are render_text.cpp (status), render_json.cpp
// (status --json) and render_metrics.cpp (metrics).
#include "snapshot.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <slab/platform/platform.hpp>
#include <slab/platform/process.hpp>

namespace slabctl {
namespace {

const char* policy_name(std::uint32_t p) {
  switch (static_cast<platform::page_policy>(p)) {
  case platform::page_policy::require: return "require";
  case platform::page_policy::prefer: return "prefer";
  case platform::page_policy::off: return "off";
  }
  return "unknown";
}

const char* state_name(std::uint32_t s) {
  switch (static_cast<core::context_state>(s)) {
  case core::context_state::free: return "free";
  case core::context_state::active: return "active";
  case core::context_state::dead: return "dead";
  case core::context_state::quarantined: return "quarantined";
  }
  return "unknown";
}

const char* link_name(std::uint32_t l) {
  switch (static_cast<proto::client_link>(l)) {
  case proto::client_link::connected: return "connected";
  case proto::client_link::exited_socket_closed: return "socket-closed";
  case proto::client_link::adopted: return "adopted";
  case proto::client_link::unknown: break;
  }
  return "unknown";
}

// Free slots in the magazines a record names (ids and counts checked: a record may hold
// garbage, which the audit reports; here it only must not be followed).
std::uint32_t cached_in(slab::mapped::pool_map& m, const core::context_record& r) {
  std::uint32_t n = 0;
  for (const std::uint32_t id : {r.mag[0].load(), r.mag[1].load(), r.spare.load()}) {
    if (id == core::no_magazine || id >= m.magazine_count() || !m.has_magazine(id)) continue;
    const std::uint32_t c = m.mag(id).count.load(std::memory_order_relaxed);
    n += c <= core::magazine_slots ? c : 0;
  }
  return n;
}

void check_nodes(slab::mapped::pool_map& m, tier_snapshot& t) {
  const std::size_t bytes = t.slots * m.geometry().stride;
  if (bytes == 0) return;
  const std::size_t page = t.page_size != 0 ? t.page_size : platform::normal_page_size();
  const std::size_t stride = std::max(page, bytes / 256 / page * page);
  auto where =
      platform::page_nodes(m.payload(static_cast<std::uint32_t>(t.first_slot)), bytes, stride);
  if (!where) return;
  std::set<int> seen;
  for (const int n : where.value())
    if (n >= 0) seen.insert(n);
  t.nodes_now.assign(seen.begin(), seen.end());
  t.nodes_known = true;
}

tier_snapshot tier_of(slab::mapped::pool_map& m, unsigned t, std::uint64_t used, bool numa_check) {
  const proto::tier_info& ti = m.info().tiers[t];
  tier_snapshot ts;
  ts.index = t;
  ts.first_slot = ti.first_slot;
  ts.slots = ti.slots;
  ts.data_bytes = ti.data_bytes;
  ts.meta_bytes = ti.meta_bytes;
  ts.page_size = ti.page_size;
  ts.huge = (ti.flags & proto::tier_huge) != 0;
  ts.meta_huge = (ti.flags & proto::tier_meta_huge) != 0;
  ts.locked = (ti.flags & proto::tier_locked) != 0;
  ts.fallback = (ti.flags & proto::tier_fallback) != 0;
  ts.numa_node = ti.numa_node;
  ts.numa_verified = (ti.flags & proto::tier_numa_ok) != 0;
  ts.created_unix_ns = ti.created_unix_ns;
  ts.prepare_ns = ti.prepare_ns;
  // Live slots by the headers (odd generation).
  const std::uint64_t end = std::min(ti.first_slot + ti.slots, used);
  for (std::uint64_t i = ti.first_slot; i < end; ++i)
    ts.live += m.header(static_cast<std::uint32_t>(i)).gen(std::memory_order_relaxed) & 1U;
  if (numa_check) check_nodes(m, ts);
  return ts;
}

void warn_about_tier(const tier_snapshot& ts, std::vector<std::string>& warnings) {
  const std::string t = std::to_string(ts.index);
  if (!ts.locked) warnings.push_back("tier " + t + " is not mlocked");
  if (ts.numa_node >= 0 && !ts.numa_verified) {
    warnings.push_back("tier " + t + ": placement on NUMA node " + std::to_string(ts.numa_node) +
                       " was not verified by shmd");
  }
  if (ts.numa_node >= 0 && ts.nodes_known &&
      (ts.nodes_now.size() != 1 || ts.nodes_now[0] != ts.numa_node)) {
    warnings.push_back("tier " + t + ": pages are not all on NUMA node " +
                       std::to_string(ts.numa_node) + " now");
  }
}

void add_tiers(pool_snapshot& s, slab::mapped::pool_map& m, bool numa_check) {
  std::string fallback_tiers;
  const unsigned published = std::min(m.info().tiers_published.load(), m.mapped_tiers());
  for (unsigned t = 0; t < published; ++t) {
    tier_snapshot ts = tier_of(m, t, s.used, numa_check);
    s.live += ts.live;
    if (ts.fallback) fallback_tiers += (fallback_tiers.empty() ? "" : ", ") + std::to_string(t);
    warn_about_tier(ts, s.warnings);
    s.tiers.push_back(std::move(ts));
  }
  if (!fallback_tiers.empty()) {
    s.warnings.insert(s.warnings.begin(),
                      "hugepage fallback: tier(s) " + fallback_tiers +
                          " on normal pages, as hugepages = \"prefer\" and none were available "
                          "(reserve them: vm.nr_hugepages)");
  }
}

context_snapshot context_of(slab::mapped::pool_map& m, std::uint32_t c,
                            const std::map<std::uint32_t, proto::client_entry>& known) {
  const core::context_record& r = m.context(c);
  const core::context_counters& k = r.counters;
  context_snapshot cs;
  cs.id = c;
  cs.state = state_name(r.state.load());
  cs.pid = r.pid.load();
  cs.incarnation = r.incarnation.load();
  cs.cached = cached_in(m, r);
  cs.allocs = k.allocs.load();
  cs.frees = k.frees.load();
  cs.depot_gets = k.depot_gets.load();
  cs.depot_puts = k.depot_puts.load();
  cs.carves = k.carves.load();
  cs.stale = k.stale.load();
  cs.anomalies = k.anomalies.load();
  if (c == 0) {
    cs.link = "daemon";
    cs.process = "shmd";
  } else if (auto it = known.find(c); it != known.end() && it->second.pid == cs.pid) {
    cs.link = link_name(it->second.link);
    cs.process = std::string(proto::get_text(it->second.comm));
  } else {
    cs.link = "unknown";
  }
  if (cs.process.empty()) cs.process = platform::process_name(cs.pid);
  cs.alive = cs.pid != 0 && platform::process_exists(cs.pid); // kill(0, 0) is our group
  return cs;
}

// Contexts: the records, and what shmd knows of their processes.
void add_contexts(pool_snapshot& s, observer& o, slab::mapped::pool_map& m) {
  std::map<std::uint32_t, proto::client_entry> known;
  for (const proto::client_entry& e : o.clients(s.name))
    known[e.context] = e;
  s.allocs = m.info().retired_allocs.load();
  s.frees = m.info().retired_frees.load();
  for (std::uint32_t c = 0; c < m.context_count(); ++c) {
    const core::context_record& r = m.context(c);
    s.allocs += r.counters.allocs.load(std::memory_order_relaxed);
    s.frees += r.counters.frees.load(std::memory_order_relaxed);
    if (r.state.load() == static_cast<std::uint32_t>(core::context_state::free)) continue;
    context_snapshot cs = context_of(m, c, known);
    s.free_cached += cs.cached;
    s.depot_gets += cs.depot_gets;
    s.depot_puts += cs.depot_puts;
    s.carves += cs.carves;
    s.stale += cs.stale;
    s.anomalies += cs.anomalies;
    if (cs.state == "quarantined") {
      s.warnings.push_back("context " + std::to_string(c) +
                           " is quarantined: shmd found its record corrupt and left it alone");
    }
    s.contexts.push_back(std::move(cs));
  }
}

} // namespace

std::uint64_t now_unix_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

daemon_snapshot take_daemon_snapshot(const observer& o) {
  daemon_snapshot d;
  d.socket = o.socket();
  d.pid = o.welcome().daemon_pid;
  d.version = std::string(proto::get_text(o.welcome().version));
  d.taken_unix_ns = now_unix_ns();
  return d;
}

pool_snapshot take_snapshot(observer& o, pool_watch& w, bool numa_check) {
  w.map_all();
  slab::mapped::pool_map& m = w.map();
  const proto::pool_header& h = m.info();
  pool_snapshot s;
  s.name = w.name();
  s.slot_size = h.slot_size;
  s.stride = h.stride;
  s.align = h.align;
  s.max_capacity = h.max_slots;
  s.page_policy = policy_name(h.page_policy);
  s.numa_node = h.numa_node;
  s.created_unix_ns = h.created_unix_ns;
  s.daemon_pid = h.daemon_pid.load();
  s.context_records = m.context_count();
  s.reclaims = h.reclaims.load();
  s.capacity = m.state().ready_slots.load(std::memory_order_acquire);
  s.used = std::min<std::uint64_t>(m.state().cell(core::cell_id::fresh).peek().value, s.capacity);
  s.growth_failures = w.daemon_info().growth_failures;
  s.last_growth_failure = std::string(proto::get_text(w.daemon_info().last_failure));
  s.last_growth_failure_unix_ns = w.daemon_info().last_failure_unix_ns;
  add_tiers(s, m, numa_check);
  add_contexts(s, o, m);
  s.never_used = s.capacity - s.used;
  const std::uint64_t accounted = s.live + s.free_cached;
  s.free_depot = s.used > accounted ? s.used - accounted : 0;
  if (s.growth_failures != 0) {
    s.warnings.push_back("growth failed " + std::to_string(s.growth_failures) +
                         " time(s) since shmd started; last: " + s.last_growth_failure);
  }
  return s;
}

} // namespace slabctl
