// slabctl's verbs that read whole pools: status, metrics, audit and top (cli.hpp).
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <slab/error.hpp>
#include <slab/observer.hpp>

#include "cli.hpp"
#include "snapshot.hpp"
#include "top.hpp"

namespace slabctl {
namespace {

// The pools named (each must exist: unknown ones end the run with exit 5), or all.
std::vector<std::unique_ptr<pool_watch>> watch(observer& obs,
                                               const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<pool_watch>> out;
  if (names.empty()) {
    for (std::uint32_t i = 0; i < obs.pool_count(); ++i)
      out.push_back(std::make_unique<pool_watch>(obs, "", i));
  }
  for (const std::string& n : names) {
    if (n.empty() || n.size() >= slab::proto::pool_name_max)
      throw failure(exit_code::unknown_pool, "slabctl: '" + n + "' is not a pool name");
    out.push_back(std::make_unique<pool_watch>(obs, n));
  }
  return out;
}

// A snapshot of each pool watched.
std::vector<pool_snapshot>
snapshots(observer& obs, std::vector<std::unique_ptr<pool_watch>>& watches, bool numa_check) {
  std::vector<pool_snapshot> pools;
  pools.reserve(watches.size());
  for (auto& w : watches)
    pools.push_back(take_snapshot(obs, *w, numa_check));
  return pools;
}

} // namespace

int cmd_status(const options& o) {
  observer obs(o.socket);
  auto watches = watch(obs, o.args);
  const std::vector<pool_snapshot> pools = snapshots(obs, watches, o.numa_check);
  daemon_snapshot d = take_daemon_snapshot(obs);
  if (!watches.empty()) d.started_unix_ns = watches.front()->daemon_info().daemon_started_unix_ns;
  if (o.json) {
    std::cout << status_json(d, pools).dump(2) << "\n";
  } else {
    std::cout << status_text(d, pools);
  }
  return 0;
}

int cmd_metrics(const options& o) {
  try {
    observer obs(o.socket);
    auto watches = watch(obs, o.args);
    const std::vector<pool_snapshot> pools = snapshots(obs, watches, false);
    std::cout << metrics_text(take_daemon_snapshot(obs), pools);
    return 0;
  } catch (const slab::error& e) {
    // Still a valid exposition, so that a textfile collector shows shmd as down.
    if (e.code() == slab::errc::no_daemon || e.code() == slab::errc::permission_denied)
      std::cout << metrics_down(std::string("slabctl: ") + e.what());
    throw;
  }
}

namespace {

using slab::observe::audit_outcome;
using slab::observe::verdict;

const char* verdict_name(verdict v) {
  switch (v) {
  case verdict::clean: return "clean";
  case verdict::violations: return "violations";
  case verdict::inconclusive: return "inconclusive";
  }
  return "?";
}

nlohmann::json audit_json(const std::string& pool, const audit_outcome& a) {
  const slab::core::audit_report& r = a.report;
  return {{"pool", pool},
          {"result", verdict_name(a.result)},
          {"passes", a.passes},
          {"quiet_passes", a.quiet_passes},
          {"took_ms", a.took.count()},
          {"ready", r.ready},
          {"used", r.used},
          {"live", r.live},
          {"free_depot", r.free_depot},
          {"free_cached", r.free_cached},
          {"magazines",
           {{"total", r.magazines},
            {"full", r.magazines_full},
            {"empty", r.magazines_empty},
            {"held", r.magazines_held}}},
          {"problems", a.problems()}};
}

void print_audit(const std::string& pool, const audit_outcome& a, double timeout_s) {
  const slab::core::audit_report& r = a.report;
  std::printf("pool '%s': %s (%u passes, %u quiet, %lld ms): %" PRIu64 " ready, %" PRIu64
              " used, %" PRIu64 " live, %" PRIu64 " free in the depot, %" PRIu64
              " free in caches; %" PRIu64 " magazines (%" PRIu64 " full, %" PRIu64
              " empty, %" PRIu64 " held)\n",
              pool.c_str(), verdict_name(a.result), a.passes, a.quiet_passes,
              static_cast<long long>(a.took.count()), r.ready, r.used, r.live, r.free_depot,
              r.free_cached, r.magazines, r.magazines_full, r.magazines_empty, r.magazines_held);
  if (a.result == verdict::inconclusive) {
    std::printf("  the pool never held still for a whole pass within %.1f s; what the last pass "
                "saw is not a verdict\n",
                timeout_s);
  }
  for (const std::string& p : a.problems())
    std::printf("  %s: %s\n", a.result == verdict::violations ? "violation" : "seen", p.c_str());
}

} // namespace

int cmd_audit(const options& o) {
  observer obs(o.socket);
  auto watches = watch(obs, o.args);
  slab::observe::audit_options ao;
  ao.timeout = std::chrono::milliseconds(static_cast<long>(o.timeout * 1000.0));
  nlohmann::json pools = nlohmann::json::array();
  bool any_violation = false, any_inconclusive = false;
  for (auto& w : watches) {
    const audit_outcome a = slab::observe::settled_audit(*w, ao);
    any_violation = any_violation || a.result == verdict::violations;
    any_inconclusive = any_inconclusive || a.result == verdict::inconclusive;
    if (o.json) {
      pools.push_back(audit_json(w->name(), a));
    } else {
      print_audit(w->name(), a, o.timeout);
    }
  }
  if (o.json) {
    const char* overall = any_violation      ? "violations"
                          : any_inconclusive ? "inconclusive"
                                             : "clean";
    std::cout << nlohmann::json{{"result", overall}, {"pools", pools}}.dump(2) << "\n";
  }
  if (any_violation) return static_cast<int>(exit_code::violations);
  if (any_inconclusive) return static_cast<int>(exit_code::inconclusive);
  return 0;
}

int run_verb(const options& o) {
  if (o.verb == "status") return cmd_status(o);
  if (o.verb == "metrics") return cmd_metrics(o);
  if (o.verb == "audit") return cmd_audit(o);
  if (o.verb == "inspect") return cmd_inspect(o);
  if (o.verb == "top") {
    if (!o.args.empty()) usage_error("top takes no arguments");
    { observer probe(o.socket); } // unreachable at the start: say so and stop
    return run_top(o.socket, std::chrono::milliseconds(static_cast<long>(o.interval * 1000)));
  }
  usage_error("unknown verb '" + o.verb + "'");
}

} // namespace slabctl
