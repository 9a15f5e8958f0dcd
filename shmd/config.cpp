// shmd's configuration parser. toml++ parses the text and gives every key and value its
// position; this file walks the tables in document order and hands each value to its
// reader (config_reader.cpp), stopping at the first error. See config.hpp for the format
// and packaging/shmd.toml for the bundled default.
#include "shmd/config.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <slab/error.hpp>
#include <slab/platform/files.hpp>

#include "config_reader.hpp"
#include "toml_guard.hpp"

namespace shmd {
namespace {

using namespace config_detail; // NOLINT(google-build-using-namespace): the parser's own helpers
using slab::platform::page_policy;

constexpr std::size_t max_file_bytes = std::size_t{16} << 20; // a config, not a data set

const std::vector<std::string_view> daemon_keys = {
    "socket",    "allow_uids",  "allow_gids",   "monitor_uids",           "monitor_gids",
    "log_level", "segment_dir", "hugepage_dir", "max_connections_per_uid"};
const std::vector<std::string_view> pool_keys = {"name",         "slot_size", "capacity",
                                                 "max_capacity", "hugepages", "numa_node",
                                                 "contexts",     "grow_at",   "mode"};
const std::vector<std::string_view> top_keys = {"daemon", "pool"};
const std::vector<std::string_view> log_levels = {"debug", "info", "notice", "warning", "error"};

class parser : public value_reader {
public:
  using value_reader::value_reader;

  daemon_config run(const toml::table& root) {
    daemon_config cfg;
    cfg.source = source_;
    bool have_pool_key = false;
    for (const auto& e : in_document_order(root)) {
      const std::string_view k = e.key->str();
      if (k == "daemon") {
        read_daemon(*e.value, cfg);
      } else if (k == "pool") {
        have_pool_key = true;
        read_pools(*e.value, cfg);
      } else {
        fail(pos(*e.key), "unknown top-level key " + quoted(k) + " (known: " + join(top_keys) +
                              ")" + suggestion(k, top_keys));
      }
    }
    if (!have_pool_key) {
      fail(root.source().begin, "no pool defined: add at least one [[pool]] table with "
                                "name, slot_size and capacity");
    }
    return cfg;
  }

private:
  // --- [daemon] -------------------------------------------------------------------------

  void read_daemon(const toml::node& n, daemon_config& cfg) {
    const auto* t = n.as_table();
    if (t == nullptr) {
      const bool aot = n.is_array_of_tables();
      fail(pos(n), std::string("\"daemon\" must be a table, written [daemon], got ") +
                       (aot ? "an array of tables ([[daemon]])" : describe(n)));
    }
    scope_ = "[daemon]";
    for (const auto& e : in_document_order(*t)) {
      const std::string_view k = e.key->str();
      const toml::node& v = *e.value;
      if (k == "socket") {
        cfg.socket = read_socket(v);
      } else if (k == "allow_uids") {
        cfg.allow_uids = read_ids(v, k, "uid");
      } else if (k == "allow_gids") {
        cfg.allow_gids = read_ids(v, k, "gid", true);
      } else if (k == "monitor_uids") {
        cfg.monitor_uids = read_ids(v, k, "uid");
      } else if (k == "monitor_gids") {
        cfg.monitor_gids = read_ids(v, k, "gid", true);
      } else if (k == "log_level") {
        cfg.log_level = read_choice(v, k, log_levels);
      } else if (k == "segment_dir") {
        cfg.segment_dir = read_dir(v, k, false);
      } else if (k == "hugepage_dir") {
        cfg.hugepage_dir = read_dir(v, k, true);
      } else if (k == "max_connections_per_uid") {
        cfg.max_connections_per_uid = static_cast<std::uint32_t>(read_int(v, k, 1, 1'000'000, ""));
      } else {
        unknown_key(*e.key, "[daemon]", daemon_keys);
      }
    }
    scope_.clear();
  }

  // --- [[pool]] -------------------------------------------------------------------------

