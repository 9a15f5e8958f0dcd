// Helpers shared by the platform part's translation units (not installed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include <slab/platform/platform.hpp>

namespace slab::platform::detail {

inline std::string errno_text(int e) { return std::generic_category().message(e); }

/// "4 KiB", "2 MiB", "1536 KiB": exact, so a message never hides a rounding.
inline std::string format_bytes(std::uint64_t n) {
  static constexpr std::string_view units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  while (u + 1 < std::size(units) && n >= 1024 && n % 1024 == 0) {
    n /= 1024;
    ++u;
  }
  return std::to_string(n) + " " + std::string(units[u]);
}

inline std::string format_limit(std::uint64_t n) {
  return n == std::numeric_limits<std::uint64_t>::max() ? "unlimited" : format_bytes(n);
}

/// Rounds n up to a multiple of the power of two `unit`; 0 when that overflows.
inline std::size_t round_up(std::size_t n, std::size_t unit) noexcept {
  if (n > std::numeric_limits<std::size_t>::max() - (unit - 1)) return 0;
  return (n + unit - 1) & ~(unit - 1);
}

inline bool is_pow2(std::size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

inline sys_error fail(int err, std::string what, sys_cause cause) {
  return sys_error{err, std::move(what), cause};
}

inline std::string describe_pool(const hugepage_info& h) {
  return "HugePages_Total " + std::to_string(h.total) + ", HugePages_Free " +
         std::to_string(h.free) + ", HugePages_Rsvd " + std::to_string(h.reserved) +
         "; reserve more with vm.nr_hugepages";
}

} // namespace slab::platform::detail
