// slabctl top: a live view of every pool, refreshing in place on a terminal.
#pragma once

#include <chrono>
#include <string>

namespace slabctl {

/// Runs until q, Ctrl-C (SIGINT), SIGTERM or SIGHUP; restores the terminal whatever
/// ends it. Returns the exit code (0; shmd going away is shown and retried, not fatal).
int run_top(const std::string& socket, std::chrono::milliseconds interval);

} // namespace slabctl