  void read_pools(const toml::node& n, daemon_config& cfg) {
    const auto* a = n.as_array();
    if (a == nullptr) {
      fail(pos(n), std::string("\"pool\" must be an array of tables, one [[pool]] per pool; got ") +
                       (n.is_table() ? "a table (written [pool]; write [[pool]])" : describe(n)));
    }
    if (a->empty()) {
      fail(pos(n), "no pool defined: \"pool\" is empty; add at least one [[pool]] table with "
                   "name, slot_size and capacity");
    }
    std::vector<toml::source_position> name_pos; // of cfg.pools[i].name, for duplicates
    for (std::size_t i = 0; i < a->size(); ++i) {
      scope_.clear();
      const toml::node& e = *a->get(i);
      const auto* t = e.as_table();
      if (t == nullptr) {
        fail(pos(e), "pool[" + std::to_string(i) +
                         "] must be a table (one [[pool]] per pool), got " + describe(e));
      }
      cfg.pools.push_back(read_pool(*t, i + 1, cfg.pools, name_pos));
    }
    scope_.clear();
  }

  /// Whether `s` is a valid pool name; else why not.
  static std::optional<std::string> name_problem(const std::string& s) {
    if (s.empty()) return "name must not be empty";
    if (s.size() > max_pool_name) {
      return "name must be at most " + std::to_string(max_pool_name) + " characters, got " +
             std::to_string(s.size()) + " (" + quoted(s) + ")";
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
      if (!ok) {
        return "name must use only a-z, 0-9, _ and -, got " + quoted(s) + " (" +
               quoted(std::string_view(&s[i], 1)) + " at character " + std::to_string(i + 1) + ")";
      }
    }
    return std::nullopt;
  }

  /// What a [[pool]] table has said so far, for the checks made once it is read whole.
  struct pool_seen {
    const toml::node* capacity = nullptr;
    const toml::node* max_capacity = nullptr;
    bool name = false;
    bool slot_size = false;
  };

  pool_config read_pool(const toml::table& t, std::size_t number,
                        const std::vector<pool_config>& earlier,
                        std::vector<toml::source_position>& name_pos) {
    // The scope names the pool when its name is usable, else its rank in the file.
    scope_ = "[[pool]] #" + std::to_string(number);
    if (const auto* nm = t.get_as<std::string>("name")) {
      const std::string& s = nm->get();
      const bool dup = std::any_of(earlier.begin(), earlier.end(),
                                   [&](const pool_config& p) { return p.name == s; });
      if (!name_problem(s) && !dup) scope_ = "pool " + quoted(s);
    }
    pool_config p;
    pool_seen seen;
    for (const auto& e : in_document_order(t)) {
      if (e.key->str() == "name") {
        p.name = read_name(*e.value, earlier, name_pos);
        seen.name = true;
      } else {
        read_pool_key(e, p, seen);
      }
    }
    if (!seen.name) missing(t, "name", "the pool's name: a-z, 0-9, _ and -, 1 to 63 characters");
    if (!seen.slot_size) missing(t, "slot_size", "bytes per slot, 1 to 1048576");
    if (seen.capacity == nullptr) missing(t, "capacity", "slots ready at start, at least 1");
    if (seen.max_capacity == nullptr) {
      p.max_capacity = p.capacity;
    } else if (p.capacity > p.max_capacity) {
      fail(pos(*seen.capacity),
           "capacity must not exceed max_capacity (" + std::to_string(p.max_capacity) +
               " at line " + std::to_string(pos(*seen.max_capacity).line) + "), got " +
               std::to_string(p.capacity) + "; raise max_capacity or lower capacity");
    }
    return p;
  }

