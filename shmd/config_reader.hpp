// The value readers of shmd's configuration parser, and the helpers its messages share.
// config.cpp walks the tables ([daemon], [[pool]]) and hands each value to a reader
// here, which checks it against what the daemon accepts and throws
// slab::error(errc::config) "<file>:<line>:<column>: <scope>: <what is wrong>" at the
// first problem. Internal to shmd (the only file that sees toml++ besides config.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// toml++ is a system include (imported target), but keep its headers quiet whatever
// the include path and the compiler: our warnings are for our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <toml++/toml.h>
#pragma GCC diagnostic pop

namespace shmd::config_detail {

/// `"text"` with quotes, backslashes and control characters escaped, so that a value
/// shown in a message cannot break the line or hide what it is.
[[nodiscard]] std::string quoted(std::string_view s);
/// The shortest decimal form of `v` that reads back as `v`, marked as a float ("128.0").
[[nodiscard]] std::string format_float(double v);
/// What a value is, for "got ..." in a message: `an integer (5)`, `a string ("x")`.
[[nodiscard]] std::string describe(const toml::node& n);
/// "a, b, c".
[[nodiscard]] std::string join(const std::vector<std::string_view>& words);

/// One key of a table with its value; tables are kept sorted by key, the walk wants
/// them in the order the operator wrote them.
struct entry {
  const toml::key* key;
  const toml::node* value;
};
[[nodiscard]] std::vector<entry> in_document_order(const toml::table& t);

/// Reads single values, each against its own rules; knows the file's name (`source_`)
/// and the table being read (`scope_`) so that every message says where it is.
class value_reader {
public:
  explicit value_reader(const std::string& source) : source_(source) {}

protected:
  const std::string& source_;
  std::string scope_; ///< "[daemon]", "pool \"orders\"", "[[pool]] #2"; empty at top level

  static toml::source_position pos(const toml::key& k) { return k.source().begin; }
  static toml::source_position pos(const toml::node& n) { return n.source().begin; }

  /// Throws "<source>:<line>:<column>: <scope>: <what>".
  [[noreturn]] void fail(const toml::source_position& p, const std::string& what) const;
  /// Throws "<source>:<line>:<column>: <what>", for messages that name their scope.
  [[noreturn]] void fail_unscoped(const toml::source_position& p, const std::string& what) const;
  /// "; did you mean "x"?" for a known key at most two edits away, else "".
  static std::string suggestion(std::string_view key, const std::vector<std::string_view>& known);
  [[noreturn]] void unknown_key(const toml::key& k, std::string_view where,
                                const std::vector<std::string_view>& known) const;

  /// An integer in [lo, hi]; `unit` follows the bounds in the message (" bytes").
  std::int64_t read_int(const toml::node& n, std::string_view key, std::int64_t lo, std::int64_t hi,
                        std::string_view unit) const;
  /// A string among `allowed`.
  std::string read_choice(const toml::node& n, std::string_view key,
                          const std::vector<std::string_view>& allowed) const;
  /// Numeric ids; with `group_names`, also names of groups, resolved here
  /// (platform::group_id) so that a name the machine does not know is an error at its
  /// line, not a silent refusal of every client later.
  std::vector<std::uint32_t> read_ids(const toml::node& n, std::string_view key,
                                      std::string_view what, bool group_names = false) const;
  std::uint32_t read_group(const toml::node& e, const std::string& elem,
                           const std::string& name) const;
  /// An absolute directory, "" (anonymous memfds), or with `allow_auto` also "auto".
  std::string read_dir(const toml::node& n, std::string_view key, bool allow_auto) const;
  /// An absolute path that fits a Unix socket address.
  std::string read_socket(const toml::node& n) const;
  int read_numa_node(const toml::node& n) const;
  double read_grow_at(const toml::node& n) const;
};

} // namespace shmd::config_detail
