// The cross-process handoff, both halves: process A emplaces a value stamped with the
// TSC and passes its key through a single-producer single-consumer ring in shared
// memory; process B, on the other CPU, gets the value by its key, reads the stamp and
// erases it. One key in flight at a time, so that stamp-to-get measures the handoff
// itself, not time spent queued behind earlier keys. pool_latency runs it for the pool
// and Boost.Interprocess (A here, B a forked child), dpdk_procs for rte_mempool (A an
// EAL primary, B a secondary): the same loops for every peer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "latency.hpp"
#include "peers/peers.hpp"

namespace handoff {

/// The ring of keys (or handles, or pointers) and B's results, in memory both map.
struct ring {
  static constexpr std::size_t size = 1024;
  alignas(64) std::atomic<std::uint64_t> head{0};
  alignas(64) std::atomic<std::uint64_t> tail{0};
  alignas(64) std::atomic<bool> consumer_ready{false};
  alignas(64) std::uint64_t keys[size];
  latency::stats results[2]; // written by the consumer: take, stamp-to-get
};

/// B: takes n keys; `side.take(key)` reads the value's stamp and frees it. Timed: the
/// take, and the stamp-to-get delay (not net of the timer: a difference of reads; the
/// stamp is read inside the take, so the delay ends at its start).
template <class Side>
void consume(ring& r, Side side, const latency::clock_info& clk, std::size_t n) {
  latency::recorder take(n), e2e(n);
  r.consumer_ready.store(true, std::memory_order_release); // the producer starts now
  for (std::size_t i = 0; i < n; ++i) {
    while (r.tail.load(std::memory_order_acquire) == r.head.load(std::memory_order_relaxed)) {}
    const std::uint64_t raw = r.keys[r.head.load(std::memory_order_relaxed) % ring::size];
    r.head.fetch_add(1, std::memory_order_release);
    const std::uint64_t t0 = latency::tsc_start();
    const std::uint64_t stamp = side.take(raw);
    const std::uint64_t t1 = latency::tsc_stop();
    take.add(t1 - t0);
    e2e.add(t0 > stamp ? t0 - stamp : 0);
  }
  r.results[0] = latency::summarize(take.samples(), clk);
  latency::clock_info raw_clk = clk;
  raw_clk.overhead = 0; // stamp-to-get is a difference of two reads, not a timed region
  r.results[1] = latency::summarize(e2e.samples(), raw_clk);
}

/// A: once B is ready, sends n values; `emplace(value)` returns the key that goes into
/// the ring, timed into `rec`. `alive()`, asked while waiting for B, false means B died:
/// false back, at the start or mid-run.
template <class Alive, class Emplace>
bool produce(ring& r, latency::recorder& rec, std::size_t n, Alive alive, Emplace emplace) {
  while (!r.consumer_ready.load(std::memory_order_acquire)) {
    if (!alive()) return false;
  }
  rec.clear();
  for (std::size_t i = 0; i < n; ++i) {
    for (std::uint32_t spins = 1;
         r.tail.load(std::memory_order_relaxed) != r.head.load(std::memory_order_acquire);
         ++spins) {
      if (spins % (1U << 20) == 0 && !alive()) return false; // B died mid-run: never spin on
    }
    peers::Payload64 v = peers::make_payload<peers::Payload64>(i);
    v.w[0] = latency::tsc_stop();
    const std::uint64_t k = rec.time([&] { return emplace(v); });
    r.keys[r.tail.load(std::memory_order_relaxed) % ring::size] = k;
    r.tail.fetch_add(1, std::memory_order_release);
  }
  return true;
}

} // namespace handoff
