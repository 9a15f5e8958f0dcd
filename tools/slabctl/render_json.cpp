// slabctl status --json: docs/slabctl-status.schema.json (snapshot.hpp).
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "snapshot.hpp"

namespace slabctl {
namespace {

using nlohmann::json;

json tier_json(const tier_snapshot& t) {
  json nodes = json::array();
  for (const int n : t.nodes_now)
    nodes.push_back(n);
  return {{"index", t.index},
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
          {"prepare_ns", t.prepare_ns}};
}

json context_json(const context_snapshot& c) {
  return {{"id", c.id},
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
          {"anomalies", c.anomalies}};
}

json growth_json(const pool_snapshot& p) {
  json events = json::array();
  for (std::size_t t = 1; t < p.tiers.size(); ++t) {
    events.push_back({{"tier", t},
                      {"slots", p.tiers[t].slots},
                      {"created_unix_ns", p.tiers[t].created_unix_ns},
                      {"prepare_ns", p.tiers[t].prepare_ns}});
  }
  return {
      {"events", events},
      {"failures", p.growth_failures},
      {"last_failure", p.last_growth_failure.empty() ? json(nullptr) : json(p.last_growth_failure)},
      {"last_failure_unix_ns", p.last_growth_failure_unix_ns}};
}

json pool_json(const pool_snapshot& p) {
  json tiers = json::array();
  for (const tier_snapshot& t : p.tiers)
    tiers.push_back(tier_json(t));
  json ctxs = json::array();
  for (const context_snapshot& c : p.contexts)
    ctxs.push_back(context_json(c));
  return {
      {"name", p.name},
      {"slot_size", p.slot_size},
      {"stride", p.stride},
      {"align", p.align},
      {"capacity", p.capacity},
      {"max_capacity", p.max_capacity},
      {"live", p.live},
      {"free", {{"depot", p.free_depot}, {"caches", p.free_cached}, {"never_used", p.never_used}}},
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
      {"growth", growth_json(p)},
      {"warnings", p.warnings}};
}

} // namespace

json status_json(const daemon_snapshot& d, const std::vector<pool_snapshot>& pools) {
  json root;
  root["schema"] = "slabctl-status/1";
  root["taken_unix_ns"] = d.taken_unix_ns;
  root["daemon"] = {{"socket", d.socket},
                    {"pid", d.pid},
                    {"version", d.version},
                    {"started_unix_ns", d.started_unix_ns}};
  json ps = json::array();
  for (const pool_snapshot& p : pools)
    ps.push_back(pool_json(p));
  root["pools"] = ps;
  return root;
}

} // namespace slabctl
