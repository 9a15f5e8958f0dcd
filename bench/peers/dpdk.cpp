// The DPDK peer: rte_mempool with a per-lcore cache (512 objects, DPDK's largest), the
// multi-process reference design, on EAL initialised for this process only.
//
// EAL here: no PCI scan, no telemetry, the main lcore on the benchmark's CPU, logs at
// error level. With enough free hugepages, --in-memory on hugepages; otherwise
// --no-huge (anonymous memory: DPDK's debug mode, which implies legacy memory, so it
// takes a private --file-prefix and --no-shconf instead of --in-memory).
#include "dpdk.hpp"

#include <slab/platform/platform.hpp>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace peers::dpdk {
namespace {

constexpr unsigned eal_megabytes = 3072; // room for 4M values of 256 bytes and headers

struct eal_state {
  bool tried = false;
  bool up = false;
  std::string how; // "on hugepages" / "without hugepages (--no-huge)" / why not
  std::string runtime_dir;
};

eal_state& eal() {
  static eal_state s;
  return s;
}

/// Hugepage memory a new mapping can still count on, in MiB.
std::uint64_t free_hugepage_megabytes() {
  const slab::platform::hugepage_info h = slab::platform::query_hugepages();
  return h.available() * h.page_size / (1024 * 1024);
}

void init_eal(int cpu) {
  eal_state& s = eal();
  if (s.tried) return;
  s.tried = true;
  const bool huge = free_hugepage_megabytes() >= eal_megabytes + 256;
  const std::string prefix = "slab_bench_" + std::to_string(::getpid());
  std::vector<std::string> args = {"slab_bench",
                                   "--no-pci",
                                   "--no-telemetry",
                                   "-l",
                                   std::to_string(cpu),
                                   "--log-level",
                                   "*:error",
                                   "-m",
                                   std::to_string(eal_megabytes)};
  if (huge) {
    args.insert(args.end(), {"--in-memory"});
  } else {
    args.insert(args.end(), {"--no-huge", "--no-shconf", "--file-prefix", prefix});
  }
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    s.how = "EAL init failed: " + std::string(rte_strerror(rte_errno)) + " (args:";
    for (const std::string& a : args)
      s.how += " " + a;
    s.how += ")";
    return;
  }
  s.up = true;
  s.runtime_dir = rte_eal_get_runtime_dir();
  s.how = huge ? "EAL on hugepages (--in-memory)" : "EAL without hugepages (--no-huge)";
}

/// rte_mempool of P, sized for `capacity` values plus what the lcore cache may hold.
template <class P> struct mempool_peer {
  static constexpr std::string_view name = "rte_mempool";
  using key_type = P*;
  static constexpr unsigned cache_size = 512; // RTE_MEMPOOL_CACHE_MAX_SIZE

  explicit mempool_peer(std::size_t capacity) {
    static unsigned serial = 0;
    const std::string nm = "sb" + std::to_string(serial++);
    const auto n = static_cast<unsigned>(capacity + 2 * cache_size);
    mp = rte_mempool_create(nm.c_str(), n, sizeof(P), cache_size, 0, nullptr, nullptr, nullptr,
                            nullptr, SOCKET_ID_ANY, 0);
    if (mp == nullptr) {
      throw std::runtime_error("rte_mempool_create(" + std::to_string(n) +
                               " objects): " + rte_strerror(rte_errno));
    }
  }
  mempool_peer(const mempool_peer&) = delete;
  mempool_peer& operator=(const mempool_peer&) = delete;
  ~mempool_peer() { rte_mempool_free(mp); }

  key_type insert(const P& v) {
    void* o = nullptr;
    if (rte_mempool_get(mp, &o) != 0) throw std::bad_alloc();
    return ::new (o) P(v);
  }
  P* get(key_type k) noexcept { return k; }
  void erase(key_type k) noexcept {
    k->~P();
    rte_mempool_put(mp, k);
  }
  rte_mempool* mp = nullptr;
};

} // namespace

workloads::peer_entry entry(int cpu) {
  init_eal(cpu);
  workloads::peer_entry e = workloads::entry<mempool_peer>(false);
  if (!eal().up) e.not_run = eal().how;
  return e;
}

std::string describe() {
  return "rte_mempool: " + (eal().tried ? eal().how : std::string("EAL not started"));
}

void shutdown() noexcept {
  eal_state& s = eal();
  if (!s.up) return;
  rte_eal_cleanup();
  s.up = false;
  std::error_code ec;
  if (!s.runtime_dir.empty()) std::filesystem::remove_all(s.runtime_dir, ec);
}

} // namespace peers::dpdk
