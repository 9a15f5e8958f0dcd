// slab::error: what every fallible operation of the project throws, with a code a
// program can switch on and a message a person can act on.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace slab {

enum class errc : std::uint8_t {
  exhausted = 1,     ///< no free slot and no room to grow (max capacity reached)
  out_of_memory,     ///< the backing memory could not be obtained
  hugepages,         ///< hugepages were required and are not available
  mlock,             ///< memory could not be locked (RLIMIT_MEMLOCK too low?)
  numa,              ///< NUMA binding or placement failed
  invalid_argument,  ///< a caller passed something impossible (sizes, names)
  config,            ///< a configuration file is malformed
  no_daemon,         ///< shmd is not running at the socket
  permission_denied, ///< the daemon refused the caller's credentials
  abi_mismatch,      ///< client and daemon speak different protocol versions
  protocol,          ///< a malformed or unexpected message
  type_mismatch,     ///< T does not fit the pool's slot size or alignment
  not_found,         ///< no such pool
  system,            ///< an OS call failed; the message names it and errno
  not_supported,     ///< the pool's mode forbids it (erase in an arena pool)
};

/// A short stable name for a code ("exhausted", "no_daemon", ...).
constexpr std::string_view to_string(errc c) noexcept {
  switch (c) {
  case errc::exhausted: return "exhausted";
  case errc::out_of_memory: return "out_of_memory";
  case errc::hugepages: return "hugepages";
  case errc::mlock: return "mlock";
  case errc::numa: return "numa";
  case errc::invalid_argument: return "invalid_argument";
  case errc::config: return "config";
  case errc::no_daemon: return "no_daemon";
  case errc::permission_denied: return "permission_denied";
  case errc::abi_mismatch: return "abi_mismatch";
  case errc::protocol: return "protocol";
  case errc::type_mismatch: return "type_mismatch";
  case errc::not_found: return "not_found";
  case errc::system: return "system";
  case errc::not_supported: return "not_supported";
  }
  return "unknown";
}

class error : public std::runtime_error {
public:
  error(errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] errc code() const noexcept { return code_; }

private:
  errc code_;
};

} // namespace slab
