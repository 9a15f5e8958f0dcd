// slab_latency: per-operation latency of slab::slab against every in-process peer.
//
// Workloads (workloads.hpp; each sample one timed operation, or a timed batch for the
// operations below the clock's resolution, in TSC cycles net of the timer), for 64- and
// 256-byte values:
//   growth_1M, growth_4M   insert into an EMPTY container
//   churn_1M               fill 1M, then 10M random erase+insert pairs
//   get_random_1M, get_seq_1M
//                          batches of 16 gets over 1M live keys (keyed peers only)
//   alloc_free             insert+erase of one value, batches of 16 pairs
//   timer                  back-to-back empty timed regions: the timer's overhead
//                          (subtracted from everything, see latency.hpp) and the
//                          machine's noise floor, measured in the same run
// Peers: slab::slab (heap backing), slab+locked (locked_backing, reserved), vec_slab
// (Rust's slab crate), floor (prefaulted array + unchecked LIFO free list), plain array
// (gets only), glibc malloc, jemalloc and mimalloc (the malloc peer in a child process
// with the library preloaded: both replace malloc process-wide), Boost.Interprocess
// managed_shared_memory and node_allocator, DPDK rte_mempool. A peer that was not built
// or cannot run here is reported with the reason.
//
// Each repetition runs every workload on every peer in turn (A B C A B C ...), so slow
// drifts of the machine hit every peer alike; the report gives each statistic's median
// over the repetitions and its range, then the targets judged from this run.
#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "latency.hpp"
#include "peers/alloc_peers.hpp"
#include "peers/dpdk.hpp"
#include "peers/peers.hpp"
#include "targets.hpp"
#include "workloads.hpp"

namespace {

using workloads::kind;
using workloads::peer_entry;
using workloads::workload;

struct options {
  int cpu = -1; // -1: the last CPU this process may use
  std::size_t reps = 5;
  bool quick = false;
  bool prime = true;
  std::uint64_t seed = 42;
  std::vector<std::string> workloads; // empty: all
  std::vector<std::string> peers;     // empty: all
  std::vector<std::string> payloads;  // empty: 64 and 256
  std::string csv, json, plot_dir;
  // --child-run: run one workload on the malloc peer, print its stats, exit.
  std::string child_run;
  std::string child_name = "jemalloc";
  double hz = 0, overhead = 0;
  std::uint64_t step = 1;
};

constexpr const char* usage = R"(usage: slab_latency [options]
Per-operation latency (TSC cycles, timer overhead subtracted) of slab::slab and its
in-process peers on growth, churn, get and alloc+free workloads, 64- and 256-byte
values, pinned to one CPU.

  --cpu N         pin to CPU N (default: the last CPU this process may use)
  --reps K        repetitions, peers interleaved in each (default 5)
  --workload W    run only workload W: a full name (growth_1M/64B), a name without its
                  size suffix (growth_1M) or a kind (growth, churn, get_random, get_seq,
                  alloc_free); repeat or separate by commas for several. The timer row
                  always runs: it is the floor every other row is judged against.
  --peer P        run only peer P (as the report names it); repeatable, commas
  --payload B     64 or 256 (default both); repeatable, commas
  --csv FILE      also write the results as CSV (one line per statistic)
  --json FILE     also write the results as JSON (with every repetition's figures)
  --plot-dir DIR  also write each workload's percentile ladder as DIR/<workload>.dat
  --seed S        seed of the workloads' key choices (default 42)
  --no-prime      do not fault in and free memory before each growth run (see
                  latency::prime_free_memory: on a VM with free page reporting the
                  first peer after a pause would pay host faults)
  --quick         small sizes and 1 repetition, for smoke tests (a few seconds)
  --help          this text
)";

// ---------------------------------------------------------------------------------------
// Command line

std::uint64_t parse_number(std::string_view flag, std::string_view s) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size())
    throw std::invalid_argument(std::string(flag) + ": not a number: " + std::string(s));
  return v;
}

double parse_double(std::string_view flag, const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0')
    throw std::invalid_argument(std::string(flag) + ": not a number: " + s);
  return v;
}

void split_into(std::vector<std::string>& out, std::string_view list) {
  while (!list.empty()) {
    const std::size_t comma = std::min(list.find(','), list.size());
    if (comma != 0) out.emplace_back(list.substr(0, comma));
    list.remove_prefix(std::min(comma + 1, list.size()));
  }
}

