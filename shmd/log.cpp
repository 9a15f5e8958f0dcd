#include "log.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace shmd {
namespace {

std::atomic<int> threshold{static_cast<int>(level::info)};
std::mutex out_mu; // the worker and the main thread both log: keep lines whole

const char* name_of(level l) noexcept {
  switch (l) {
  case level::error: return "error";
  case level::warning: return "warning";
  case level::notice: return "notice";
  case level::info: return "info";
  case level::debug: return "debug";
  }
  return "?";
}

bool under_journal() noexcept {
  static const bool j = std::getenv("JOURNAL_STREAM") != nullptr;
  return j;
}

} // namespace

void set_log_level(level l) noexcept { threshold.store(static_cast<int>(l)); }

bool parse_level(std::string_view name, level& out) noexcept {
  for (level l : {level::error, level::warning, level::notice, level::info, level::debug}) {
    if (name == name_of(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

std::string escape_controls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out += c;
      continue;
    }
    char hex[5];
    std::snprintf(hex, sizeof hex, "\\x%02x", u);
    out += hex;
  }
  return out;
}

void log(level l, std::string_view text) {
  if (static_cast<int>(l) > threshold.load(std::memory_order_relaxed)) return;
  // One record per call, whatever a client put in its name or a pool name: a line
  // break followed by "<0>" would otherwise forge an emergency record under journald.
  const std::string message = escape_controls(text);
  std::lock_guard<std::mutex> g(out_mu);
  if (under_journal()) {
    std::fprintf(stderr, "<%d>%.*s\n", static_cast<int>(l), static_cast<int>(message.size()),
                 message.data());
  } else {
    std::fprintf(stderr, "shmd: %s: %.*s\n", name_of(l), static_cast<int>(message.size()),
                 message.data());
  }
  std::fflush(stderr);
}

} // namespace shmd
