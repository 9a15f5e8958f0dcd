// slabctl metrics: the Prometheus text exposition format 0.0.4 (snapshot.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "snapshot.hpp"

namespace slabctl {
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

// One metric family of pools, tiers or contexts: its name, type, help and how to read
// its value from a snapshot.
template <class S> struct family {
  const char* name;
  const char* type;
  const char* help;
  double (*value)(const S&);
};

const family<pool_snapshot> per_pool[] = {
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

const family<tier_snapshot> per_tier[] = {
    {"slab_tier_slots", "gauge", "Slots of each tier.",
     [](const tier_snapshot& t) { return static_cast<double>(t.slots); }},
    {"slab_tier_live_slots", "gauge", "Live slots of each tier.",
     [](const tier_snapshot& t) { return static_cast<double>(t.live); }},
    {"slab_tier_prepare_seconds", "gauge",
     "How long creating, binding, prefaulting and locking the tier took.",
     [](const tier_snapshot& t) { return static_cast<double>(t.prepare_ns) / 1e9; }},
    {"slab_tier_hugepages", "gauge", "1 when the tier's data is on hugepages.",
     [](const tier_snapshot& t) { return t.huge ? 1.0 : 0.0; }},
    {"slab_tier_mlocked", "gauge", "1 when shmd locked the tier in memory.",
     [](const tier_snapshot& t) { return t.locked ? 1.0 : 0.0; }},
};

// Per context: series come and go with the contexts, as Prometheus expects.
const family<context_snapshot> per_context[] = {
    {"slab_context_cached_slots", "gauge", "Free slots in a context's magazines.",
     [](const context_snapshot& c) { return static_cast<double>(c.cached); }},
    {"slab_context_allocs_total", "counter", "Allocations by a context.",
     [](const context_snapshot& c) { return static_cast<double>(c.allocs); }},
    {"slab_context_frees_total", "counter", "Frees by a context.",
     [](const context_snapshot& c) { return static_cast<double>(c.frees); }},
    {"slab_context_refused_frees_total", "counter",
     "Frees a context refused (stale key, double free).",
     [](const context_snapshot& c) { return static_cast<double>(c.stale); }},
};

std::string pool_label(const pool_snapshot& p) { return "pool=\"" + label(p.name) + "\""; }

// Where the free slots are, and the contexts by state: one family each, several series
// per pool.
void pool_breakdowns(exposition& e, const std::vector<pool_snapshot>& pools) {
  e.family("slab_pool_free_slots", "gauge",
           "Free slots by where they are: depot, caches (contexts' magazines), never_used.");
  for (const pool_snapshot& p : pools) {
    const std::string l = pool_label(p) + ",where=";
    e.sample("slab_pool_free_slots", l + "\"depot\"", static_cast<double>(p.free_depot));
    e.sample("slab_pool_free_slots", l + "\"caches\"", static_cast<double>(p.free_cached));
    e.sample("slab_pool_free_slots", l + "\"never_used\"", static_cast<double>(p.never_used));
  }
  e.family("slab_pool_contexts", "gauge", "Context records by state.");
  for (const pool_snapshot& p : pools) {
    for (const char* st : {"active", "dead", "quarantined"}) {
      const auto n = std::count_if(p.contexts.begin(), p.contexts.end(),
                                   [&](const context_snapshot& c) { return c.state == st; });
      e.sample("slab_pool_contexts", pool_label(p) + ",state=\"" + st + "\"",
               static_cast<double>(n));
    }
  }
}

} // namespace

std::string metrics_text(const daemon_snapshot& d, const std::vector<pool_snapshot>& pools) {
  exposition e;
  e.family("slab_shmd_up", "gauge", "1 when slabctl reached shmd and read its pools.");
  e.sample("slab_shmd_up", "", 1);
  e.family("slab_shmd_info", "gauge", "shmd's version and pid (value 1).");
  e.sample("slab_shmd_info",
           "version=\"" + label(d.version) + "\",pid=\"" + std::to_string(d.pid) + "\"", 1);
  for (const family<pool_snapshot>& f : per_pool) {
    e.family(f.name, f.type, f.help);
    for (const pool_snapshot& p : pools)
      e.sample(f.name, pool_label(p), f.value(p));
  }
  pool_breakdowns(e, pools);
  for (const family<tier_snapshot>& f : per_tier) {
    e.family(f.name, f.type, f.help);
    for (const pool_snapshot& p : pools)
      for (const tier_snapshot& t : p.tiers)
        e.sample(f.name, pool_label(p) + ",tier=\"" + std::to_string(t.index) + "\"", f.value(t));
  }
  for (const family<context_snapshot>& f : per_context) {
    e.family(f.name, f.type, f.help);
    for (const pool_snapshot& p : pools)
      for (const context_snapshot& c : p.contexts)
        e.sample(f.name,
                 pool_label(p) + ",context=\"" + std::to_string(c.id) + "\",pid=\"" +
                     std::to_string(c.pid) + "\",process=\"" + label(c.process) + "\"",
                 f.value(c));
  }
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
