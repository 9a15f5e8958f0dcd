// slabctl's exit codes (docs/slabctl.md), and the one place where the client library's
// errors become them.
#pragma once

#include <stdexcept>
#include <string>

#include <slab/error.hpp>

namespace slabctl {

/// slabctl's exit codes, one per kind of outcome a script may want to tell apart.
enum class exit_code : int {
  ok = 0,            ///< done; audit clean; inspect: the key is live
  violations = 1,    ///< audit: a violation persisted while the pool held still
  usage = 2,         ///< bad command line
  no_daemon = 3,     ///< nothing answers at the socket, or shmd went away
  permission = 4,    ///< the socket or shmd refused this user
  unknown_pool = 5,  ///< shmd has no such pool
  stale_key = 6,     ///< inspect: the key names no live value (freed, maybe reused)
  malformed_key = 7, ///< inspect: not a key at all (not a number, even generation, beyond the pool)
  inconclusive = 8,  ///< audit: the pool never held still long enough to judge
  failure = 9,       ///< anything else: protocol or ABI mismatch, an OS call failed
};

/// What slabctl itself throws (a bad command line, a key that is not one): a message
/// for a person, a code for a script. The client library throws slab::error instead,
/// which exit_code_of maps.
class failure : public std::runtime_error {
public:
  failure(exit_code code, const std::string& what) : std::runtime_error(what), code_(code) {}
  [[nodiscard]] exit_code code() const noexcept { return code_; }

private:
  exit_code code_;
};

/// The exit code for an error of the client library (the observer's, mostly).
constexpr exit_code exit_code_of(slab::errc e) noexcept {
  switch (e) {
  case slab::errc::no_daemon: return exit_code::no_daemon;
  case slab::errc::permission_denied: return exit_code::permission;
  case slab::errc::not_found: return exit_code::unknown_pool;
  default: return exit_code::failure; // protocol, abi_mismatch, system, ...
  }
}

} // namespace slabctl
