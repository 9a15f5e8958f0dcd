// latency: a per-operation latency recorder and its report, for x86-64 Linux.
//
// What it is for: the product of this project is tail latency (p999, max), so every
// operation is timed on its own and every sample is kept; averages hide exactly what we
// sell. This header is a library (clock, CPU pinning, recorder, statistics, report);
// workloads and peers live with the programs that use it.
//
//   latency::pin_to_cpu(latency::last_allowed_cpu());
//   latency::clock_info clk{latency::calibrate_tsc_hz(), latency::tsc_step()};
//   latency::recorder rec(n);                    // preallocated and prefaulted
//   clk.overhead = latency::measure_timer(rec, 1'000'000, clk).overhead;
//   rec.clear();
//   for (...) { prepare(); rec.time([&] { return op(); }); }
//   latency::stats s = latency::summarize(rec.samples(), clk);
//
// Clock. Start is `lfence; rdtsc`: the lfence keeps rdtsc from reading the counter
// before the instructions ahead of it (the untimed preparation) have finished. Stop is
// `rdtscp; lfence`: rdtscp reads the counter only after every earlier instruction has
// executed and its loads are done, and the lfence keeps the next instructions (storing
// the sample, preparing the next operation) from starting before that read. Neither is
// a full serialization (cpuid would be, at ~100+ cycles and a VM exit under
// virtualization): a few instructions after the start may begin early, which shortens
// every sample by the same few cycles and is absorbed by the timer overhead below.
//
// Resolution. Some CPUs advance the TSC in steps, not by 1: AMD Zen adds ~26 cycles
// every 10 ns (a 100 MHz update of a counter that counts at the nominal frequency), so
// a sample is a whole number of steps, and an operation cheaper than one step reads as
// 0 or 1 step at random (the phase between the operation and the update is random, so
// the average is right). `tsc_step` measures the step, and percentiles are read as from
// a histogram with one bin per step (see `percentile`): this resolves the body of a
// distribution below one step; the tails, thousands of steps long, are unaffected.
//
// Timer overhead. `measure_timer` times back-to-back empty start/stop pairs; their
// median is the cost of the clock itself. It is SUBTRACTED, everywhere (never reported
// beside): from every percentile and the max, and from every sample in the total behind
// throughput. The report states the value. The empty pairs' own tails are the noise
// floor of the machine (interrupts, VM exits, preemption): report them as a row, so
// every other row's tails can be judged against a floor measured in the same run.
//
// Throughput: ops / (net cycles of all timed operations / TSC Hz). It is the rate the
// operation alone sustains, back to back, at its measured costs: it excludes the timer
// and each workload's untimed preparation. Timing each operation on its own also stops
// consecutive operations from overlapping in the CPU, so an untimed loop (Google
// Benchmark) runs faster; use this figure to compare peers within one run. When the net
// mean is under one cycle (below what the clock can resolve) throughput is 0, shown "-".
#pragma once

#include <sched.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace latency {

// ---------------------------------------------------------------------------------------
// Clock

/// Counter read that opens a timed region: waits for earlier instructions first.
inline std::uint64_t tsc_start() noexcept {
  std::uint32_t lo = 0;
  std::uint32_t hi = 0;
  asm volatile("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
  return (std::uint64_t{hi} << 32) | lo;
}

/// Counter read that closes a timed region: later instructions wait for it.
inline std::uint64_t tsc_stop() noexcept {
  std::uint32_t lo = 0;
  std::uint32_t hi = 0;
  asm volatile("rdtscp\n\tlfence" : "=a"(lo), "=d"(hi) : : "rcx", "memory");
  return (std::uint64_t{hi} << 32) | lo;
}

/// Makes `v` look used and memory look clobbered, so the compiler neither drops the
/// work that produced it nor moves that work across a counter read.
template <class T> inline void keep(const T& v) noexcept {
  asm volatile("" : : "r,m"(v) : "memory");
}

inline std::uint64_t raw_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

/// One calibration window: TSC ticks over a busy-waited `window` of CLOCK_MONOTONIC_RAW
/// (the raw clock: NTP slewing would otherwise bend the reference).
inline double tsc_hz_once(std::chrono::nanoseconds window) noexcept {
  const auto span_ns = static_cast<std::uint64_t>(window.count());
  const std::uint64_t n0 = raw_ns();
  const std::uint64_t t0 = tsc_start();
  std::uint64_t n1 = n0;
  while (n1 - n0 < span_ns)
    n1 = raw_ns();
  const std::uint64_t t1 = tsc_stop();
  return static_cast<double>(t1 - t0) * 1e9 / static_cast<double>(n1 - n0);
}

/// The smallest step the TSC is seen to advance by (1 on most Intel parts, ~26 cycles on
/// AMD Zen): the resolution of every sample.
inline std::uint64_t tsc_step() noexcept {
  std::uint64_t step = ~std::uint64_t{0};
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t a = tsc_start();
    std::uint64_t b = tsc_start();
    while (b == a)
      b = tsc_start();
    step = std::min(step, b - a);
  }
  return step;
}