// Applies one flag that takes a value.
void apply(options& o, std::string_view flag, const std::string& v) {
  if (flag == "--cpu")
    o.cpu = static_cast<int>(parse_number(flag, v));
  else if (flag == "--reps")
    o.reps = std::max<std::size_t>(1, parse_number(flag, v));
  else if (flag == "--seed")
    o.seed = parse_number(flag, v);
  else if (flag == "--workload")
    split_into(o.workloads, v);
  else if (flag == "--peer")
    split_into(o.peers, v);
  else if (flag == "--payload")
    split_into(o.payloads, v);
  else if (flag == "--csv")
    o.csv = v;
  else if (flag == "--json")
    o.json = v;
  else if (flag == "--plot-dir")
    o.plot_dir = v;
  else if (flag == "--child-run")
    o.child_run = v;
  else if (flag == "--child-name")
    o.child_name = v;
  else if (flag == "--hz")
    o.hz = parse_double(flag, v);
  else if (flag == "--overhead")
    o.overhead = parse_double(flag, v);
  else if (flag == "--step")
    o.step = parse_number(flag, v);
  else
    throw std::invalid_argument("unknown option " + std::string(flag) + " (see --help)");
}

options parse(int argc, char** argv) {
  options o;
  bool reps_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (a == "--quick" || a == "--no-prime") {
      if (a == "--quick")
        o.quick = true;
      else
        o.prime = false;
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value");
    reps_given = reps_given || a == "--reps";
    apply(o, a, argv[++i]);
  }
  if (o.quick && !reps_given) o.reps = 1;
  for (const std::string& p : o.payloads)
    if (p != "64" && p != "256") throw std::invalid_argument("--payload: 64 or 256, not " + p);
  return o;
}

// ---------------------------------------------------------------------------------------
// Workloads

std::string count_name(std::size_t n) {
  if (n % 1'000'000 == 0) return std::to_string(n / 1'000'000) + "M";
  if (n % 1'000 == 0) return std::to_string(n / 1'000) + "K";
  return std::to_string(n);
}

// Sizes are decimal (1M = 1,000,000) so no run ends exactly on a power-of-two boundary.
std::vector<workload> all_workloads(bool quick) {
  const std::size_t g1 = quick ? 20'000 : 1'000'000, g2 = quick ? 80'000 : 4'000'000;
  const std::size_t live = quick ? 20'000 : 1'000'000, ops = quick ? 200'000 : 10'000'000;
  const std::size_t get_ops = quick ? 80'000 : 4'000'000;
  std::vector<workload> out;
  for (const std::size_t b : {64U, 256U}) {
    const std::string sz = "/" + std::to_string(b) + "B";
    out.push_back({"growth_" + count_name(g1) + sz, kind::growth, g1, g1, b});
    out.push_back({"growth_" + count_name(g2) + sz, kind::growth, g2, g2, b});
    out.push_back({"churn_" + count_name(live) + sz, kind::churn, live, ops, b});
    out.push_back({"get_random_" + count_name(live) + sz, kind::get_random, live, get_ops, b, 16});
    out.push_back({"get_seq_" + count_name(live) + sz, kind::get_seq, live, get_ops, b, 16});
    out.push_back({"alloc_free" + sz, kind::alloc_free, 0, ops, b, 16});
  }
  return out;
}

bool listed(const std::vector<std::string>& want, std::string_view a, std::string_view b = {},
            std::string_view c = {}) {
  return want.empty() || std::any_of(want.begin(), want.end(), [&](const std::string& s) {
           return s == a || (!b.empty() && s == b) || (!c.empty() && s == c);
         });
}

