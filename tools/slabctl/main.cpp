// slabctl: the operator's view of shmd's pools. Read-only: it observes through read-only
// segment fds and never registers a context. Verbs, options and exit codes:
// docs/slabctl.md (and `slabctl --help`).
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <slab/client.hpp>
#include <slab/core/tier.hpp>
#include <slab/key.hpp>

#include "exit_codes.hpp"
#include "shmd/config.hpp"
#include "snapshot.hpp"
#include "top.hpp"

namespace {

using slabctl::exit_code;
using slabctl::failure;

constexpr const char* usage_text = R"(usage: slabctl [OPTIONS] VERB [ARGS]

Verbs:
  status [POOL...]     occupancy, tiers, contexts, growth and warnings of every pool
                       (or the named ones); --json for the documented JSON schema
  top                  a live view refreshing in place; q or Ctrl-C quits
  inspect POOL KEY     whether KEY (decimal or 0x hex) is live, where its slot is, and
                       a hex dump of the slot; --json for scripts
  audit [POOL...]      full consistency check (safe while clients run); --json
  metrics [POOL...]    Prometheus text format, for node_exporter's textfile collector

Options:
  --socket PATH        shmd's control socket (default: $SHMD_SOCKET, else
                       /run/shmd/shmd.sock)
  --config FILE        take the socket from shmd's config FILE
  --json               machine-readable output (status, inspect, audit)
  --interval SECONDS   top's refresh period (default 1)
  --timeout SECONDS    audit: give up as inconclusive after this long (default 10)
  --no-numa-check      status: do not ask the kernel where the pages are
  --help, --version

Exit codes: 0 ok, 1 audit violations, 2 usage, 3 shmd unreachable, 4 permission
denied, 5 unknown pool, 6 stale key, 7 malformed key, 8 audit inconclusive, 9 other
failure (see docs/slabctl.md).
)";

struct options {
  std::string socket;
  std::string verb;
  std::vector<std::string> args;
  bool json = false;
  bool numa_check = true;
  double interval = 1.0;
  double timeout = 10.0;
};

[[noreturn]] void usage_error(const std::string& what) {
  throw failure(exit_code::usage, "slabctl: " + what + " (slabctl --help lists the verbs)");
}

double seconds_arg(const std::string& opt, const char* v) {
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(d > 0.0) || d > 86400.0)
    usage_error(opt + " takes a number of seconds in (0, 86400], got '" + std::string(v) + "'");
  return d;
}

std::optional<options> parse(int argc, char** argv) {
  options o;
  std::string config;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(usage_text, stdout);
      return std::nullopt;
    }
    if (a == "--version") {
      std::printf("slabctl %s (protocol ABI %u)\n", SLAB_VERSION, slab::proto::abi_version);
      return std::nullopt;
    }
    if (a == "--socket") {
      o.socket = value();
    } else if (a == "--config") {
      config = value();
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--no-numa-check") {
      o.numa_check = false;
    } else if (a == "--interval") {
      o.interval = seconds_arg(a, value());
    } else if (a == "--timeout") {
      o.timeout = seconds_arg(a, value());
    } else if (a.size() > 1 && a[0] == '-' && a != "-") {
      usage_error("unknown option '" + a + "'");
    } else if (o.verb.empty()) {
      o.verb = a;
    } else {
      o.args.push_back(a);
    }
  }
  if (o.verb.empty()) usage_error("no verb given");
  if (o.socket.empty() && !config.empty()) {
    try {
      o.socket = shmd::load_config(config).socket;
    } catch (const slab::error& e) {
      throw failure(exit_code::usage, std::string("slabctl: --config: ") + e.what());
    }
  }
  if (o.socket.empty()) o.socket = slab::default_socket_path();
  return o;
}

// The pools named (each must exist: unknown ones end the run with exit 5), or all.
std::vector<std::unique_ptr<slabctl::pool_watch>> watch(slabctl::observer& obs,
                                                        const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<slabctl::pool_watch>> out;
  if (names.empty()) {
    for (std::uint32_t i = 0; i < obs.pool_count(); ++i)
      out.push_back(std::make_unique<slabctl::pool_watch>(obs, "", i));
  }
  for (const std::string& n : names) {
    if (n.empty() || n.size() >= slab::proto::pool_name_max)
      throw failure(exit_code::unknown_pool, "slabctl: '" + n + "' is not a pool name");
    out.push_back(std::make_unique<slabctl::pool_watch>(obs, n));
  }
  return out;
}

