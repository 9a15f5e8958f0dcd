// slab_throughput: Google Benchmark loops (no per-operation timer) over the same peers as
// slab_latency, plus a plain array for the get benchmarks.
//
//   emplace_erase   insert a value and erase it again: with a LIFO free list the same
//                   hot slot every time, so this is the bookkeeping cost alone.
//   get_random      look up every key once in a shuffled order and read the value: cache
//                   and TLB misses included once the working set outgrows the caches.
//   get_sequential  the same in insertion order: the prefetcher's best case.
// Sizes: 4K values (256 KiB, fits in L2) and 1M values (64 MiB, main memory).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include "peers/peers.hpp"

namespace {

using peers::Payload64;

template <class P = Payload64> using array_peer = peers::array_peer<P>;

template <class Peer> void emplace_erase(benchmark::State& st) {
  const auto live = static_cast<std::size_t>(st.range(0));
  Peer p(live + 1);
  auto keys = peers::fill(p, live); // a populated container, not an empty one
  const auto v = peers::make_payload<peers::payload_of<Peer>>(7);
  for (auto _ : st) {
    auto k = p.insert(v);
    benchmark::DoNotOptimize(k);
    p.erase(k);
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations());
}

/// Looks keys up in order, wrapping around, and sums one word of each value: the sum
/// makes every value really read (a DoNotOptimize of the word itself may be satisfied
/// with its address), while independent lookups may still overlap, as in real use.
template <class Peer>
void get_loop(benchmark::State& st, Peer& p, const std::vector<typename Peer::key_type>& keys) {
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : st) {
    sum += p.get(keys[i])->w[0];
    i = i + 1 == keys.size() ? 0 : i + 1;
  }
  benchmark::DoNotOptimize(sum);
  st.SetItemsProcessed(st.iterations());
}

template <class Peer> void get_random(benchmark::State& st) {
  const auto n = static_cast<std::size_t>(st.range(0));
  Peer p(n);
  auto keys = peers::fill(p, n);
  peers::splitmix64 rng(42);
  for (std::size_t i = n; i > 1; --i)
    std::swap(keys[i - 1], keys[rng.below(i)]); // shuffle
  get_loop(st, p, keys);
}

template <class Peer> void get_sequential(benchmark::State& st) {
  const auto n = static_cast<std::size_t>(st.range(0));
  Peer p(n);
  auto keys = peers::fill(p, n);
  get_loop(st, p, keys);
}

constexpr std::int64_t small = 1 << 12, large = 1 << 20;

} // namespace

BENCHMARK(emplace_erase<peers::slab_peer<>>)
    ->Name("emplace_erase/slab::slab")
    ->Arg(small)
    ->Arg(large);
BENCHMARK(emplace_erase<peers::vec_slab_peer<>>)
    ->Name("emplace_erase/vec_slab")
    ->Arg(small)
    ->Arg(large);
BENCHMARK(emplace_erase<peers::floor_peer<>>)->Name("emplace_erase/floor")->Arg(small)->Arg(large);

BENCHMARK(get_random<peers::slab_peer<>>)->Name("get_random/slab::slab")->Arg(small)->Arg(large);
BENCHMARK(get_random<peers::vec_slab_peer<>>)->Name("get_random/vec_slab")->Arg(small)->Arg(large);
BENCHMARK(get_random<peers::floor_peer<>>)->Name("get_random/floor")->Arg(small)->Arg(large);
BENCHMARK(get_random<array_peer<>>)->Name("get_random/array")->Arg(small)->Arg(large);

BENCHMARK(get_sequential<peers::slab_peer<>>)
    ->Name("get_sequential/slab::slab")
    ->Arg(small)
    ->Arg(large);
BENCHMARK(get_sequential<peers::vec_slab_peer<>>)
    ->Name("get_sequential/vec_slab")
    ->Arg(small)
    ->Arg(large);
BENCHMARK(get_sequential<peers::floor_peer<>>)
    ->Name("get_sequential/floor")
    ->Arg(small)
    ->Arg(large);
BENCHMARK(get_sequential<array_peer<>>)->Name("get_sequential/array")->Arg(small)->Arg(large);

BENCHMARK_MAIN();
