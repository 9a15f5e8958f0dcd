// counters_cost: what the per-context counters (core::context_counters, bumped by
// core::cache on every alloc and free, summed by readers) cost the hot path.
//
// The same source is built twice: counters_cost, and counters_cost_off with
// SLAB_BENCH_NO_COUNTERS, which compiles the bumps out (cache.hpp; nothing else uses the
// switch). The first runs the second as a child for each repetition, A B A B on the
// same CPU with the same clock figures, so both builds meet the same machine state.
// Measured on core::cache over a local_region (the client's hot path without the
// client library around it):
//   alloc_free  alloc then free of one slot, 16 pairs per sample: the cache-hit path
//   churn       4096 live slots, erase a random one and allocate, 16 pairs per sample
// Cycles per pair, net of the timer, median of each run.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <slab/core/cache.hpp>
#include <slab/core/local_region.hpp>

#include "latency.hpp"
#include "peers/peers.hpp"

namespace {

#ifdef SLAB_BENCH_NO_COUNTERS
constexpr const char* build_name = "counters compiled out";
#else
constexpr const char* build_name = "counters (as shipped)";
#endif

using cache_t = slab::core::cache<slab::core::local_region>;

struct figures {
  double alloc_free = 0, churn = 0;
};

constexpr std::size_t batch = 16;

template <class F>
double time_batches(latency::recorder& rec, const latency::clock_info& clk, std::size_t samples,
                    F pair) {
  for (std::size_t i = 0; i < 2000; ++i)
    pair();
  rec.clear();
  for (std::size_t s = 0; s < samples; ++s)
    rec.time([&] {
      for (std::size_t i = 0; i < batch; ++i)
        pair();
    });
  return latency::summarize_batch(rec.samples(), clk, batch).p50;
}

figures measure(const latency::clock_info& clk, std::size_t samples) {
  constexpr std::uint64_t slots = 1 << 16;
  slab::core::local_region r(slots, 2);
  r.grow(slots);
  cache_t c(r, r.attach());
  if (!c.ready()) throw std::runtime_error("no magazine for the context");
  latency::recorder rec(samples);
  figures f;
  f.alloc_free = time_batches(rec, clk, samples, [&] {
    const slab::key k = c.alloc();
    latency::keep(k);
    c.free(k);
  });
  std::vector<slab::key> live(4096);
  for (slab::key& k : live)
    k = c.alloc();
  peers::splitmix64 rng(42);
  f.churn = time_batches(rec, clk, samples, [&] {
    slab::key& k = live[rng.below(live.size())];
    c.free(k);
    k = c.alloc();
  });
  return f;
}

struct options {
  int cpu = -1;
  std::size_t reps = 5, samples = 1'000'000;
  std::string pair; // the counters_cost_off binary
  bool child = false;
  double hz = 0, overhead = 0;
  std::uint64_t step = 1;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--child")
      o.child = true;
    else if (a == "--quick")
      o.reps = 1, o.samples = 50'000;
    else if (a == "--reps")
      o.reps = std::max(1UL, std::stoul(next()));
    else if (a == "--cpu")
      o.cpu = std::stoi(next());
    else if (a == "--pair")
      o.pair = next();
    else if (a == "--samples")
      o.samples = std::stoul(next());
    else if (a == "--hz")
      o.hz = std::stod(next());
    else if (a == "--overhead")
      o.overhead = std::stod(next());
    else if (a == "--step")
      o.step = std::stoull(next());
    else
      throw std::invalid_argument("usage: counters_cost [--reps K] [--cpu N] [--quick] "
                                  "[--pair PATH_TO_counters_cost_off]");
  }
  return o;
}

figures run_child(const options& o, const latency::run_info& info, double overhead) {
  char cmd[1024];
  std::snprintf(cmd, sizeof cmd,
                "'%s' --child --cpu %d --samples %zu --hz %.17g --overhead %.17g --step %llu",
                o.pair.c_str(), info.cpu, o.samples, info.tsc_hz, overhead,
                static_cast<unsigned long long>(info.tsc_step));
  FILE* f = ::popen(cmd, "r");
  if (f == nullptr) throw std::runtime_error("popen failed");
  figures x;
  const int got = std::fscanf(f, "%lf %lf", &x.alloc_free, &x.churn);
  if (::pclose(f) != 0 || got != 2) throw std::runtime_error("the paired build failed: " + o.pair);
  return x;
}

int run(const options& o) {
  if (o.child) {
    latency::pin_to_cpu(o.cpu >= 0 ? o.cpu : latency::last_allowed_cpu());
    const figures f = measure({o.hz, o.step, o.overhead}, o.samples);
    std::printf("%.6g %.6g\n", f.alloc_free, f.churn);
    return 0;
  }
  latency::run_info info;
  latency::begin_run(info, "counters_cost", o.cpu, o.reps, o.samples < 1'000'000);
  latency::recorder rec(o.samples);
  std::vector<double> on_af, on_ch, off_af, off_ch;
  for (std::size_t r = 0; r < o.reps; ++r) {
    const double oh =
        latency::measure_timer(rec, o.samples, {info.tsc_hz, info.tsc_step, 0}).overhead;
    info.overhead.push_back(oh);
    const figures a = measure({info.tsc_hz, info.tsc_step, oh}, o.samples);
    on_af.push_back(a.alloc_free);
    on_ch.push_back(a.churn);
    if (o.pair.empty()) continue;
    const figures b = run_child(o, info, oh);
    off_af.push_back(b.alloc_free);
    off_ch.push_back(b.churn);
  }
  const auto show = [](const char* what, const std::vector<double>& v) {
    const latency::spread s = latency::spread_of(v);
    std::printf("  %-34s %6.1f [%.1f-%.1f]\n", what, s.median, s.min, s.max);
  };
  std::printf("counters_cost: cpu %d, %zu rep(s) A B A B, cycles per pair (p50 of batches "
              "of %zu), timer overhead subtracted\n",
              info.cpu, o.reps, batch);
  std::printf("alloc+free, cache hit:\n");
  show(build_name, on_af);
  if (!off_af.empty()) show("counters compiled out", off_af);
  std::printf("churn (free random of 4096 live, alloc):\n");
  show(build_name, on_ch);
  if (!off_ch.empty()) show("counters compiled out", off_ch);
  if (!off_af.empty()) {
    std::printf("cost of the counters: alloc+free %+.1f cycles, churn %+.1f cycles per pair\n",
                latency::spread_of(on_af).median - latency::spread_of(off_af).median,
                latency::spread_of(on_ch).median - latency::spread_of(off_ch).median);
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "counters_cost: %s\n", e.what());
    return 2;
  }
}