std::vector<workload> chosen_workloads(const options& o) {
  std::vector<workload> all = all_workloads(o.quick), out;
  for (const workload& w : all) {
    const std::string base = w.name.substr(0, w.name.find('/'));
    if (listed(o.workloads, w.name, base, workloads::kind_name(w.k)) &&
        listed(o.payloads, std::to_string(w.payload)))
      out.push_back(w);
  }
  if (out.empty()) {
    std::string names;
    for (const workload& w : all)
      names += " " + w.name;
    throw std::invalid_argument("no such workload; known:" + names);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Peers

// The preloaded allocators: this program again, in a child with the library preloaded,
// running one workload on the malloc peer and printing its statistics (child_main).
struct preloaded {
  const char* name;  ///< the peer, as reported
  const char* so;    ///< the library to preload, "" when the build found none
  const char* probe; ///< a symbol only that library defines: proof it is in place
};
constexpr preloaded preloaded_peers[] = {
#ifdef BENCH_JEMALLOC_SO
    {"jemalloc", BENCH_JEMALLOC_SO, "mallctl"},
#else
    {"jemalloc", "", "mallctl"},
#endif
#ifdef BENCH_MIMALLOC_SO
    {"mimalloc", BENCH_MIMALLOC_SO, "mi_malloc"},
#else
    {"mimalloc", "", "mi_malloc"},
#endif
};

latency::stats run_in_child(const options& o, const preloaded& lib, workloads::context& c,
                            const workload& w) {
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
  char clk[160];
  std::snprintf(clk, sizeof clk, " --hz %.17g --overhead %.17g --step %llu --seed %llu", c.clk.hz,
                c.clk.overhead, static_cast<unsigned long long>(c.clk.step),
                static_cast<unsigned long long>(c.seed));
  const std::string cmd = "LD_PRELOAD='" + std::string(lib.so) + "' '" + self.string() +
                          "' --child-run '" + w.name + "' --child-name " + lib.name + " --cpu " +
                          std::to_string(o.cpu) + clk + (o.quick ? " --quick" : "") +
                          (c.prime ? "" : " --no-prime");
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) throw std::runtime_error(std::string(lib.name) + " child: popen failed");
  latency::stats s;
  int got = std::fscanf(f, "stats %zu %lf %lf %lf %lf %lf %lf %lf", &s.samples, &s.p50, &s.p99,
                        &s.p999, &s.p9999, &s.max, &s.ops_per_s, &s.faults);
  for (double& x : s.ladder)
    got += std::fscanf(f, " %lf", &x);
  const int rc = ::pclose(f);
  if (rc != 0 || got != 8 + static_cast<int>(latency::ladder_points))
    throw std::runtime_error(std::string(lib.name) + " child failed on " + w.name +
                             " (wait status " + std::to_string(rc) + ")");
  return s;
}

std::vector<peer_entry> all_peers(const options& o) {
  using namespace workloads;
  std::vector<peer_entry> v = {entry<peers::slab_peer>(),     entry<peers::slab_locked_peer>(),
                               entry<peers::vec_slab_peer>(), entry<peers::floor_peer>(),
                               entry<peers::array_peer>(),    entry<peers::malloc_peer>(false)};
  for (const preloaded& lib : preloaded_peers) {
    if (*lib.so == '\0') {
      v.push_back(
          {lib.name, std::string("not built: CMake found no lib") + lib.name + ".so", false});
      continue;
    }
    v.push_back({lib.name, "", false,
                 [&o, &lib](context& c, const workload& w) { return run_in_child(o, lib, c, w); }});
  }
  v.push_back(entry<peers::boost_shm_peer>(false));
  v.push_back(entry<peers::boost_node_peer>(false));
  if (listed(o.peers, "rte_mempool"))
    v.push_back(peers::dpdk::entry(o.cpu)); // starts EAL: only when asked for
  std::vector<peer_entry> out;
  for (peer_entry& e : v)
    if (listed(o.peers, e.name)) out.push_back(std::move(e));
  return out;
}

// Which peers a workload applies to: gets need keys; the plain array only does gets.
bool applies(const peer_entry& p, const workload& w) {
  const bool get = w.k == kind::get_random || w.k == kind::get_seq;
  if (p.name == "plain array") return get;
  return !get || p.keyed;
}

// ---------------------------------------------------------------------------------------
// Repetitions

struct cell {
  const workload* w;
  const peer_entry* p;
  latency::row* r;
};

// The timer row's sample count: as many as the largest workload.
std::size_t timer_pairs(const options& o) { return o.quick ? 200'000 : 10'000'000; }

void run_rep(workloads::context& c, const options& o, std::vector<cell>& cells, std::size_t rep,
             latency::row& timer, latency::run_info& info) {
  const latency::timer_result t = latency::measure_timer(c.rec, timer_pairs(o), c.clk);
  c.clk.overhead = t.overhead;
  c.seed = o.seed + rep;
  info.overhead.push_back(t.overhead);
  timer.reps.push_back(t.floor);
  const workload* last = nullptr;
  for (cell& x : cells) {
    if (!x.r->note.empty()) continue; // not built, or failed before: reported as such
    if (x.w != last) std::fprintf(stderr, "rep %zu/%zu: %s\n", rep + 1, o.reps, x.w->name.c_str());
    last = x.w;
    try {
      x.r->reps.push_back(x.p->run(c, *x.w));
    } catch (const std::exception& e) {
      x.r->reps.clear();
      x.r->note = std::string("failed: ") + e.what();
    }
  }
}

std::vector<targets::verdict> judge(const std::vector<latency::row>& rows,
                                    const std::vector<workload>& ws) {
  std::vector<targets::verdict> v;
  for (const workload& w : ws) {
    if (w.k == kind::growth) {
      v.push_back(targets::ratio(rows, "growth: slab+locked p99 no worse than the floor's", w.name,
                                 "slab+locked", "floor", 1, 1.0));
      v.push_back(targets::ratio(rows, "growth: slab+locked p999 no worse than the floor's", w.name,
                                 "slab+locked", "floor", 2, 1.0));
      v.push_back(targets::ratio(rows, "growth: slab+locked max within 1.5x the floor's", w.name,
                                 "slab+locked", "floor", 4, 1.5));
    }
    if (w.k == kind::get_random || w.k == kind::get_seq) {
      v.push_back(targets::ratio(rows,
                                 "get(key) with the stale-key check within 1.5x of a plain array",
                                 w.name, "slab::slab", "plain array", 0, 1.5));
      continue;
    }
    v.push_back(targets::ahead(rows, w.name, "slab+locked", {"floor", "slab::slab"}));
  }
  return v;
}

void write_file(const std::string& path, const latency::run_info& info,
                const std::vector<latency::row>& rows, const std::vector<targets::verdict>& vs,
                bool json) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write " + path);
  if (!json) {
    latency::write_csv(f, info, rows);
    return;
  }
  latency::write_json(f, info, rows);
  std::ofstream t(path + ".targets.json");
  targets::write_json(t, vs);
}

void write_plots(const std::string& dir, const std::vector<latency::row>& rows,
                 const std::vector<workload>& ws) {
  std::filesystem::create_directories(dir);
  for (const workload& w : ws) {
    std::string file = w.name;
    std::replace(file.begin(), file.end(), '/', '_');
    std::ofstream f(std::filesystem::path(dir) / ("slab_latency." + file + ".dat"));
    if (!f) throw std::runtime_error("cannot write into " + dir);
    latency::write_ladder(f, rows, w.name);
  }
}

// The preloaded child: one workload on the malloc peer (jemalloc or mimalloc underneath), clock
// figures from the parent, stats on stdout.
int child_main(const options& o) {
  const preloaded* lib = nullptr;
  for (const preloaded& p : preloaded_peers)
    if (o.child_name == p.name) lib = &p;
  if (lib == nullptr || ::dlsym(RTLD_DEFAULT, lib->probe) == nullptr) {
    std::fprintf(stderr, "slab_latency: --child-run: %s is not preloaded\n", o.child_name.c_str());
    return 3;
  }
  latency::pin_to_cpu(o.cpu >= 0 ? o.cpu : latency::last_allowed_cpu());
  for (const workload& w : all_workloads(o.quick)) {
    if (w.name != o.child_run) continue;
    latency::recorder rec(w.samples());
    workloads::context c{rec, {o.hz, o.step, o.overhead}, o.prime, o.seed};
    const latency::stats s = workloads::run_sized<peers::malloc_peer>(c, w);
    std::printf("stats %zu %.17g %.17g %.17g %.17g %.17g %.17g %.17g", s.samples, s.p50, s.p99,
                s.p999, s.p9999, s.max, s.ops_per_s, s.faults);
    for (const double x : s.ladder)
      std::printf(" %.17g", x);
    std::printf("\n");
    return 0;
  }
  std::fprintf(stderr, "slab_latency: --child-run: no workload %s\n", o.child_run.c_str());
  return 2;
}

int run(options o) {
  const auto t0 = std::chrono::steady_clock::now();
  // Large blocks always come fresh from mmap and go back on free. Otherwise glibc's
  // sliding mmap threshold hands repetition 2 the heap that repetition 1 already faulted
  // in, and peers would see a different (warmer) allocator in each repetition.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  latency::run_info info;
  latency::begin_run(info, "slab_latency", o.cpu, o.reps, o.quick);
  o.cpu = info.cpu;

  const std::vector<workload> ws = chosen_workloads(o);
  const std::vector<peer_entry> ps = all_peers(o);
  std::size_t samples = timer_pairs(o);
  for (const workload& w : ws)
    samples = std::max(samples, w.samples());
  latency::recorder rec(samples);
  workloads::context c{rec, {info.tsc_hz, info.tsc_step, 0}, o.prime, o.seed};

  std::vector<latency::row> rows{{"timer", "empty", {}}};
  rows.reserve(1 + ws.size() * ps.size());
  std::vector<cell> cells;
  for (const workload& w : ws)
    for (const peer_entry& p : ps)
      if (applies(p, w)) {
        rows.push_back({w.name, p.name, {}, p.not_run});
        cells.push_back({&w, &p, &rows.back()});
      }
  for (std::size_t r = 0; r < o.reps; ++r)
    run_rep(c, o, cells, r, rows[0], info);

  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::vector<targets::verdict> vs = judge(rows, ws);
  latency::print_table(std::cout, info, rows);
  latency::print_faults(std::cout, rows);
  for (const peer_entry& p : ps)
    if (p.name == "rte_mempool") std::cout << peers::dpdk::describe() << '\n';
  targets::print(std::cout, vs);
  if (!o.csv.empty()) write_file(o.csv, info, rows, vs, false);
  if (!o.json.empty()) write_file(o.json, info, rows, vs, true);
  if (!o.plot_dir.empty()) write_plots(o.plot_dir, rows, ws);
  peers::dpdk::shutdown();
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    const options o = parse(argc, argv);
    return o.child_run.empty() ? run(o) : child_main(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slab_latency: %s\n", e.what());
    peers::dpdk::shutdown();
    return 2;
  }
}
