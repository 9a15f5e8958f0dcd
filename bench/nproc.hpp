// N processes churning one pool, the per-process loop: each process keeps `live` values
// of its own and churns them in bursts of `burst` erases of random own keys, then as
// many inserts; every operation timed; throughput from the wall time of the whole loop.
// pool_latency runs it for the pool and Boost.Interprocess (forked children),
// dpdk_procs for rte_mempool (EAL secondaries): the same loop for every peer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <slab/core/shared_layout.hpp>

#include "latency.hpp"
#include "peers/peers.hpp"

namespace nproc {

/// In memory every process maps: the start line, and each process's results.
struct shared {
  static constexpr std::size_t max_procs = 2;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  latency::stats results[max_procs];
};

/// Four magazines each way: every burst goes through the depot, whatever K is.
constexpr std::size_t burst = 4 * slab::core::magazine_slots;

/// A random index below marks.size() not drawn yet in this burst (`epoch`): a burst
/// never erases the same key twice.
inline std::size_t distinct_draw(peers::splitmix64& rng, std::vector<std::uint32_t>& marks,
                                 std::uint32_t epoch) {
  for (;;) {
    const std::size_t j = rng.below(marks.size());
    if (marks[j] != epoch) {
      marks[j] = epoch;
      return j;
    }
  }
}

/// One process's churn: bursts of `burst` erases of random own keys, then as many
/// inserts; every operation timed; throughput from the wall time of the whole loop.
template <class Peer>
latency::stats churn_bursts(Peer& p, std::size_t live, std::size_t ops, std::uint64_t seed,
                            const latency::clock_info& clk, shared& sh) {
  std::vector<typename Peer::key_type> keys = peers::fill(p, live);
  latency::recorder rec(ops + 2 * burst);
  peers::splitmix64 rng(seed);
  sh.ready.fetch_add(1);
  while (!sh.go.load(std::memory_order_acquire)) {}
  std::vector<std::size_t> slots(burst);
  std::vector<std::uint32_t> marks(keys.size(), 0);
  std::uint32_t epoch = 0;
  const std::uint64_t t0 = latency::tsc_start();
  for (std::size_t done = 0; done < ops; done += 2 * burst) {
    ++epoch;
    for (std::size_t i = 0; i < burst; ++i) {
      slots[i] = distinct_draw(rng, marks, epoch);
      const auto k = keys[slots[i]];
      rec.time([&] { p.erase(k); });
    }
    for (std::size_t i = 0; i < burst; ++i) {
      const peers::Payload64 v = peers::make_payload<peers::Payload64>(done + i);
      keys[slots[i]] = rec.time([&] { return p.insert(v); });
    }
  }
  const std::uint64_t t1 = latency::tsc_stop();
  latency::stats s = latency::summarize(rec.samples(), clk);
  s.ops_per_s = static_cast<double>(rec.size()) * clk.hz / static_cast<double>(t1 - t0);
  peers::dispose(p, keys);
  return s;
}

} // namespace nproc
