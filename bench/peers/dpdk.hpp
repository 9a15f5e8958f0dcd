// The DPDK peer, rte_mempool with a per-lcore cache, behind a plain interface: its
// translation unit alone is compiled with DPDK's flags (which include -march=corei7),
// and it is a stub that says why when the build found no libdpdk.
#pragma once

#include <string>

#include "workloads.hpp"

namespace peers::dpdk {

/// The peer, "rte_mempool". The first call initialises DPDK's EAL for this process,
/// pinned to `cpu` (its main lcore): on hugepages when enough are free, else with
/// --no-huge. When that fails, or DPDK was not built in, the entry's not_run says why.
workloads::peer_entry entry(int cpu);

/// How EAL runs (or why it does not), for the report.
std::string describe();

/// Releases EAL and its run-time directory; safe to call when EAL never started.
void shutdown() noexcept;

} // namespace peers::dpdk