int cmd_status(const options& o) {
  slabctl::observer obs(o.socket);
  auto watches = watch(obs, o.args);
  std::vector<slabctl::pool_snapshot> pools;
  for (auto& w : watches)
    pools.push_back(slabctl::take_snapshot(obs, *w, o.numa_check));
  slabctl::daemon_snapshot d = slabctl::take_daemon_snapshot(obs);
  if (!watches.empty()) d.started_unix_ns = watches.front()->daemon_info().daemon_started_unix_ns;
  if (o.json) {
    std::cout << slabctl::status_json(d, pools).dump(2) << "\n";
  } else {
    std::cout << slabctl::status_text(d, pools);
  }
  return 0;
}

int cmd_metrics(const options& o) {
  try {
    slabctl::observer obs(o.socket);
    auto watches = watch(obs, o.args);
    std::vector<slabctl::pool_snapshot> pools;
    for (auto& w : watches)
      pools.push_back(slabctl::take_snapshot(obs, *w, false));
    std::cout << slabctl::metrics_text(slabctl::take_daemon_snapshot(obs), pools);
    return 0;
  } catch (const slab::error& e) {
    // Still a valid exposition, so that a textfile collector shows shmd as down.
    if (e.code() == slab::errc::no_daemon || e.code() == slab::errc::permission_denied)
      std::cout << slabctl::metrics_down(std::string("slabctl: ") + e.what());
    throw;
  }
}

const char* verdict_name(slab::observe::verdict v) {
  switch (v) {
  case slab::observe::verdict::clean: return "clean";
  case slab::observe::verdict::violations: return "violations";
  case slab::observe::verdict::inconclusive: return "inconclusive";
  }
  return "?";
}

