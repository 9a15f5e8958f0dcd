// handles_latency: handles, claims and the arena beside the key path they wrap, per
// operation, in TSC cycles net of the timer (latency.hpp has the method).
//
// Workloads (each sample one timed operation, 64-byte values, slab::slab on the heap):
//   alloc_free  a value made and destroyed, the slot reused at once (LIFO):
//                 keyed        emplace, then erase by key (the path the handles wrap)
//                 unique_slot  make_unique, then the handle's destructor
//                 shared_slot  make_shared, then the last handle's destructor
//                 claim+write  claim, write, then erase by key
//   share       copy of a shared_slot and drop of the copy (count up, count down)
//   get         random lookup among n live values, reading one word of the value:
//                 keyed        slab::get: tier table, slot header (generation), value
//                 arena        slab::arena::get: tier table, value (no generation)
//                 unique_slot  through a handle: the pointer it carries, then the value
//               (the key or the handle is read before the timed region)
// Peers run interleaved within each repetition, on the same CPU.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <slab/arena.hpp>
#include <slab/slab.hpp>

#include "latency.hpp"

namespace {

struct value64 {
  std::uint64_t w[8];
  explicit value64(std::uint64_t seed) noexcept {
    for (std::uint64_t i = 0; i < 8; ++i)
      w[i] = seed * 0x9e3779b97f4a7c15ULL + i;
  }
};
static_assert(sizeof(value64) == 64);

struct options {
  std::size_t reps = 3;
  std::size_t n = 1'000'000;
  bool quick = false;
  int cpu = -1;
};

struct ctx {
  latency::recorder& rec;
  latency::clock_info clk;
  std::size_t n;
};

latency::stats done(ctx& c) { return latency::summarize(c.rec.samples(), c.clk); }

// Runs `op` n times after a warm-up, timing each call.
template <class Op> latency::stats timed(ctx& c, Op op) {
  for (std::size_t i = 0; i < 1000; ++i)
    op(i);
  c.rec.clear();
  for (std::size_t i = 0; i < c.n; ++i)
    c.rec.time([&] { return op(i); });
  return done(c);
}

using book_t = slab::slab<value64>;

latency::stats keyed_alloc_free(ctx& c, book_t& b) {
  return timed(c, [&](std::size_t i) { return b.erase(b.emplace(i)); });
}
latency::stats unique_alloc_free(ctx& c, book_t& b) {
  return timed(c, [&](std::size_t i) {
    const auto h = b.make_unique(i);
    return h.get();
  });
}
latency::stats shared_alloc_free(ctx& c, book_t& b) {
  return timed(c, [&](std::size_t i) {
    const auto h = b.make_shared(i);
    return h.get();
  });
}
latency::stats claim_alloc_free(ctx& c, book_t& b) {
  return timed(c, [&](std::size_t i) { return b.erase(b.claim().write(i)); });
}
latency::stats shared_copy(ctx& c, book_t& b) {
  const slab::shared_slot<value64> h = b.make_shared(1U);
  return timed(c, [&](std::size_t) {
    const slab::shared_slot<value64> copy =
        h; // NOLINT(performance-unnecessary-copy-initialization)
    return copy.get();
  });
}

// Random lookups: the same pseudo-random sequence of positions for every peer.
std::vector<std::uint32_t> positions(std::size_t n, std::size_t count) {
  std::vector<std::uint32_t> v(count);
  std::uint64_t x = 42;
  for (auto& p : v) {
    x += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    p = static_cast<std::uint32_t>((z ^ (z >> 31)) % n);
  }
  return v;
}

// The compiler must not compute the lookup before the timed region starts: `v` is made
// unknown to it there, so every load that depends on it follows the counter read.
template <class T> T opaque(T v) noexcept {
  asm volatile("" : "+r"(v));
  return v;
}

// What the caller holds (a raw key, a handle's pointer) is read before the timed region,
// as pool_latency does: only the lookup and the read of the value are timed.
template <class Held, class Get>
latency::stats random_get(ctx& c, const std::vector<std::uint32_t>& pos,
                          const std::vector<Held>& held, Get get) {
  c.rec.clear();
  for (std::size_t i = 0; i < c.n; ++i) {
    const Held h = held[pos[i]];
    // opaque() on the result too: latency::keep's "r,m" constraint would let the compiler
    // pass the word's address instead of loading it, and time no read at all.
    c.rec.time([&] { return opaque(get(opaque(h))->w[3]); });
  }
  return done(c);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      o.quick = true;
      o.reps = 1;
      o.n = 20'000;
    } else if (a == "--reps" && i + 1 < argc) {
      o.reps = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--n" && i + 1 < argc) {
      o.n = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--cpu" && i + 1 < argc) {
      o.cpu = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: handles_latency [--quick] [--reps K] [--n N] [--cpu N]\n"
                           "unique_slot, shared_slot and claim+write beside emplace+erase by key;\n"
                           "slab::arena's get and a handle's dereference beside slab::get.\n");
      std::exit(a == "--help" ? 0 : 1);
    }
  }
  if (o.reps == 0 || o.n == 0) {
    std::fprintf(stderr, "handles_latency: --reps and --n must be at least 1\n");
    std::exit(1);
  }
  return o;
}

