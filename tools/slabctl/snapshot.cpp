#include "snapshot.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

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

  // Tiers, and live slots by the headers (odd generation), tier by tier.
  std::string fallback_tiers;
  const unsigned published = std::min(h.tiers_published.load(), m.mapped_tiers());
  for (unsigned t = 0; t < published; ++t) {
    const proto::tier_info& ti = h.tiers[t];
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
    const std::uint64_t end = std::min(ti.first_slot + ti.slots, s.used);
    for (std::uint64_t i = ti.first_slot; i < end; ++i)
      ts.live += m.header(static_cast<std::uint32_t>(i)).gen(std::memory_order_relaxed) & 1U;
    s.live += ts.live;
    if (numa_check) check_nodes(m, ts);
    if (ts.fallback) fallback_tiers += (fallback_tiers.empty() ? "" : ", ") + std::to_string(t);
    if (!ts.locked) s.warnings.push_back("tier " + std::to_string(t) + " is not mlocked");
    if (ts.numa_node >= 0 && !ts.numa_verified) {
      s.warnings.push_back("tier " + std::to_string(t) + ": placement on NUMA node " +
                           std::to_string(ts.numa_node) + " was not verified by shmd");
    }
    if (ts.numa_node >= 0 && ts.nodes_known &&
        (ts.nodes_now.size() != 1 || ts.nodes_now[0] != ts.numa_node)) {
      s.warnings.push_back("tier " + std::to_string(t) + ": pages are not all on NUMA node " +
                           std::to_string(ts.numa_node) + " now");
    }
    s.tiers.push_back(std::move(ts));
  }
  if (!fallback_tiers.empty()) {
    s.warnings.insert(s.warnings.begin(),
                      "hugepage fallback: tier(s) " + fallback_tiers +
                          " on normal pages, as hugepages = \"prefer\" and none were available "
                          "(reserve them: vm.nr_hugepages)");
  }

  // Contexts: the records, and what shmd knows of their processes.
  std::map<std::uint32_t, proto::client_entry> known;
  for (const proto::client_entry& e : o.clients(s.name))
    known[e.context] = e;
  s.allocs = h.retired_allocs.load();
  s.frees = h.retired_frees.load();
  for (std::uint32_t c = 0; c < m.context_count(); ++c) {
    const core::context_record& r = m.context(c);
    const std::uint32_t st = r.state.load();
    const core::context_counters& k = r.counters;
    s.allocs += k.allocs.load(std::memory_order_relaxed);
    s.frees += k.frees.load(std::memory_order_relaxed);
    if (st == static_cast<std::uint32_t>(core::context_state::free)) continue;
    context_snapshot cs;
    cs.id = c;
    cs.state = state_name(st);
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
    if (cs.process.empty()) cs.process = slab::platform::process_name(cs.pid);
    cs.alive = cs.pid != 0 && platform::process_exists(cs.pid); // kill(0, 0) is our group
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
  s.never_used = s.capacity - s.used;
  const std::uint64_t accounted = s.live + s.free_cached;
  s.free_depot = s.used > accounted ? s.used - accounted : 0;
  if (s.growth_failures != 0) {
    s.warnings.push_back("growth failed " + std::to_string(s.growth_failures) +
                         " time(s) since shmd started; last: " + s.last_growth_failure);
  }
  return s;
}

std::string human_bytes(std::uint64_t b) {
  char buf[32];
  if (b >= (1ULL << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(b) / (1ULL << 30));
  } else if (b >= (1ULL << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1ULL << 20));
  } else if (b >= 1024) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " KiB", b / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " B", b);
  }
  return buf;
}

