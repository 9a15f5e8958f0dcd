// The value readers of shmd's configuration parser (config_reader.hpp): one TOML value
// each, checked against what the daemon accepts, with a message that says where it is
// and what is allowed.
#include "config_reader.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

#include <slab/error.hpp>
#include <slab/platform/process.hpp>

#include "shmd/config.hpp"

namespace shmd::config_detail {
namespace {

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

} // namespace

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

std::string format_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  std::array<char, 64> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  std::string s(buf.data(), res.ptr);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

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

std::string join(const std::vector<std::string_view>& words) {
  std::string out;
  for (const auto w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

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

void value_reader::fail(const toml::source_position& p, const std::string& what) const {
  fail_unscoped(p, scope_.empty() ? what : scope_ + ": " + what);
}
void value_reader::fail_unscoped(const toml::source_position& p, const std::string& what) const {
  throw slab::error(slab::errc::config, source_ + ":" + std::to_string(p.line) + ":" +
                                            std::to_string(p.column) + ": " + what);
}

std::string value_reader::suggestion(std::string_view key,
                                     const std::vector<std::string_view>& known) {
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

void value_reader::unknown_key(const toml::key& k, std::string_view where,
                               const std::vector<std::string_view>& known) const {
  fail_unscoped(pos(k), "unknown key " + quoted(k.str()) + " in " + std::string(where) +
                            " (known: " + join(known) + ")" + suggestion(k.str(), known));
}

std::int64_t value_reader::read_int(const toml::node& n, std::string_view key, std::int64_t lo,
                                    std::int64_t hi, std::string_view unit) const {
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

std::string value_reader::read_choice(const toml::node& n, std::string_view key,
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

std::vector<std::uint32_t> value_reader::read_ids(const toml::node& n, std::string_view key,
                                                  std::string_view what, bool group_names) const {
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

std::uint32_t value_reader::read_group(const toml::node& e, const std::string& elem,
                                       const std::string& name) const {
  if (name.empty() || name.find('\0') != std::string::npos) {
    fail(pos(e), elem + " must be a group name or a gid, got " + quoted(name));
  }
  const slab::platform::result<std::optional<std::uint32_t>> gid = slab::platform::group_id(name);
  if (!gid || !gid.value()) {
    fail(pos(e), elem + ": no group named " + quoted(name) + " on this machine" +
                     (gid ? "" : " (" + gid.error().what + ")") +
                     "; create it (groupadd --system) or give its number");
  }
  return *gid.value();
}

// An absolute directory, "" (anonymous memfds), or for hugepage_dir also "auto".
std::string value_reader::read_dir(const toml::node& n, std::string_view key,
                                   bool allow_auto) const {
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

std::string value_reader::read_socket(const toml::node& n) const {
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
                     " bytes (the size of a Unix socket address), got " + std::to_string(s.size()) +
                     " bytes");
  }
  return s;
}

int value_reader::read_numa_node(const toml::node& n) const {
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

double value_reader::read_grow_at(const toml::node& n) const {
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

} // namespace shmd::config_detail
