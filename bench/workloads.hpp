// workloads: the measured loops every latency program runs, generic over a peer
// (peers/peers.hpp: insert, get, erase, key_type), and the registry of peers by name.
//
//   growth     insert n values into an EMPTY container, timing every insert: growth,
//              reallocation and first-touch page faults included.
//   churn      fill to n values (untimed), then `ops` random erase+insert pairs, each
//              pair one sample: the unit a steady-state user pays for (a slot freed and
//              one taken). The key to erase is drawn from a seeded SplitMix64 before
//              the timed region; the new key is stored after it.
//   lifecycle  what a matching engine does with an order: fill to n values (untimed),
//              then `ops` times, on a random live key: get the value, read it and
//              change it (a fill reduces the quantity), erase it, insert a new one.
//              One sample per order. Unlike churn, every peer touches the value (the
//              pool's header check and DPDK's object read both pay for the line).
//   get_random, get_seq
//              n live values; each sample times a BATCH of `batch` gets (keys loaded
//              untimed into a small array first) reading one word of each value, and
//              is divided by the batch. One get of a cached value costs less than one
//              step of the TSC (26 cycles on AMD Zen), so a get timed alone reads 0 or
//              one step at random; a batch is long enough to resolve. Random: keys in a
//              seeded shuffled order (cache and TLB misses); sequential: in the
//              values' address order (the prefetcher's best case; for a fresh container
//              the insertion order, for a pool that served earlier workloads not). The gets of one
//              batch are independent, so their misses overlap as they would in real code.
//   alloc_free insert then erase of the same value, `batch` pairs per sample, divided:
//              the cache-hit path (LIFO: the same slot every time), below the clock's
//              resolution one pair at a time.
//
// Batch samples are per operation means over the batch: their tails are smoothed over
// `batch` operations (a 100K-cycle interruption in a batch of 16 reads as 6K).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "latency.hpp"
#include "peers/peers.hpp"

namespace workloads {

enum class kind { growth, churn, lifecycle, get_random, get_seq, alloc_free };

inline const char* kind_name(kind k) noexcept {
  switch (k) {
  case kind::growth: return "growth";
  case kind::churn: return "churn";
  case kind::lifecycle: return "lifecycle";
  case kind::get_random: return "get_random";
  case kind::get_seq: return "get_seq";
  case kind::alloc_free: return "alloc_free";
  }
  return "?";
}

struct workload {
  std::string name;      ///< how reports call it, e.g. growth_1M/64B
  kind k;                ///< the loop
  std::size_t n;         ///< values inserted (growth) or kept live (churn, gets)
  std::size_t ops;       ///< timed operations (churn: pairs; gets, alloc_free: operations)
  std::size_t payload;   ///< bytes per value: 64 or 256
  std::size_t batch = 1; ///< operations per sample (gets, alloc_free)
  /// growth: untimed TSC cycles between inserts, a producer paced below what the daemon
  /// can prepare memory for (0: inserts back to back, which outruns any daemon)
  std::uint64_t gap = 0;

  /// Samples the recorder must hold.
  [[nodiscard]] std::size_t samples() const noexcept {
    return k == kind::growth ? n : ops / std::max<std::size_t>(batch, 1);
  }
};

/// What every measurement needs: the sample buffer, the clock's rate and overhead.
struct context {
  latency::recorder& rec;
  latency::clock_info clk;
  bool prime = true; ///< fault in and free memory before growth (latency::prime_free_memory)
  std::uint64_t seed = 42;
};

template <class Peer> using key_of = typename Peer::key_type;

/// Page faults the calling thread has taken so far (minor and major).
inline long page_faults() noexcept {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru); // this thread: the hot path, not a client's mapper thread
  return ru.ru_minflt + ru.ru_majflt;
}

