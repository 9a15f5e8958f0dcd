// shmd's configuration parser. toml++ parses the text and gives every key and value its
// position; this file walks the tree in document order and checks every key against
// what the daemon accepts, stopping at the first error. See config.hpp for the format
// and packaging/shmd.toml for the bundled default.
#include "shmd/config.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <unistd.h>

// toml++ is a system include (imported target), but keep its headers quiet whatever
// the include path: our warnings are for our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <toml++/toml.h>
#pragma GCC diagnostic pop

#include <slab/error.hpp>

namespace shmd {
namespace {

using slab::platform::page_policy;

constexpr std::size_t max_file_bytes = std::size_t{16} << 20; // a config, not a data set

// ---------------------------------------------------------------------------------------
// Formatting helpers

/// `"text"` with quotes, backslashes and control characters escaped, so that a value
/// shown in a message cannot break the line or hide what it is.
std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      constexpr std::string_view hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4U];
      out += hex[u & 0xfU];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

/// The shortest decimal form of `v` that reads back as `v`, marked as a float ("128.0").
std::string format_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  std::array<char, 64> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  std::string s(buf.data(), res.ptr);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

/// What a value is, for "got ..." in a message: `an integer (5)`, `a string ("x")`.
std::string describe(const toml::node& n) {
  switch (n.type()) {
  case toml::node_type::string: return "a string (" + quoted(n.as_string()->get()) + ")";
  case toml::node_type::integer:
    return "an integer (" + std::to_string(n.as_integer()->get()) + ")";
  case toml::node_type::floating_point:
    return "a float (" + format_float(n.as_floating_point()->get()) + ")";
  case toml::node_type::boolean:
    return std::string("a boolean (") + (n.as_boolean()->get() ? "true" : "false") + ")";
  case toml::node_type::array: return "an array";
  case toml::node_type::table: return "a table";
  case toml::node_type::date: return "a date";
  case toml::node_type::time: return "a time";
  case toml::node_type::date_time: return "a date-time";
  case toml::node_type::none: break;
  }
  return "nothing";
}

/// The Levenshtein distance of two short strings (keys), for "did you mean".
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string join(const std::vector<std::string_view>& words) {
  std::string out;
  for (const auto w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The walk

/// One key of a table with its value; tables are kept sorted by key, the walk wants
/// them in the order the operator wrote them.
struct entry {
  const toml::key* key;
  const toml::node* value;
};

std::vector<entry> in_document_order(const toml::table& t) {
  std::vector<entry> out;
  out.reserve(t.size());
  for (auto&& [k, v] : t)
    out.push_back({&k, &v});
  std::stable_sort(out.begin(), out.end(), [](const entry& a, const entry& b) {
    const auto& pa = a.key->source().begin;
    const auto& pb = b.key->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  return out;
}

const std::vector<std::string_view> daemon_keys = {"socket",       "allow_uids",   "allow_gids",
                                                   "monitor_uids", "monitor_gids", "log_level",
                                                   "segment_dir",  "hugepage_dir"};
const std::vector<std::string_view> pool_keys = {"name",         "slot_size", "capacity",
                                                 "max_capacity", "hugepages", "numa_node",
                                                 "contexts",     "grow_at",   "mode"};
const std::vector<std::string_view> top_keys = {"daemon", "pool"};
const std::vector<std::string_view> log_levels = {"debug", "info", "notice", "warning", "error"};

class parser {
public:
  explicit parser(const std::string& source) : source_(source) {}

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
  const std::string& source_;
  std::string scope_; ///< "[daemon]", "pool \"orders\"", "[[pool]] #2"; empty at top level

  static toml::source_position pos(const toml::key& k) { return k.source().begin; }
  static toml::source_position pos(const toml::node& n) { return n.source().begin; }

  /// Throws "<source>:<line>:<column>: <scope>: <what>".
  [[noreturn]] void fail(const toml::source_position& p, const std::string& what) const {
    fail_unscoped(p, scope_.empty() ? what : scope_ + ": " + what);
  }
  /// Throws "<source>:<line>:<column>: <what>", for messages that name their scope.
  [[noreturn]] void fail_unscoped(const toml::source_position& p, const std::string& what) const {
    throw slab::error(slab::errc::config, source_ + ":" + std::to_string(p.line) + ":" +
                                              std::to_string(p.column) + ": " + what);
  }

  static std::string suggestion(std::string_view key, const std::vector<std::string_view>& known) {
    std::string_view best;
    std::size_t best_d = 3; // at most two edits, and fewer than the key has letters
    for (const auto k : known) {
      const std::size_t d = edit_distance(key, k);
      if (d < best_d && d < key.size()) {
        best = k;
        best_d = d;
      }
    }
    return best.empty() ? std::string{} : "; did you mean " + quoted(best) + "?";
  }

  [[noreturn]] void unknown_key(const toml::key& k, std::string_view where,
                                const std::vector<std::string_view>& known) const {
    fail_unscoped(pos(k), "unknown key " + quoted(k.str()) + " in " + std::string(where) +
                              " (known: " + join(known) + ")" + suggestion(k.str(), known));
  }

  /// An integer in [lo, hi]; `unit` follows the bounds in the message (" bytes").
  std::int64_t read_int(const toml::node& n, std::string_view key, std::int64_t lo, std::int64_t hi,
                        std::string_view unit) const {
    const auto range = std::to_string(lo) + " and " + std::to_string(hi) + std::string(unit);
    const auto* v = n.as_integer();
    if (v == nullptr) {
      fail(pos(n),
           std::string(key) + " must be an integer between " + range + ", got " + describe(n));
    }
    const std::int64_t x = v->get();
    if (x < lo || x > hi) {
      fail(pos(n), std::string(key) + " must be between " + range + ", got " + std::to_string(x));
    }
    return x;
  }

  /// A string among `allowed`.
  std::string read_choice(const toml::node& n, std::string_view key,
                          const std::vector<std::string_view>& allowed) const {
    const auto* v = n.as_string();
    const std::string choices = join(allowed);
    if (v == nullptr) {
      fail(pos(n),
           std::string(key) + " must be a string, one of: " + choices + "; got " + describe(n));
    }
    const std::string& s = v->get();
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      fail(pos(n), std::string(key) + " must be one of: " + choices + "; got " + quoted(s));
    }
    return s;
  }

  /// Numeric ids; with `group_names`, also names of groups, resolved here (getgrnam) so
  /// that a name the machine does not know is an error at its line, not a silent refusal
  /// of every client later.
  std::vector<std::uint32_t> read_ids(const toml::node& n, std::string_view key,
                                      std::string_view what, bool group_names = false) const {
    const auto* a = n.as_array();
    const auto bounds = std::string(what) + " between 0 and " + std::to_string(max_credential_id);
    const std::string each =
        group_names ? "each a " + bounds + " or a group name" : "each a " + bounds;
    if (a == nullptr) {
      fail(pos(n), std::string(key) + " must be an array of " +
                       (group_names ? "integers or strings (" : "integers (") + each + "), got " +
                       describe(n));
    }
    std::vector<std::uint32_t> ids;
    ids.reserve(a->size());
    for (std::size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      const std::string elem = std::string(key) + "[" + std::to_string(i) + "]";
      if (const auto* name = e.as_string(); name != nullptr && group_names) {
        ids.push_back(read_group(e, elem, name->get()));
        continue;
      }
      const auto* v = e.as_integer();
      if (v == nullptr) {
        fail(pos(e), elem + " must be an integer, a " + bounds +
                         (group_names ? ", or a group name" : "") + ", got " + describe(e));
      }
      const std::int64_t x = v->get();
      if (x < 0 || x > std::int64_t{max_credential_id}) {
        fail(pos(e), elem + " must be a " + bounds + ", got " + std::to_string(x));
      }
      ids.push_back(static_cast<std::uint32_t>(x));
    }
    return ids;
  }

  std::uint32_t read_group(const toml::node& e, const std::string& elem,
                           const std::string& name) const {
    if (name.empty() || name.find('\0') != std::string::npos) {
      fail(pos(e), elem + " must be a group name or a gid, got " + quoted(name));
    }
    errno = 0;
    const ::group* g = ::getgrnam(name.c_str()); // at load, before any thread starts
    if (g == nullptr) {
      const int err = errno;
      fail(pos(e), elem + ": no group named " + quoted(name) + " on this machine" +
                       (err != 0 && err != ENOENT && err != ESRCH
                            ? " (getgrnam: " + std::generic_category().message(err) + ")"
                            : "") +
                       "; create it (groupadd --system) or give its number");
    }
    return static_cast<std::uint32_t>(g->gr_gid);
  }

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
      } else {
        unknown_key(*e.key, "[daemon]", daemon_keys);
      }
    }
    scope_.clear();
  }

  // An absolute directory, "" (anonymous memfds), or for hugepage_dir also "auto".
  std::string read_dir(const toml::node& n, std::string_view key, bool allow_auto) const {
    const auto* v = n.as_string();
    const std::string allowed =
        std::string("an absolute directory path, or \"\"") + (allow_auto ? " or \"auto\"" : "");
    if (v == nullptr)
      fail(pos(n), std::string(key) + " must be a string, " + allowed + "; got " + describe(n));
    const std::string& s = v->get();
    if (s.empty() || (allow_auto && s == "auto")) return s;
    if (s.front() != '/' || s.find('\0') != std::string::npos) {
      fail(pos(n), std::string(key) + " must be " + allowed + ", got " + quoted(s));
    }
    return s;
  }

  std::string read_socket(const toml::node& n) const {
    const auto* v = n.as_string();
    if (v == nullptr) {
      fail(pos(n), "socket must be a string, an absolute path; got " + describe(n));
    }
    const std::string& s = v->get();
    if (s.empty() || s.front() != '/') {
      fail(pos(n), "socket must be an absolute path (starting with /), got " + quoted(s));
    }
    if (s.find('\0') != std::string::npos) {
      fail(pos(n), "socket must not contain a NUL character, got " + quoted(s));
    }
    if (s.size() > max_socket_path) {
      fail(pos(n), "socket path must be at most " + std::to_string(max_socket_path) +
                       " bytes (the size of a Unix socket address), got " +
                       std::to_string(s.size()) + " bytes");
    }
    return s;
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
    const toml::node* capacity_node = nullptr;
    const toml::node* max_node = nullptr;
    bool have_name = false;
    bool have_slot = false;
    for (const auto& e : in_document_order(t)) {
      const std::string_view k = e.key->str();
      const toml::node& v = *e.value;
      if (k == "name") {
        p.name = read_name(v, earlier, name_pos);
        have_name = true;
      } else if (k == "slot_size") {
        p.slot_size =
            static_cast<std::uint32_t>(read_int(v, k, 1, std::int64_t{max_slot_size}, " bytes"));
        have_slot = true;
      } else if (k == "capacity") {
        p.capacity = static_cast<std::uint64_t>(
            read_int(v, k, 1, static_cast<std::int64_t>(max_pool_slots), " slots"));
        capacity_node = &v;
      } else if (k == "max_capacity") {
        p.max_capacity = static_cast<std::uint64_t>(
            read_int(v, k, 1, static_cast<std::int64_t>(max_pool_slots), " slots"));
        max_node = &v;
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
        p.mode =
            read_choice(v, k, {"slab", "arena"}) == "arena" ? pool_mode::arena : pool_mode::slab;
      } else {
        unknown_key(*e.key, scope_, pool_keys);
      }
    }

    if (!have_name) missing(t, "name", "the pool's name: a-z, 0-9, _ and -, 1 to 63 characters");
    if (!have_slot) missing(t, "slot_size", "bytes per slot, 1 to 1048576");
    if (capacity_node == nullptr) missing(t, "capacity", "slots ready at start, at least 1");
    if (max_node == nullptr) {
      p.max_capacity = p.capacity;
    } else if (p.capacity > p.max_capacity) {
      fail(pos(*capacity_node),
           "capacity must not exceed max_capacity (" + std::to_string(p.max_capacity) +
               " at line " + std::to_string(pos(*max_node).line) + "), got " +
               std::to_string(p.capacity) + "; raise max_capacity or lower capacity");
    }
    return p;
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

  int read_numa_node(const toml::node& n) const {
    const auto* v = n.as_integer();
    if (v == nullptr) {
      fail(pos(n), "numa_node must be an integer, a node number >= 0 (omit the key for the "
                   "local node), got " +
                       describe(n));
    }
    const std::int64_t x = v->get();
    if (x < 0) {
      fail(pos(n), "numa_node must be a node number >= 0 (omit the key for the local node), "
                   "got " +
                       std::to_string(x));
    }
    if (x > std::numeric_limits<int>::max()) {
      fail(pos(n), "numa_node must be between 0 and " +
                       std::to_string(std::numeric_limits<int>::max()) + ", got " +
                       std::to_string(x));
    }
    return static_cast<int>(x);
  }

  double read_grow_at(const toml::node& n) const {
    double x = 0;
    if (const auto* f = n.as_floating_point()) {
      x = f->get();
    } else if (const auto* i = n.as_integer()) {
      x = static_cast<double>(i->get()); // never in range, but the message says why
    } else {
      fail(pos(n), "grow_at must be a number greater than 0 and less than 1 (an occupancy "
                   "such as 0.75), got " +
                       describe(n));
    }
    if (!(x > 0.0 && x < 1.0)) { // also rejects nan
      fail(pos(n), "grow_at must be greater than 0 and less than 1 (an occupancy such as "
                   "0.75), got " +
                       (n.is_integer() ? std::to_string(n.as_integer()->get()) : format_float(x)));
    }
    return x;
  }
};

} // namespace

daemon_config parse_config(std::string_view text, const std::string& source_name) {
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
  const auto os_error = [&](std::string_view what, int err) {
    return slab::error(slab::errc::config, std::string(what) + " config file " + quoted(path) +
                                               ": " + std::generic_category().message(err));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw os_error("cannot open", errno);
  std::string text;
  std::array<char, 8192> buf{};
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw os_error("cannot read", err);
    }
    if (n == 0) break;
    text.append(buf.data(), static_cast<std::size_t>(n));
    if (text.size() > max_file_bytes) {
      ::close(fd);
      throw slab::error(slab::errc::config, "config file " + quoted(path) + " is larger than " +
                                                std::to_string(max_file_bytes >> 20) +
                                                " MiB; is it the right file?");
    }
  }
  ::close(fd);
  return parse_config(text, path);
}

} // namespace shmd
