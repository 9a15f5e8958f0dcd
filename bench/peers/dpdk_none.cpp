// The DPDK peer when the build found no libdpdk (pkg-config libdpdk): reported as not
// built, with the reason, instead of silently missing.
#include "dpdk.hpp"

namespace peers::dpdk {

workloads::peer_entry entry(int /*cpu*/) {
  return {"rte_mempool", "not built: pkg-config found no libdpdk (Debian: libdpdk-dev)", false};
}

std::string describe() { return "rte_mempool: not built (no libdpdk)"; }

void shutdown() noexcept {}

} // namespace peers::dpdk