int run(const options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  latency::run_info info;
  latency::begin_run(info, "handles_latency", o.cpu, o.reps, o.quick);
  latency::recorder rec(std::max<std::size_t>(o.n, 1'000'000));
  ctx c{rec, {info.tsc_hz, info.tsc_step, 0}, o.n};
  std::vector<latency::row> rows = {{"timer", "empty", {}},
                                    {"alloc_free", "keyed", {}},
                                    {"alloc_free", "unique_slot", {}},
                                    {"alloc_free", "shared_slot", {}},
                                    {"alloc_free", "claim+write", {}},
                                    {"share", "shared_slot", {}},
                                    {"get", "keyed", {}},
                                    {"get", "arena", {}},
                                    {"get", "unique_slot", {}}};
  const std::vector<std::uint32_t> pos = positions(o.n, o.n);
  for (std::size_t rep = 0; rep < o.reps; ++rep) {
    std::fprintf(stderr, "rep %zu/%zu\n", rep + 1, o.reps);
    const latency::timer_result t =
        latency::measure_timer(rec, o.quick ? 100'000 : 2'000'000, c.clk);
    c.clk.overhead = t.overhead;
    info.overhead.push_back(t.overhead);
    rows[0].reps.push_back(t.floor);
    {
      book_t b;
      rows[1].reps.push_back(keyed_alloc_free(c, b));
      rows[2].reps.push_back(unique_alloc_free(c, b));
      rows[3].reps.push_back(shared_alloc_free(c, b));
      rows[4].reps.push_back(claim_alloc_free(c, b));
      rows[5].reps.push_back(shared_copy(c, b));
    }
    {
      book_t b;
      book_t hb; // declared before its handles: they must die first
      slab::arena<value64> a;
      std::vector<std::uint64_t> keys, akeys; // raw keys
      std::vector<slab::unique_slot<value64>> handles;
      std::vector<value64*> held; // what a handle carries: its value's address
      keys.reserve(o.n);
      akeys.reserve(o.n);
      handles.reserve(o.n);
      held.reserve(o.n);
      for (std::size_t i = 0; i < o.n; ++i) {
        keys.push_back(b.emplace(i).raw());
        akeys.push_back(a.emplace(i).raw());
        handles.push_back(hb.make_unique(i));
        held.push_back(handles.back().get());
      }
      rows[6].reps.push_back(
          random_get(c, pos, keys, [&](std::uint64_t k) { return b.get(slab::key::from_raw(k)); }));
      rows[7].reps.push_back(random_get(
          c, pos, akeys, [&](std::uint64_t k) { return a.get(slab::key::from_raw(k)); }));
      rows[8].reps.push_back(random_get(c, pos, held, [](value64* p) { return p; }));
    }
  }
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  latency::print_table(std::cout, info, rows);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "handles_latency: %s\n", e.what());
    return 2;
  }
}