/// TSC frequency: the median of `rounds` windows, so one preempted window cannot skew it.
inline double calibrate_tsc_hz(std::chrono::nanoseconds window = std::chrono::milliseconds(50),
                               int rounds = 5) {
  std::vector<double> hz;
  for (int i = 0; i < rounds; ++i)
    hz.push_back(tsc_hz_once(window));
  std::sort(hz.begin(), hz.end());
  return hz[hz.size() / 2];
}

// ---------------------------------------------------------------------------------------
// CPU

/// The highest-numbered CPU this thread may run on: by convention the one least used by
/// the kernel's housekeeping and by interactive work.
inline int last_allowed_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    throw std::system_error(errno, std::generic_category(), "sched_getaffinity");
  for (std::size_t c = CPU_SETSIZE; c-- > 0;)
    if (CPU_ISSET(c, &set)) return static_cast<int>(c);
  throw std::runtime_error("no CPU in this thread's affinity mask");
}

/// Pins the calling thread to `cpu`: the TSC, caches and branch predictors then all
/// belong to one core, and the scheduler cannot migrate the thread mid-sample.
inline void pin_to_cpu(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) throw std::invalid_argument("cpu out of range");
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<std::size_t>(cpu), &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0)
    throw std::system_error(errno, std::generic_category(),
                            "sched_setaffinity(cpu " + std::to_string(cpu) + ")");
}

/// Busy-spins so the core leaves its idle and low-frequency states before measuring.
inline void spin(std::chrono::nanoseconds d) noexcept {
  const std::uint64_t end = raw_ns() + static_cast<std::uint64_t>(d.count());
  while (raw_ns() < end) {}
}

/// Faults in and frees `bytes` of memory, so that the page faults of the measurement that
/// follows cost what they cost on bare metal. Why: under a hypervisor with free page
/// reporting (virtio-balloon, as on this project's VMs) memory the guest freed a few
/// seconds ago has been handed back to the host, and a guest fault on such a page takes a
/// host fault too, ~10x the cost (here ~25K instead of ~2.7K cycles per 4 KiB page).
/// Which peer got such pages would depend on the run's order and pauses. Freshly freed
/// pages sit at the head of the kernel's free lists (reported ones at the tail), so the
/// faults right after this get host-backed pages. Best effort: failure is ignored.
inline void prime_free_memory(std::size_t bytes) noexcept {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  auto* c = static_cast<volatile char*>(p);
  for (std::size_t off = 0; off < bytes; off += 4096)
    c[off] = 1;
  munmap(p, bytes);
}

// ---------------------------------------------------------------------------------------
// Recorder

/// Cycle samples in one buffer allocated and faulted in up front: recording a sample is
/// one store, never an allocation or a page fault inside the measurement.
class recorder {
public:
  explicit recorder(std::size_t capacity) : cap_(capacity) {
    if (cap_ == 0) cap_ = 1;
    void* p = mmap(nullptr, bytes(), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    buf_ = static_cast<std::uint64_t*>(p);
    // MAP_POPULATE is a hint; writing every page makes the prefault certain.
    std::memset(buf_, 0, bytes());
  }
  recorder(const recorder&) = delete;
  recorder& operator=(const recorder&) = delete;
  ~recorder() { munmap(buf_, bytes()); }

  [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  void clear() noexcept { n_ = 0; }
  void add(std::uint64_t cycles) noexcept {
    assert(n_ < cap_ && "recorder: more samples than its capacity");
    buf_[n_++] = cycles;
  }
  [[nodiscard]] std::span<std::uint64_t> samples() noexcept { return {buf_, n_}; }

  /// Times one call of f and records it; returns what f returns. Only f is inside the
  /// timed region: prepare its inputs before and consume its result after.
  template <class F> decltype(auto) time(F&& f) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      const std::uint64_t t0 = tsc_start();
      f();
      add(tsc_stop() - t0);
    } else {
      const std::uint64_t t0 = tsc_start();
      auto r = f();
      keep(r);
      add(tsc_stop() - t0);
      return r;
    }
  }

private:
  [[nodiscard]] std::size_t bytes() const noexcept { return cap_ * sizeof(std::uint64_t); }
  std::uint64_t* buf_ = nullptr;
  std::size_t cap_;
  std::size_t n_ = 0;
};

