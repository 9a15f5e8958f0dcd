#include "systemd.hpp"

#include <cstdint>

#include <systemd/sd-daemon.h>

namespace shmd::systemd {

void notify(const std::string& state) noexcept { (void)::sd_notify(0, state.c_str()); }

std::chrono::microseconds watchdog_interval() noexcept {
  std::uint64_t usec = 0;
  // 0: keep WATCHDOG_USEC and WATCHDOG_PID; shmd starts no children that could misread them.
  if (::sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds{0};
  return std::chrono::microseconds{static_cast<std::chrono::microseconds::rep>(usec)};
}

} // namespace shmd::systemd