template <class Peer> latency::stats growth(context& c, const workload& w) {
  using P = peers::payload_of<Peer>;
  { // warm-up: the same code path on a throwaway container
    const std::size_t m = std::min<std::size_t>(w.n, 1 << 16);
    Peer warm(m);
    peers::dispose(warm, peers::fill(warm, m));
  }
  std::vector<key_of<Peer>> keys(w.n);
  // Room for the largest footprint: vec_slab's old and new arrays during its last copy.
  if (c.prime) latency::prime_free_memory(w.n * 2 * sizeof(P));
  Peer p(w.n); // empty (the floor and the arenas preallocate here, untimed)
  c.rec.clear();
  const long faults0 = page_faults();
  for (std::size_t i = 0; i < w.n; ++i) {
    const P v = peers::make_payload<P>(i);
    keys[i] = c.rec.time([&] { return p.insert(v); });
    if (w.gap != 0) {
      const std::uint64_t until = latency::tsc_start() + w.gap;
      while (latency::tsc_start() < until)
        __builtin_ia32_pause();
    }
  }
  const long faults = page_faults() - faults0;
  latency::stats s = latency::summarize(c.rec.samples(), c.clk);
  s.faults = static_cast<double>(faults);
  peers::dispose(p, keys);
  return s;
}

// `ops` erase+insert pairs on random live keys; timed into rec when Timed.
template <bool Timed, class Peer>
void churn_ops(Peer& p, std::vector<key_of<Peer>>& keys, peers::splitmix64& rng, std::size_t ops,
               latency::recorder& rec) {
  using P = peers::payload_of<Peer>;
  for (std::size_t i = 0; i < ops; ++i) {
    const std::size_t j = rng.below(keys.size());
    const key_of<Peer> k = keys[j];
    const P v = peers::make_payload<P>(i);
    if constexpr (Timed) {
      keys[j] = rec.time([&] {
        p.erase(k);
        return p.insert(v);
      });
    } else {
      p.erase(k);
      keys[j] = p.insert(v);
    }
  }
}

