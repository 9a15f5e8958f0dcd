// slabctl status, as tables for people (snapshot.hpp).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "snapshot.hpp"

namespace slabctl {

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

} // namespace slabctl