// ---------------------------------------------------------------------------------------
// Statistics

/// What summarizing needs to know about the clock.
struct clock_info {
  double hz = 0;          ///< TSC ticks per second
  std::uint64_t step = 1; ///< the smallest advance of the counter, in cycles
  double overhead = 0;    ///< cycles of an empty start/stop pair: subtracted from everything
};

/// The percentiles a latency plot draws: p50, then 1 - 10^(-k/4) for k = 4 .. 24 (p90
/// to p999999, four points per decade of nines), then the max (q = 1).
inline constexpr std::size_t ladder_points = 23;
inline double ladder_q(std::size_t i) noexcept {
  if (i == 0) return 0.5;
  if (i + 1 == ladder_points) return 1.0;
  return 1.0 - std::pow(10.0, -static_cast<double>(i + 3) / 4.0);
}

/// One run's distribution, in cycles net of the timer overhead. Plain data: it crosses
/// process boundaries in shared memory.
struct stats {
  std::size_t samples = 0;
  double p50 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0;
  double ops_per_s = 0;
  /// ladder[i]: percentile ladder_q(i), nearest rank, NaN where the run has too few
  /// samples to tell (fewer than 1 / (1 - q)). For plots.
  double ladder[ladder_points] = {};
  /// Page faults (minor + major) the process took during the timed loop, where the
  /// workload counts them (growth); -1 where not counted.
  double faults = -1;
};

/// The statistics a report shows, in column order.
inline constexpr std::string_view stat_names[] = {"p50", "p99", "p999", "p9999", "max", "mops"};
inline constexpr std::size_t stat_count = std::size(stat_names);

/// Statistic i of s (p50 .. max in cycles, then Mops/s).
inline double stat_value(const stats& s, std::size_t i) noexcept {
  switch (i) {
  case 0: return s.p50;
  case 1: return s.p99;
  case 2: return s.p999;
  case 3: return s.p9999;
  case 4: return s.max;
  default: return s.ops_per_s / 1e6;
  }
}