std::string local_time(std::uint64_t unix_ns) {
  const auto secs = static_cast<std::time_t>(unix_ns / 1000000000ULL);
  std::tm tm{};
  ::localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

namespace {

std::string pct(double v) {
  char b[16];
  std::snprintf(b, sizeof b, "%.1f%%", v * 100.0);
  return b;
}

std::string ms(std::uint64_t ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f ms", static_cast<double>(ns) / 1e6);
  return b;
}

std::string pages_of(const tier_snapshot& t) {
  std::string s =
      t.huge ? "huge " + human_bytes(t.page_size) : "normal " + human_bytes(t.page_size);
  return s;
}

std::string numa_of(const tier_snapshot& t) {
  std::string s;
  if (t.numa_node >= 0) {
    s = "node " + std::to_string(t.numa_node) + (t.numa_verified ? " verified" : " NOT verified");
  } else {
    s = "any";
  }
  if (t.nodes_known) {
    s += ", now on ";
    for (std::size_t i = 0; i < t.nodes_now.size(); ++i) {
      if (i != 0) s += ',';
      s += std::to_string(t.nodes_now[i]);
    }
    if (t.nodes_now.empty()) s += "-";
  }
  return s;
}

// A table whose columns are as wide as their widest cell: numbers (every cell below the
// header starts with a digit) right-aligned, text left-aligned.
std::string table(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<std::size_t> w;
  std::vector<bool> text;
  for (std::size_t n = 0; n < rows.size(); ++n) {
    const auto& r = rows[n];
    if (w.size() < r.size()) {
      w.resize(r.size(), 0);
      text.resize(r.size(), false);
    }
    for (std::size_t i = 0; i < r.size(); ++i) {
      w[i] = std::max(w[i], r[i].size());
      if (n > 0 && (r[i].empty() || r[i][0] < '0' || r[i][0] > '9')) text[i] = true;
    }
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line = indent;
    for (std::size_t i = 0; i < r.size(); ++i) {
      const std::string pad(w[i] - r[i].size(), ' ');
      line += text[i] ? r[i] + pad : pad + r[i];
      if (i + 1 < r.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line + "\n";
  }
  return out;
}

} // namespace

std::string status_text(const daemon_snapshot& d, const std::vector<pool_snapshot>& pools) {
  std::ostringstream o;
  o << "shmd " << d.version << ", pid " << d.pid << ", at " << d.socket;
  if (d.started_unix_ns != 0) o << ", up since " << local_time(d.started_unix_ns);
  o << "; " << pools.size() << " pool(s)\n";
  for (const pool_snapshot& p : pools) {
    o << "\npool '" << p.name << "': " << p.slot_size << "-byte slots (stride " << p.stride
      << "), hugepages = " << p.page_policy
      << (p.numa_node >= 0 ? ", NUMA node " + std::to_string(p.numa_node) : std::string()) << "\n";
    o << table(
        {{"capacity", "live", "free: depot", "caches", "never used", "occupancy", "max capacity"},
         {std::to_string(p.capacity), std::to_string(p.live), std::to_string(p.free_depot),
          std::to_string(p.free_cached), std::to_string(p.never_used), pct(p.occupancy()),
          std::to_string(p.max_capacity)}},
        "  ");
    o << "  counters: " << p.allocs << " allocs, " << p.frees << " frees, " << p.stale
      << " refused frees, " << p.anomalies << " anomalies; " << p.reclaims
      << " context(s) reclaimed\n";
    std::vector<std::vector<std::string>> tr{{"tier", "slots", "live", "occupancy", "memory",
                                              "pages", "mlocked", "NUMA", "created",
                                              "prepared in"}};
    for (const tier_snapshot& t : p.tiers) {
      tr.push_back(
          {std::to_string(t.index), std::to_string(t.slots), std::to_string(t.live),
           pct(t.slots == 0 ? 0.0 : static_cast<double>(t.live) / static_cast<double>(t.slots)),
           human_bytes(t.data_bytes + t.meta_bytes), pages_of(t), t.locked ? "yes" : "NO",
           numa_of(t), local_time(t.created_unix_ns), ms(t.prepare_ns)});
    }
    o << "  tiers: " << p.tiers.size() << "\n" << table(tr, "    ");
    std::vector<std::vector<std::string>> cr{
        {"context", "pid", "process", "state", "link", "alive", "cached", "allocs", "frees"}};
    for (const context_snapshot& c : p.contexts) {
      cr.push_back({std::to_string(c.id), std::to_string(c.pid),
                    c.process.empty() ? "?" : c.process, c.state, c.link, c.alive ? "yes" : "no",
                    std::to_string(c.cached) + "/" + std::to_string(2 * core::magazine_slots),
                    std::to_string(c.allocs), std::to_string(c.frees)});
    }
    o << "  contexts: " << p.contexts.size() << " of " << p.context_records << " records in use\n"
      << table(cr, "    ");
    o << "  growth: " << (p.tiers.empty() ? 0 : p.tiers.size() - 1) << " event(s)";
    for (std::size_t t = 1; t < p.tiers.size(); ++t) {
      o << (t == 1 ? ": " : "; ") << "tier " << t << " at "
        << local_time(p.tiers[t].created_unix_ns) << " (" << ms(p.tiers[t].prepare_ns) << ")";
    }
    o << "; " << p.growth_failures << " failure(s)\n";
    for (const std::string& w : p.warnings)
      o << "  warning: " << w << "\n";
  }
  return o.str();
}

nlohmann::json status_json(const daemon_snapshot& d, const std::vector<pool_snapshot>& pools) {
  using nlohmann::json;
  json root;
  root["schema"] = "slabctl-status/1";
  root["taken_unix_ns"] = d.taken_unix_ns;
  root["daemon"] = {{"socket", d.socket},
                    {"pid", d.pid},
                    {"version", d.version},
                    {"started_unix_ns", d.started_unix_ns}};
  json ps = json::array();
  for (const pool_snapshot& p : pools) {
    json tiers = json::array();
    for (const tier_snapshot& t : p.tiers) {
      json nodes = json::array();
      for (const int n : t.nodes_now)
        nodes.push_back(n);
      tiers.push_back({{"index", t.index},
                       {"first_slot", t.first_slot},
                       {"slots", t.slots},
                       {"live", t.live},
                       {"data_bytes", t.data_bytes},
                       {"meta_bytes", t.meta_bytes},
                       {"page_size", t.page_size},
                       {"hugepages", t.huge},
                       {"hugepage_fallback", t.fallback},
                       {"mlocked", t.locked},
                       {"numa",
                        {{"node", t.numa_node >= 0 ? json(t.numa_node) : json(nullptr)},
                         {"verified_by_shmd", t.numa_verified},
                         {"nodes_now", t.nodes_known ? nodes : json(nullptr)}}},
                       {"created_unix_ns", t.created_unix_ns},
                       {"prepare_ns", t.prepare_ns}});
    }
    json ctxs = json::array();
    for (const context_snapshot& c : p.contexts) {
      ctxs.push_back({{"id", c.id},
                      {"state", c.state},
                      {"pid", c.pid},
                      {"process", c.process},
                      {"link", c.link},
                      {"alive", c.alive},
                      {"incarnation", c.incarnation},
                      {"cached", c.cached},
                      {"allocs", c.allocs},
                      {"frees", c.frees},
                      {"depot_gets", c.depot_gets},
                      {"depot_puts", c.depot_puts},
                      {"carves", c.carves},
                      {"refused_frees", c.stale},
                      {"anomalies", c.anomalies}});
    }
    json events = json::array();
    for (std::size_t t = 1; t < p.tiers.size(); ++t) {
      events.push_back({{"tier", t},
                        {"slots", p.tiers[t].slots},
                        {"created_unix_ns", p.tiers[t].created_unix_ns},
                        {"prepare_ns", p.tiers[t].prepare_ns}});
    }
    ps.push_back(
        {{"name", p.name},
         {"slot_size", p.slot_size},
         {"stride", p.stride},
         {"align", p.align},
         {"capacity", p.capacity},
         {"max_capacity", p.max_capacity},
         {"live", p.live},
         {"free",
          {{"depot", p.free_depot}, {"caches", p.free_cached}, {"never_used", p.never_used}}},
         {"occupancy", p.occupancy()},
         {"hugepages", p.page_policy},
         {"numa_node", p.numa_node >= 0 ? json(p.numa_node) : json(nullptr)},
         {"created_unix_ns", p.created_unix_ns},
         {"counters",
          {{"allocs", p.allocs},
           {"frees", p.frees},
           {"refused_frees", p.stale},
           {"anomalies", p.anomalies},
           {"reclaims", p.reclaims}}},
         {"tiers", tiers},
         {"context_records", p.context_records},
         {"contexts", ctxs},
         {"growth",
          {{"events", events},
           {"failures", p.growth_failures},
           {"last_failure",
            p.last_growth_failure.empty() ? json(nullptr) : json(p.last_growth_failure)},
           {"last_failure_unix_ns", p.last_growth_failure_unix_ns}}},
         {"warnings", p.warnings}});
  }
  root["pools"] = ps;
  return root;
}

namespace {

// Label values escape backslash, double quote and newline (the exposition format).
std::string label(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class exposition {
public:
  // One metric family: HELP and TYPE once, then every sample.
  void family(const std::string& name, const char* type, const char* help) {
    o_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void sample(const std::string& name, const std::string& labels, double v) {
    o_ << name;
    if (!labels.empty()) o_ << "{" << labels << "}";
    char b[40];
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
      std::snprintf(b, sizeof b, "%.0f", v);
    } else {
      std::snprintf(b, sizeof b, "%.6g", v);
    }
    o_ << " " << b << "\n";
  }
  std::string str() const { return o_.str(); }

private:
  std::ostringstream o_;
};

} // namespace

std::string metrics_text(const daemon_snapshot& d, const std::vector<pool_snapshot>& pools) {
  exposition e;
  e.family("slab_shmd_up", "gauge", "1 when slabctl reached shmd and read its pools.");
  e.sample("slab_shmd_up", "", 1);
  e.family("slab_shmd_info", "gauge", "shmd's version and pid (value 1).");
  e.sample("slab_shmd_info",
           "version=\"" + label(d.version) + "\",pid=\"" + std::to_string(d.pid) + "\"", 1);
  struct pool_metric {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const pool_snapshot&);
  };
  const pool_metric per_pool[] = {
      {"slab_pool_capacity_slots", "gauge", "Slots in the pool's published tiers.",
       [](const pool_snapshot& p) { return static_cast<double>(p.capacity); }},
      {"slab_pool_max_capacity_slots", "gauge", "The ceiling growth may reach.",
       [](const pool_snapshot& p) { return static_cast<double>(p.max_capacity); }},
      {"slab_pool_live_slots", "gauge", "Slots holding a value (odd generation).",
       [](const pool_snapshot& p) { return static_cast<double>(p.live); }},
      {"slab_pool_occupancy_ratio", "gauge", "Live slots over capacity, 0 to 1.",
       [](const pool_snapshot& p) { return p.occupancy(); }},
      {"slab_pool_slot_size_bytes", "gauge", "Payload bytes per slot the config asked for.",
       [](const pool_snapshot& p) { return static_cast<double>(p.slot_size); }},
      {"slab_pool_tiers", "gauge", "Tiers published.",
       [](const pool_snapshot& p) { return static_cast<double>(p.tiers.size()); }},
      {"slab_pool_allocs_total", "counter", "Allocations since the pool was created.",
       [](const pool_snapshot& p) { return static_cast<double>(p.allocs); }},
      {"slab_pool_frees_total", "counter", "Frees since the pool was created.",
       [](const pool_snapshot& p) { return static_cast<double>(p.frees); }},
      {"slab_pool_growth_events_total", "counter", "Tiers added after the first.",
       [](const pool_snapshot& p) {
         return static_cast<double>(p.tiers.empty() ? 0 : p.tiers.size() - 1);
       }},
      {"slab_pool_growth_failures_total", "counter",
       "Attempts to add a tier that failed since shmd started.",
       [](const pool_snapshot& p) { return static_cast<double>(p.growth_failures); }},
      {"slab_pool_reclaims_total", "counter", "Contexts of dead or detached clients reclaimed.",
       [](const pool_snapshot& p) { return static_cast<double>(p.reclaims); }},
      {"slab_pool_hugepage_fallback", "gauge",
       "1 when a tier of a hugepages = \"prefer\" pool is on normal pages.",
       [](const pool_snapshot& p) {
         return std::any_of(p.tiers.begin(), p.tiers.end(),
                            [](const tier_snapshot& t) { return t.fallback; })
                    ? 1.0
                    : 0.0;
       }},
  };
  for (const pool_metric& m : per_pool) {
    e.family(m.name, m.type, m.help);
    for (const pool_snapshot& p : pools)
      e.sample(m.name, "pool=\"" + label(p.name) + "\"", m.value(p));
  }
  e.family("slab_pool_free_slots", "gauge",
           "Free slots by where they are: depot, caches (contexts' magazines), never_used.");
  for (const pool_snapshot& p : pools) {
    const std::string l = "pool=\"" + label(p.name) + "\",where=";
    e.sample("slab_pool_free_slots", l + "\"depot\"", static_cast<double>(p.free_depot));
    e.sample("slab_pool_free_slots", l + "\"caches\"", static_cast<double>(p.free_cached));
    e.sample("slab_pool_free_slots", l + "\"never_used\"", static_cast<double>(p.never_used));
  }
  e.family("slab_pool_contexts", "gauge", "Context records by state.");
  for (const pool_snapshot& p : pools) {
    for (const char* st : {"active", "dead", "quarantined"}) {
      const auto n = std::count_if(p.contexts.begin(), p.contexts.end(),
                                   [&](const context_snapshot& c) { return c.state == st; });
      e.sample("slab_pool_contexts", "pool=\"" + label(p.name) + "\",state=\"" + st + "\"",
               static_cast<double>(n));
    }
  }
  e.family("slab_tier_slots", "gauge", "Slots of each tier.");
  for (const pool_snapshot& p : pools)
    for (const tier_snapshot& t : p.tiers)
      e.sample("slab_tier_slots",
               "pool=\"" + label(p.name) + "\",tier=\"" + std::to_string(t.index) + "\"",
               static_cast<double>(t.slots));
  e.family("slab_tier_live_slots", "gauge", "Live slots of each tier.");
  for (const pool_snapshot& p : pools)
    for (const tier_snapshot& t : p.tiers)
      e.sample("slab_tier_live_slots",
               "pool=\"" + label(p.name) + "\",tier=\"" + std::to_string(t.index) + "\"",
               static_cast<double>(t.live));
  e.family("slab_tier_prepare_seconds", "gauge",
           "How long creating, binding, prefaulting and locking the tier took.");
  for (const pool_snapshot& p : pools)
    for (const tier_snapshot& t : p.tiers)
      e.sample("slab_tier_prepare_seconds",
               "pool=\"" + label(p.name) + "\",tier=\"" + std::to_string(t.index) + "\"",
               static_cast<double>(t.prepare_ns) / 1e9);
  e.family("slab_tier_hugepages", "gauge", "1 when the tier's data is on hugepages.");
  for (const pool_snapshot& p : pools)
    for (const tier_snapshot& t : p.tiers)
      e.sample("slab_tier_hugepages",
               "pool=\"" + label(p.name) + "\",tier=\"" + std::to_string(t.index) + "\"",
               t.huge ? 1 : 0);
  e.family("slab_tier_mlocked", "gauge", "1 when shmd locked the tier in memory.");
  for (const pool_snapshot& p : pools)
    for (const tier_snapshot& t : p.tiers)
      e.sample("slab_tier_mlocked",
               "pool=\"" + label(p.name) + "\",tier=\"" + std::to_string(t.index) + "\"",
               t.locked ? 1 : 0);
  // Per context: series come and go with the contexts, as Prometheus expects.
  const auto ctx_labels = [](const pool_snapshot& p, const context_snapshot& c) {
    return "pool=\"" + label(p.name) + "\",context=\"" + std::to_string(c.id) + "\",pid=\"" +
           std::to_string(c.pid) + "\",process=\"" + label(c.process) + "\"";
  };
  e.family("slab_context_cached_slots", "gauge", "Free slots in a context's magazines.");
  for (const pool_snapshot& p : pools)
    for (const context_snapshot& c : p.contexts)
      e.sample("slab_context_cached_slots", ctx_labels(p, c), c.cached);
  e.family("slab_context_allocs_total", "counter", "Allocations by a context.");
  for (const pool_snapshot& p : pools)
    for (const context_snapshot& c : p.contexts)
      e.sample("slab_context_allocs_total", ctx_labels(p, c), static_cast<double>(c.allocs));
  e.family("slab_context_frees_total", "counter", "Frees by a context.");
  for (const pool_snapshot& p : pools)
    for (const context_snapshot& c : p.contexts)
      e.sample("slab_context_frees_total", ctx_labels(p, c), static_cast<double>(c.frees));
  e.family("slab_context_refused_frees_total", "counter",
           "Frees a context refused (stale key, double free).");
  for (const pool_snapshot& p : pools)
    for (const context_snapshot& c : p.contexts)
      e.sample("slab_context_refused_frees_total", ctx_labels(p, c), static_cast<double>(c.stale));
  return e.str();
}

std::string metrics_down(const std::string& why) {
  exposition e;
  e.family("slab_shmd_up", "gauge", "1 when slabctl reached shmd and read its pools.");
  e.sample("slab_shmd_up", "", 0);
  std::string s = e.str();
  std::string one_line = why;
  std::replace(one_line.begin(), one_line.end(), '\n', ' ');
  return "# " + one_line + "\n" + s;
}

} // namespace slabctl
