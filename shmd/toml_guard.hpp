// A check run on a config's text before toml++ sees it, for a bug of the toml++ that
// Debian 12 ships (3.3.0; upstream issues #190 and #295, fixed after 3.4): its test for
// non-ASCII whitespace reaches __builtin_unreachable() for most code points in
// U+00A1..U+0499, U+2D6E..U+3167 and U+FBB6..U+FEFE, undefined behaviour in the daemon. The test
// runs only where toml++ expects whitespace: outside strings and comments, and in a
// multi-line basic string after a backslash (and after the whitespace, non-ASCII
// included, and line breaks it then skips). Outside strings and comments such a
// character is a syntax error anyway; after the backslash it is valid TOML, which shmd
// then refuses with a message saying to write it as an escape (\uXXXX).
// fuzz_config found this (tests/fuzz); config_test holds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace shmd::config_detail {

struct unsafe_character {
  std::size_t line = 0, column = 0; ///< 1-based; the column counts code points, as toml++'s
  char32_t code_point = 0;
  bool in_string = false; ///< after a backslash in a multi-line string, else bare
};

/// The first character of `text` that toml++ 3.3 would test as whitespace and cannot, or
/// nullopt. Reads the text as UTF-8; bytes that are not UTF-8 are left for toml++ to refuse.
[[nodiscard]] std::optional<unsafe_character> find_unsafe_character(std::string_view text);

} // namespace shmd::config_detail
