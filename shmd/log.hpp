// shmd's log: one line per event on stderr. Under systemd (JOURNAL_STREAM set) each line
// starts with the sd-daemon priority prefix "<N>" so journald files it at that level;
// otherwise "shmd: level: message".
#pragma once

#include <string>
#include <string_view>

namespace shmd {

enum class level : int { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

/// Sets the least important level still written ("info" by default).
void set_log_level(level l) noexcept;
/// "debug", "info", ... -> level; false for anything else.
bool parse_level(std::string_view name, level& out) noexcept;

/// Writes one record. Control characters in `message` (line breaks, escapes, NUL) are
/// written as \xNN: text a client chose (its process name, a pool name) can never
/// start a record of its own.
void log(level l, std::string_view message);
/// `text` with every control character (below 0x20, and 0x7f) written as \xNN.
[[nodiscard]] std::string escape_controls(std::string_view text);

inline void log_error(std::string_view m) { log(level::error, m); }
inline void log_warning(std::string_view m) { log(level::warning, m); }
inline void log_notice(std::string_view m) { log(level::notice, m); }
inline void log_info(std::string_view m) { log(level::info, m); }
inline void log_debug(std::string_view m) { log(level::debug, m); }

} // namespace shmd