template <class Peer> latency::stats churn(context& c, const workload& w) {
  Peer p(w.n);
  std::vector<key_of<Peer>> keys = peers::fill(p, w.n);
  peers::splitmix64 rng(c.seed); // the same seed for every peer of a repetition
  churn_ops<false>(p, keys, rng, std::min<std::size_t>(w.ops, 100'000), c.rec); // warm-up
  c.rec.clear();
  churn_ops<true>(p, keys, rng, w.ops, c.rec);
  const latency::stats s = latency::summarize(c.rec.samples(), c.clk);
  peers::dispose(p, keys);
  return s;
}

// `ops` order lifecycles on random live keys; timed into rec when Timed.
template <bool Timed, class Peer>
void lifecycle_ops(Peer& p, std::vector<key_of<Peer>>& keys, peers::splitmix64& rng,
                   std::size_t ops, latency::recorder& rec) {
  using P = peers::payload_of<Peer>;
  for (std::size_t i = 0; i < ops; ++i) {
    const std::size_t j = rng.below(keys.size());
    const key_of<Peer> k = keys[j];
    const P fresh = peers::make_payload<P>(i);
    const auto order = [&] {
      P* v = p.get(k);
      v->w[1] -= v->w[2] & 7; // a fill: the quantity goes down by what was traded
      latency::keep(v->w[1]);
      p.erase(k);
      return p.insert(fresh);
    };
    if constexpr (Timed)
      keys[j] = rec.time(order);
    else
      keys[j] = order();
  }
}

template <class Peer> latency::stats lifecycle(context& c, const workload& w) {
  Peer p(w.n);
  std::vector<key_of<Peer>> keys = peers::fill(p, w.n);
  peers::splitmix64 rng(c.seed);
  lifecycle_ops<false>(p, keys, rng, std::min<std::size_t>(w.ops, 100'000), c.rec); // warm-up
  c.rec.clear();
  lifecycle_ops<true>(p, keys, rng, w.ops, c.rec);
  const latency::stats s = latency::summarize(c.rec.samples(), c.clk);
  peers::dispose(p, keys);
  return s;
}

/// Largest batch the get and alloc_free loops take.
inline constexpr std::size_t max_batch = 64;

template <class Peer> latency::stats gets(context& c, const workload& w) {
  Peer p(w.n);
  std::vector<key_of<Peer>> keys = peers::fill(p, w.n);
  std::vector<key_of<Peer>> order = keys;
  if (w.k == kind::get_seq) {             // in address order: a pool that served earlier workloads
    std::sort(order.begin(), order.end(), // hands out its free slots scrambled
              [&](const key_of<Peer>& a, const key_of<Peer>& b) { return p.get(a) < p.get(b); });
  } else {
    peers::splitmix64 rng(c.seed);
    for (std::size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[rng.below(i)]);
  }
  const std::size_t b = std::clamp<std::size_t>(w.batch, 1, max_batch);
  key_of<Peer> batch[max_batch];
  std::size_t at = 0;
  const auto run = [&](std::size_t samples, bool timed) {
    for (std::size_t s = 0; s < samples; ++s) {
      for (std::size_t i = 0; i < b; ++i, ++at)
        batch[i] = order[at % order.size()];
      const auto body = [&] {
        std::uint64_t sum = 0;
        for (std::size_t i = 0; i < b; ++i)
          sum += p.get(batch[i])->w[3];
        return sum;
      };
      if (timed)
        c.rec.time(body);
      else
        latency::keep(body());
    }
  };
  run(std::min<std::size_t>(w.ops / b, 10'000), false); // warm-up
  c.rec.clear();
  run(w.ops / b, true);
  const latency::stats s = latency::summarize_batch(c.rec.samples(), c.clk, b);
  peers::dispose(p, keys);
  return s;
}

template <class Peer> latency::stats alloc_free(context& c, const workload& w) {
  using P = peers::payload_of<Peer>;
  Peer p(std::max<std::size_t>(w.n, 1024));
  const P v = peers::make_payload<P>(7);
  const std::size_t b = std::clamp<std::size_t>(w.batch, 1, max_batch);
  const auto pairs = [&] {
    for (std::size_t i = 0; i < b; ++i) {
      const key_of<Peer> k = p.insert(v);
      latency::keep(k);
      p.erase(k);
    }
  };
  for (int warm = 0; warm < 1000; ++warm)
    pairs();
  c.rec.clear();
  for (std::size_t s = 0; s < w.ops / b; ++s)
    c.rec.time(pairs);
  return latency::summarize_batch(c.rec.samples(), c.clk, b);
}

/// Runs workload w on Peer.
template <class Peer> latency::stats run(context& c, const workload& w) {
  switch (w.k) {
  case kind::growth: return growth<Peer>(c, w);
  case kind::churn: return churn<Peer>(c, w);
  case kind::lifecycle: return lifecycle<Peer>(c, w);
  case kind::get_random:
  case kind::get_seq: return gets<Peer>(c, w);
  case kind::alloc_free: return alloc_free<Peer>(c, w);
  }
  return {};
}

/// Runs workload w on Peer<payload<64>> or Peer<payload<256>>, as w.payload says.
template <template <class> class Peer> latency::stats run_sized(context& c, const workload& w) {
  if (w.payload == 256) return run<Peer<peers::Payload256>>(c, w);
  return run<Peer<peers::Payload64>>(c, w);
}

/// One peer as the programs list it: a name, whether it can run here and why not, and
/// how to run a workload on it.
struct peer_entry {
  std::string name;
  std::string not_run; ///< empty when the peer runs; else why not (not built, init failed)
  bool keyed = true;   ///< looks values up by key (the get workloads apply)
  std::function<latency::stats(context&, const workload&)> run = {};
};

template <template <class> class Peer> peer_entry entry(bool keyed = true) {
  return {std::string(Peer<peers::Payload64>::name), "", keyed, &run_sized<Peer>};
}

} // namespace workloads