int cmd_audit(const options& o) {
  slabctl::observer obs(o.socket);
  auto watches = watch(obs, o.args);
  slab::observe::audit_options ao;
  ao.timeout = std::chrono::milliseconds(static_cast<long>(o.timeout * 1000.0));
  nlohmann::json pools = nlohmann::json::array();
  bool any_violation = false, any_inconclusive = false;
  for (auto& w : watches) {
    const slab::observe::audit_outcome a = slab::observe::settled_audit(*w, ao);
    const slab::core::audit_report& r = a.report;
    any_violation = any_violation || a.result == slab::observe::verdict::violations;
    any_inconclusive = any_inconclusive || a.result == slab::observe::verdict::inconclusive;
    const std::vector<std::string> problems = a.problems();
    if (o.json) {
      pools.push_back({{"pool", w->name()},
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
                       {"problems", problems}});
      continue;
    }
    std::printf("pool '%s': %s (%u passes, %u quiet, %lld ms): %" PRIu64 " ready, %" PRIu64
                " used, %" PRIu64 " live, %" PRIu64 " free in the depot, %" PRIu64
                " free in caches; %" PRIu64 " magazines (%" PRIu64 " full, %" PRIu64
                " empty, %" PRIu64 " held)\n",
                w->name().c_str(), verdict_name(a.result), a.passes, a.quiet_passes,
                static_cast<long long>(a.took.count()), r.ready, r.used, r.live, r.free_depot,
                r.free_cached, r.magazines, r.magazines_full, r.magazines_empty, r.magazines_held);
    if (a.result == slab::observe::verdict::inconclusive) {
      std::printf("  the pool never held still for a whole pass within %.1f s; what the last pass "
                  "saw is not a verdict\n",
                  o.timeout);
    }
    for (const std::string& p : problems)
      std::printf("  %s: %s\n",
                  a.result == slab::observe::verdict::violations ? "violation" : "seen", p.c_str());
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

std::uint64_t parse_key(const std::string& s) {
  const bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  const std::string digits = hex ? s.substr(2) : s;
  const char* allowed = hex ? "0123456789abcdefABCDEF" : "0123456789";
  if (digits.empty() || digits.find_first_not_of(allowed) != std::string::npos ||
      digits.size() > (hex ? 16U : 20U)) {
    throw failure(exit_code::malformed_key,
                  "slabctl: '" + s + "' is not a key: a key is a 64-bit number, decimal or 0x hex");
  }
  errno = 0;
  const unsigned long long v = std::strtoull(digits.c_str(), nullptr, hex ? 16 : 10);
  if (errno == ERANGE)
    throw failure(exit_code::malformed_key, "slabctl: '" + s + "' does not fit in 64 bits");
  return v;
}

std::string hex_dump(const unsigned char* p, std::size_t n) {
  std::string out;
  char line[128];
  for (std::size_t off = 0; off < n; off += 16) {
    int k = std::snprintf(line, sizeof line, "  %06zx ", off);
    std::string ascii;
    for (std::size_t i = 0; i < 16; ++i) {
      if (off + i < n) {
        k +=
            std::snprintf(line + k, sizeof line - static_cast<std::size_t>(k), " %02x", p[off + i]);
        const unsigned char c = p[off + i];
        ascii += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.';
      } else {
        k += std::snprintf(line + k, sizeof line - static_cast<std::size_t>(k), "   ");
      }
      if (i == 7) k += std::snprintf(line + k, sizeof line - static_cast<std::size_t>(k), " ");
    }
    out += std::string(line) + "  |" + ascii + "|\n";
  }
  return out;
}

int cmd_inspect(const options& o) {
  if (o.args.size() != 2) usage_error("inspect takes POOL KEY");
  const std::uint64_t raw = parse_key(o.args[1]);
  const slab::key k = slab::key::from_raw(raw);
  slabctl::observer obs(o.socket);
  slabctl::pool_watch w(obs, o.args[0]);
  w.map_all();
  slab::mapped::pool_map& m = w.map();
  const slab::proto::pool_header& h = m.info();
  char keyhex[32];
  std::snprintf(keyhex, sizeof keyhex, "0x%016" PRIx64, raw);
  if (!k.plausible()) {
    throw failure(exit_code::malformed_key,
                  std::string("slabctl: ") + keyhex + " is not a key: its generation " +
                      std::to_string(k.generation()) +
                      " is even, and every key carries an odd one (key 0 is never valid)");
  }
  if (k.index() >= h.max_slots) {
    throw failure(exit_code::malformed_key, std::string("slabctl: ") + keyhex +
                                                " is not a key of pool '" + w.name() + "': index " +
                                                std::to_string(k.index()) + " is past its " +
                                                std::to_string(h.max_slots) + " slots at most");
  }
  const std::uint64_t ready = m.state().ready_slots.load();
  if (k.index() >= ready || !m.has_slot(k.index())) {
    std::fprintf(stderr,
                 "slabctl: key %s is stale: pool '%s' has published %" PRIu64
                 " slots and index %u is not among them\n",
                 keyhex, w.name().c_str(), ready, k.index());
    return static_cast<int>(exit_code::stale_key);
  }
  const slab::core::tier_pos pos = m.geometry().geo.locate(k.index());
  const slab::core::shared_header::value hv = m.header(k.index()).load();
  const bool live = hv.gen == k.generation();
  const std::uint64_t offset = std::uint64_t{pos.offset} * h.stride;
  const auto* payload = static_cast<const unsigned char*>(m.payload(k.index()));
  std::string state;
  if (live) {
    state = "live";
  } else if (slab::core::gen_live(hv.gen)) {
    state = "stale: the slot holds a newer value (generation " + std::to_string(hv.gen) + ")";
  } else {
    state = "stale: the slot is free (generation " + std::to_string(hv.gen) + ")";
  }
  if (o.json) {
    std::vector<unsigned> bytes(payload, payload + h.slot_size);
    std::cout << nlohmann::json{{"pool", w.name()},
                                {"key", raw},
                                {"index", k.index()},
                                {"generation", k.generation()},
                                {"live", live},
                                {"slot_generation", hv.gen},
                                {"last_context", hv.aux},
                                {"tier", pos.tier},
                                {"offset_in_tier", pos.offset},
                                {"data_offset", offset},
                                {"stride", h.stride},
                                {"slot_size", h.slot_size},
                                {"state", state},
                                {"bytes", bytes}}
                     .dump(2)
              << "\n";
  } else {
    std::printf("pool '%s', key %s: index %u, generation %u\n", w.name().c_str(), keyhex, k.index(),
                k.generation());
    std::printf("  %s\n", state.c_str());
    std::printf("  tier %u, slot %u of the tier, data segment offset %" PRIu64 " (0x%" PRIx64
                "), stride %u\n",
                pos.tier, pos.offset, offset, offset, h.stride);
    std::printf("  last changed by context %u\n", hv.aux);
    std::printf("  %u payload bytes:\n%s", h.slot_size, hex_dump(payload, h.slot_size).c_str());
  }
  return live ? 0 : static_cast<int>(exit_code::stale_key);
}

int run(const options& o) {
  if (o.verb == "status") return cmd_status(o);
  if (o.verb == "metrics") return cmd_metrics(o);
  if (o.verb == "audit") return cmd_audit(o);
  if (o.verb == "inspect") return cmd_inspect(o);
  if (o.verb == "top") {
    if (!o.args.empty()) usage_error("top takes no arguments");
    { slabctl::observer probe(o.socket); } // unreachable at the start: say so and stop
    return slabctl::run_top(o.socket,
                            std::chrono::milliseconds(static_cast<long>(o.interval * 1000)));
  }
  usage_error("unknown verb '" + o.verb + "'");
}

} // namespace

int main(int argc, char** argv) {
  try {
    const std::optional<options> o = parse(argc, argv);
    if (!o) return 0;
    return run(*o);
  } catch (const failure& f) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s\n", f.what());
    return static_cast<int>(f.code());
  } catch (const slab::error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "slabctl: %s\n", e.what());
    return static_cast<int>(slabctl::exit_code_of(e.code()));
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "slabctl: %s\n", e.what());
    return static_cast<int>(exit_code::failure);
  }
}
