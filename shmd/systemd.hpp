// shmd's word to systemd (sd_notify): the one file that speaks to it, so that the rest of
// the daemon reads as plain C++. Outside systemd (no NOTIFY_SOCKET) every call here does
// nothing, which is what a daemon started by hand or by a test wants.
#pragma once

#include <chrono>
#include <string>

namespace shmd::systemd {

/// Sends one notification: "READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...".
void notify(const std::string& state) noexcept;

/// What systemd asked of the watchdog: WATCHDOG_USEC when WATCHDOG_PID is unset or this
/// process (sd_watchdog_enabled), else zero (disabled).
[[nodiscard]] std::chrono::microseconds watchdog_interval() noexcept;

} // namespace shmd::systemd