  /// One key of a [[pool]] table other than its name.
  void read_pool_key(const entry& e, pool_config& p, pool_seen& seen) const {
    const std::string_view k = e.key->str();
    const toml::node& v = *e.value;
    const auto slots = [&] {
      return static_cast<std::uint64_t>(
          read_int(v, k, 1, static_cast<std::int64_t>(max_pool_slots), " slots"));
    };
    if (k == "slot_size") {
      p.slot_size =
          static_cast<std::uint32_t>(read_int(v, k, 1, std::int64_t{max_slot_size}, " bytes"));
      seen.slot_size = true;
    } else if (k == "capacity") {
      p.capacity = slots();
      seen.capacity = &v;
    } else if (k == "max_capacity") {
      p.max_capacity = slots();
      seen.max_capacity = &v;
    } else if (k == "hugepages") {
      const std::string s = read_choice(v, k, {"require", "prefer", "off"});
      p.hugepages = s == "require"  ? page_policy::require
                    : s == "prefer" ? page_policy::prefer
                                    : page_policy::off;
    } else if (k == "numa_node") {
      p.numa_node = read_numa_node(v);
    } else if (k == "contexts") {
      p.contexts =
          static_cast<std::uint32_t>(read_int(v, k, 1, std::int64_t{max_contexts}, " contexts"));
    } else if (k == "grow_at") {
      p.grow_at = read_grow_at(v);
    } else if (k == "mode") {
      p.mode = read_choice(v, k, {"slab", "arena"}) == "arena" ? pool_mode::arena : pool_mode::slab;
    } else {
      unknown_key(*e.key, scope_, pool_keys);
    }
  }

  [[noreturn]] void missing(const toml::table& t, std::string_view key,
                            std::string_view what) const {
    fail(pos(t), "missing required key " + quoted(key) + " (" + std::string(what) + ")");
  }

  std::string read_name(const toml::node& n, const std::vector<pool_config>& earlier,
                        std::vector<toml::source_position>& name_pos) const {
    const auto* v = n.as_string();
    if (v == nullptr) {
      fail(pos(n),
           "name must be a string of a-z, 0-9, _ and - (1 to 63 characters), got " + describe(n));
    }
    const std::string& s = v->get();
    if (auto problem = name_problem(s)) fail(pos(n), *problem);
    for (std::size_t i = 0; i < earlier.size(); ++i) {
      if (earlier[i].name == s) {
        fail(pos(n), "duplicate pool name " + quoted(s) + ", already used at " + source_ + ":" +
                         std::to_string(name_pos[i].line) + ":" +
                         std::to_string(name_pos[i].column) + "; pool names must be unique");
      }
    }
    name_pos.push_back(pos(n));
    return s;
  }
};

/// See toml_guard.hpp: what toml++ 3.3 cannot read without undefined behaviour.
void refuse_unsafe_characters(std::string_view text, const std::string& source_name) {
  const std::optional<unsafe_character> bad = find_unsafe_character(text);
  if (!bad) return;
  std::array<char, 16> code{};
  std::snprintf(code.data(), code.size(), "U+%04X", static_cast<unsigned>(bad->code_point));
  const std::string where =
      source_name + ":" + std::to_string(bad->line) + ":" + std::to_string(bad->column) + ": ";
  if (!bad->in_string) {
    throw slab::error(slab::errc::config, where + "TOML syntax error: unexpected character " +
                                              code.data() + " outside a string or comment");
  }
  throw slab::error(slab::errc::config,
                    where + "the character " + std::string(code.data()) +
                        " after a backslash in a multi-line string, where whitespace may "
                        "follow, is beyond this build's TOML parser (toml++ 3.3); write it as "
                        "an escape (\\u" +
                        std::string(code.data() + 2) + ")");
}

} // namespace

daemon_config parse_config(std::string_view text, const std::string& source_name) {
  refuse_unsafe_characters(text, source_name);
  toml::table root;
  try {
    root = toml::parse(text, std::string_view{source_name});
  } catch (const toml::parse_error& e) {
    const auto& p = e.source().begin;
    throw slab::error(slab::errc::config,
                      source_name + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) +
                          ": TOML syntax error: " + std::string(e.description()));
  }
  return parser(source_name).run(root);
}

daemon_config load_config(const std::string& path) {
  slab::platform::result<std::string> text =
      slab::platform::read_file(path, max_file_bytes, "config file");
  if (!text) {
    const slab::platform::sys_error& e = text.error();
    throw slab::error(slab::errc::config,
                      e.err == EFBIG ? e.what + "; is it the right file?" : e.what);
  }
  return parse_config(text.value(), path);
}

} // namespace shmd