/// Nearest-rank percentile q of v, found by partial selection at or after `from` (the
/// previous, smaller rank): the whole ladder costs O(n) instead of a sort.
inline std::uint64_t rank_select(std::span<std::uint64_t> v, double q, std::size_t& from) {
  const double r = std::ceil(q * static_cast<double>(v.size()));
  std::size_t k = r < 1 ? 0 : static_cast<std::size_t>(r) - 1;
  k = std::clamp(k, from, v.size() - 1);
  const auto first = v.begin() + static_cast<std::ptrdiff_t>(from);
  std::nth_element(first, v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  from = k;
  return v[k];
}

/// Percentile q of v (reordering it), read as from a histogram with one bin per clock
/// step: a sample of x cycles stands for the bin [x - step/2, x + step/2] (a stepped
/// counter rounds an interval down or up by a step, on average to its true length),
/// and the rank q*n is interpolated linearly among the samples in that bin. With a step
/// of 1 this is the nearest-rank percentile to within a cycle.
inline double percentile(std::span<std::uint64_t> v, double q, std::size_t& from,
                         std::uint64_t step) {
  const std::uint64_t x = rank_select(v, q, from);
  std::size_t below = 0, upto = 0;
  for (const std::uint64_t c : v) {
    below += static_cast<std::size_t>(c < x);
    upto += static_cast<std::size_t>(c <= x);
  }
  const double rank = q * static_cast<double>(v.size()) - static_cast<double>(below);
  const double in_bin = std::clamp(rank / static_cast<double>(upto - below), 0.0, 1.0);
  const auto w = static_cast<double>(step);
  return static_cast<double>(x) - w / 2 + w * in_bin;
}

inline double mean_of(std::span<const std::uint64_t> v) noexcept {
  std::uint64_t total = 0; // 2^64 cycles is two centuries
  for (const std::uint64_t c : v)
    total += c;
  return v.empty() ? 0 : static_cast<double>(total) / static_cast<double>(v.size());
}

/// Fills s.ladder from v (reordering it), each point passed through `net`.
template <class Net> void fill_ladder(stats& s, std::span<std::uint64_t> v, Net net) {
  std::size_t from = 0;
  for (std::size_t i = 0; i < ladder_points; ++i) {
    const double q = ladder_q(i);
    if (q < 1.0 && static_cast<double>(v.size()) * (1.0 - q) < 1.0) {
      s.ladder[i] = std::nan("");
      continue;
    }
    s.ladder[i] = q >= 1.0 ? s.max : net(static_cast<double>(rank_select(v, q, from)));
  }
}

/// Summarizes raw samples (reordering them), net of the timer overhead.
inline stats summarize(std::span<std::uint64_t> v, const clock_info& clk) {
  stats s;
  s.samples = v.size();
  if (v.empty()) return s;
  const double net_mean = mean_of(v) - clk.overhead;
  s.ops_per_s = net_mean >= 1.0 ? clk.hz / net_mean : 0;
  const auto net = [&](double c) { return std::max(c - clk.overhead, 0.0); };
  std::size_t from = 0;
  s.p50 = net(percentile(v, 0.50, from, clk.step));
  s.p99 = net(percentile(v, 0.99, from, clk.step));
  s.p999 = net(percentile(v, 0.999, from, clk.step));
  s.p9999 = net(percentile(v, 0.9999, from, clk.step));
  const auto rest = v.begin() + static_cast<std::ptrdiff_t>(from);
  s.max = net(static_cast<double>(*std::max_element(rest, v.end())));
  fill_ladder(s, v, net);
  return s;
}

/// The statistics of samples that each timed `batch` operations, per operation: for
/// operations cheaper than the clock's resolution (see the header). The timer overhead
/// is subtracted once per sample, then the sample divided by the batch; percentiles are
/// of batch means, so a tail is smoothed over `batch` operations.
inline stats summarize_batch(std::span<std::uint64_t> v, const clock_info& clk, std::size_t batch) {
  stats s = summarize(v, clk);
  const auto b = static_cast<double>(std::max<std::size_t>(batch, 1));
  for (double* x : {&s.p50, &s.p99, &s.p999, &s.p9999, &s.max})
    *x /= b;
  for (double& x : s.ladder)
    x /= b;
  s.ops_per_s *= b;
  return s;
}

/// The cost of the clock itself, and the machine's noise floor.
struct timer_result {
  double overhead = 0; ///< median cycles of an empty start/stop pair
  stats floor;         ///< the empty pairs' distribution, net of that median
};

/// Times `pairs` back-to-back empty start/stop pairs (after a short warm-up).
inline timer_result measure_timer(recorder& rec, std::size_t pairs, clock_info clk) {
  pairs = std::min(pairs, rec.capacity());
  for (int pass = 0; pass < 2; ++pass) { // pass 0 warms up the code and the buffer
    rec.clear();
    const std::size_t n = pass == 0 ? std::min<std::size_t>(pairs, 10'000) : pairs;
    for (std::size_t i = 0; i < n; ++i)
      rec.time([] {});
  }
  std::size_t from = 0;
  clk.overhead = percentile(rec.samples(), 0.5, from, clk.step);
  return {clk.overhead, summarize(rec.samples(), clk)};
}

/// Median and range of one statistic across repetitions.
struct spread {
  double median = 0, min = 0, max = 0;
};

inline spread spread_of(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  const double med = v.size() % 2 != 0 ? v[m] : (v[m - 1] + v[m]) / 2;
  return {med, v.front(), v.back()};
}

// ---------------------------------------------------------------------------------------
// Report

/// One line of the report: a workload run by a peer, once per repetition.
struct row {
  std::string workload;
  std::string peer;
  std::vector<stats> reps;
  /// Why the peer has no figures (not built, or could not run here): reported, never
  /// dropped.
  std::string note = {};

  [[nodiscard]] spread of(std::size_t stat) const {
    std::vector<double> v;
    for (const stats& s : reps)
      v.push_back(stat_value(s, stat));
    return spread_of(v);
  }
};

/// What the report says about the run as a whole.
struct run_info {
  std::string tool;
  int cpu = -1;
  double tsc_hz = 0;
  std::size_t reps = 0;
  std::uint64_t tsc_step = 1;   ///< the counter's resolution, in cycles
  std::vector<double> overhead; ///< the timer overhead measured in each repetition
  double seconds = 0;           ///< wall time of the whole run
};

/// Starts a run: pins to `cpu` (-1: the last CPU allowed), spins the core up to speed,
/// measures the counter's step and calibrates its frequency, all into `info`.
inline void begin_run(run_info& info, const std::string& tool, int cpu, std::size_t reps,
                      bool quick) {
  info.tool = tool;
  info.cpu = cpu >= 0 ? cpu : last_allowed_cpu();
  info.reps = reps;
  pin_to_cpu(info.cpu);
  spin(std::chrono::milliseconds(quick ? 20 : 300));
  info.tsc_step = tsc_step();
  info.tsc_hz = calibrate_tsc_hz(std::chrono::milliseconds(quick ? 10 : 50));
}

/// Cycles, compact: one decimal below 100, whole below 100000, then K/M/G.
inline std::string compact(double v) {
  char b[32];
  if (v >= 1e9)
    std::snprintf(b, sizeof b, "%.3gG", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(b, sizeof b, "%.3gM", v / 1e6);
  else if (v >= 1e5)
    std::snprintf(b, sizeof b, "%.0fK", v / 1e3);
  else
    std::snprintf(b, sizeof b, v < 100 ? "%.1f" : "%.0f", v);
  return b;
}

inline std::string cell(const spread& s, bool rate) {
  if (rate) {
    if (s.median == 0) return "-";
    char b[64];
    std::snprintf(b, sizeof b, "%.1f [%.1f-%.1f]", s.median, s.min, s.max);
    return b;
  }
  return compact(s.median) + " [" + compact(s.min) + "-" + compact(s.max) + "]";
}

inline std::string pad(std::string s, std::size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

inline void print_header(std::ostream& os, const run_info& info) {
  const spread oh = spread_of(info.overhead);
  char b[512];
  std::snprintf(b, sizeof b,
                "%s: cpu %d, TSC %.3f GHz (vs CLOCK_MONOTONIC_RAW), step %llu cycles, "
                "%zu rep(s), run %.1f s\n"
                "timer overhead (median empty lfence;rdtsc..rdtscp;lfence pair) %.1f cycles "
                "[%.1f-%.1f]: SUBTRACTED from every figure\n",
                info.tool.c_str(), info.cpu, info.tsc_hz / 1e9,
                static_cast<unsigned long long>(info.tsc_step), info.reps, info.seconds, oh.median,
                oh.min, oh.max);
  os << b << "cycles per operation; each cell: median of the repetitions [min-max]\n\n";
}

inline void print_table(std::ostream& os, const run_info& info, const std::vector<row>& rows) {
  print_header(os, info);
  constexpr std::size_t w_name = 20, w_peer = 23, w_cell = 22; // "checked floor, inline"
  os << pad("workload", w_name) << pad("peer", w_peer) << pad("samples", 10);
  for (const std::string_view n : stat_names)
    os << pad(n == "mops" ? "Mops/s" : std::string(n), w_cell);
  os << '\n';
  for (const row& r : rows) {
    os << pad(r.workload, w_name) << pad(r.peer, w_peer)
       << pad(std::to_string(r.reps.empty() ? 0 : r.reps.front().samples), 10);
    if (r.reps.empty()) {
      os << "not run: " << (r.note.empty() ? "no figures" : r.note) << '\n';
      continue;
    }
    for (std::size_t i = 0; i < stat_count; ++i)
      os << pad(cell(r.of(i), i + 1 == stat_count), w_cell);
    os << '\n';
  }
}

/// The page faults of the rows that count them (median over the repetitions).
inline void print_faults(std::ostream& os, const std::vector<row>& rows) {
  bool any = false;
  for (const row& r : rows) {
    std::vector<double> v;
    for (const stats& s : r.reps)
      if (s.faults >= 0) v.push_back(s.faults);
    if (v.empty()) continue;
    if (!any) os << "\npage faults in the timed loop (median of the repetitions [min-max]):\n";
    any = true;
    const spread f = spread_of(v);
    char b[96];
    std::snprintf(b, sizeof b, "%.0f [%.0f-%.0f]", f.median, f.min, f.max);
    os << "  " << pad(r.workload, 20) << pad(r.peer, 18) << b << '\n';
  }
}

/// Long format: one line per (workload, peer, statistic); cycles net of timer overhead.
inline void write_csv(std::ostream& os, const run_info& info, const std::vector<row>& rows) {
  os << "workload,peer,samples,stat,unit,median,min,max,reps,cpu,tsc_hz,timer_overhead\n";
  const double oh = spread_of(info.overhead).median; // the median, subtracted
  for (const row& r : rows) {
    if (r.reps.empty()) { // not run: one line that says why
      os << r.workload << ',' << r.peer << ",0,not_run,\"" << r.note << "\",,,,0," << info.cpu
         << ',' << static_cast<std::uint64_t>(info.tsc_hz) << ',' << oh << '\n';
      continue;
    }
    for (std::size_t i = 0; i < stat_count; ++i) {
      const spread s = r.of(i);
      char b[256];
      std::snprintf(b, sizeof b, ",%zu,%s,%s,%.6g,%.6g,%.6g,%zu,%d,%.0f,%.1f\n",
                    r.reps.empty() ? 0 : r.reps.front().samples, std::string(stat_names[i]).c_str(),
                    i + 1 == stat_count ? "Mops/s" : "cycles", s.median, s.min, s.max,
                    r.reps.size(), info.cpu, info.tsc_hz, oh);
      os << r.workload << ',' << r.peer << b;
    }
  }
}

inline std::string json_string(std::string_view s) {
  std::string o = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + '"';
}

inline std::string json_spread(const spread& s) {
  char b[128];
  std::snprintf(b, sizeof b, "{\"median\": %.6g, \"min\": %.6g, \"max\": %.6g}", s.median, s.min,
                s.max);
  return b;
}

inline void write_json_row(std::ostream& os, const row& r) {
  os << "    {\"workload\": " << json_string(r.workload) << ", \"peer\": " << json_string(r.peer)
     << ", \"samples\": " << (r.reps.empty() ? 0 : r.reps.front().samples);
  if (r.reps.empty()) {
    os << ", \"not_run\": " << json_string(r.note) << '}';
    return;
  }
  for (std::size_t i = 0; i < stat_count; ++i)
    os << ", " << json_string(stat_names[i]) << ": " << json_spread(r.of(i));
  os << ", \"reps\": [";
  for (std::size_t k = 0; k < r.reps.size(); ++k) {
    os << (k == 0 ? "{" : ", {");
    for (std::size_t i = 0; i < stat_count; ++i)
      os << (i == 0 ? "" : ", ") << json_string(stat_names[i]) << ": " << stat_value(r.reps[k], i);
    os << '}';
  }
  os << "]}";
}

/// Cycles are net of the timer overhead; "mops" is millions of operations per second.
inline void write_json(std::ostream& os, const run_info& info, const std::vector<row>& rows) {
  os << "{\n  \"tool\": " << json_string(info.tool) << ",\n  \"cpu\": " << info.cpu
     << ",\n  \"tsc_hz\": " << static_cast<std::uint64_t>(info.tsc_hz)
     << ",\n  \"repetitions\": " << info.reps << ",\n  \"seconds\": " << info.seconds
     << ",\n  \"unit\": \"cycles\",\n  \"timer_overhead\": "
     << json_spread(spread_of(info.overhead)) << ",\n  \"tsc_step\": " << info.tsc_step
     << ",\n  \"timer_overhead_is\": \"subtracted\",\n  \"rows\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    write_json_row(os, rows[i]);
    os << (i + 1 < rows.size() ? ",\n" : "\n");
  }
  os << "  ]\n}\n";
}

/// Plot data for one workload: a gnuplot table with one line per ladder point (the
/// percentile, then each peer's cycles there, median over the repetitions; NaN where
/// a peer has too few samples) and a header line naming the peers. Peers that did not
/// run are left out.
inline void write_ladder(std::ostream& os, const std::vector<row>& rows,
                         const std::string& workload) {
  std::vector<const row*> ran;
  for (const row& r : rows)
    if (r.workload == workload && !r.reps.empty()) ran.push_back(&r);
  os << "percentile";
  for (const row* r : ran)
    os << " \"" << r->peer << '"';
  os << '\n';
  for (std::size_t i = 0; i < ladder_points; ++i) {
    char b[64];
    std::snprintf(b, sizeof b, "%.7f", ladder_q(i));
    os << b;
    for (const row* r : ran) {
      std::vector<double> v;
      for (const stats& s : r->reps)
        if (!std::isnan(s.ladder[i])) v.push_back(s.ladder[i]);
      std::snprintf(b, sizeof b, " %.6g", v.empty() ? std::nan("") : spread_of(v).median);
      os << b;
    }
    os << '\n';
  }
}

} // namespace latency
