// pool_latency: the daemon-backed pool (slab::pool<T> through shmd) beside its peers,
// per operation, in TSC cycles net of the timer.
//
// It starts its own shmd (the one built beside it, or --shmd PATH) with a temporary
// config: pools b64 and b256 (64- and 256-byte slots, 1M slots ready), and one pool
// per repetition for the growth workload (grow<r>: 256K slots ready, up to 8M, grow_at
// 0.5, so that the workload meets four tier additions on its way to 4M), hugepages
// preferred.
//
// Workloads (workloads.hpp has the loops and the batch method):
//   alloc_free/64B, /256B    emplace+erase of one value, 16 pairs per sample: the cache
//                            hit path
//   get_random_1M, get_seq_1M   16 gets per sample over 1M live keys
//   growth_4M/64B            4M emplaces into a pool that starts EMPTY, through every
//                            tier shmd adds meanwhile; page faults in the loop counted
//   churn_1M/64B             fill 1M, 10M random erase+emplace pairs
//   lifecycle_1M/64B         fill 1M, 10M order lifecycles: get a random live value,
//                            change it, erase it, emplace a new one
//   handoff                  process A (this one) emplaces a value stamped with the TSC
//                            and passes the key through a shared ring to process B,
//                            pinned to another CPU, which gets and erases it; one key in
//                            flight at a time. Rows: A's emplace, B's take, and
//                            stamp-to-get (the key's and the value's cache lines crossing
//                            cores, ring included). Peers: slab::pool, Boost's
//                            managed_shared_memory (B gets the address from a handle),
//                            and rte_mempool as DPDK shares one: A an EAL primary, B a
//                            secondary, each with its lcore cache (dpdk_procs; needs
//                            root and free hugepages). The loops: handoff.hpp.
//   nproc_churn/N            N processes, each with its own context of the same pool,
//                            churn in bursts of 4K erases then 4K emplaces (four
//                            magazines each way: the depot is in every burst); each
//                            op timed; throughput per process from wall time.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <slab/client.hpp>
#include <slabtest/pool_view.hpp>
#include <slabtest/shmd.hpp>

#include "handoff.hpp"
#include "latency.hpp"
#include "nproc.hpp"
#include "peers/alloc_peers.hpp"
#include "peers/dpdk.hpp"
#include "peers/peers.hpp"
#include "targets.hpp"
#include "workloads.hpp"

namespace {

using peers::Payload256;
using peers::Payload64;
using workloads::kind;
using workloads::peer_entry;
using workloads::workload;

struct options {
  std::string shmd; // empty: the shmd built beside it (slabtest::shmd_binary())
  std::size_t reps = 3;
  bool quick = false;
  int cpu = -1;
  double grow_at = 0.5;
  std::string json, csv, plot_dir;
  std::vector<std::string> only; // empty: every workload; else names starting with one of these

  [[nodiscard]] bool wants(const std::string& workload) const {
    if (only.empty()) return true;
    return std::any_of(only.begin(), only.end(),
                       [&](const std::string& o) { return workload.rfind(o, 0) == 0; });
  }
};

// ---- a daemon of our own ----------------------------------------------------------

/// shmd's config for the run: b64 and b256 for the cache-hit and handoff workloads, and
/// per repetition a pool to grow in a burst and one to grow paced. Segments in tmpfs (the
/// shmd_process default): on a disk-backed /tmp (ext4 here) a shared file mapping takes a
/// write fault per page for dirty tracking, and the kernel writes it back to disk.
slabtest::daemon_cfg daemon_config(const options& o) {
  slabtest::daemon_cfg cfg;
  cfg.binary = o.shmd;
  cfg.log_level = "warning";
  cfg.ready_timeout = std::chrono::seconds(60); // first tiers are prefaulted first
  cfg.pools.clear();
  for (const unsigned size : {64U, 256U}) {
    slabtest::pool_cfg p;
    p.name = "b" + std::to_string(size);
    p.slot_size = size;
    p.capacity = 1048576;
    p.max_capacity = 2097152;
    p.hugepages = "prefer";
    p.contexts = 8;
    cfg.pools.push_back(p);
  }
  for (std::size_t r = 0; r < o.reps; ++r) {
    for (const char* kind : {"grow", "pace"}) {
      slabtest::pool_cfg p;
      p.name = kind + std::to_string(r);
      p.capacity = 262144;
      p.max_capacity = 8388608;
      p.hugepages = "prefer";
      p.contexts = 4;
      p.grow_at = o.grow_at;
      cfg.pools.push_back(p);
    }
  }
  return cfg;
}

// ---- the pool as a peer ------------------------------------------------------------

/// slab::pool<P> behind the peers' interface; `current` is the open pool it uses (the
/// driver points it at b64, b256 or this repetition's growth pool).
template <class P> struct pool_peer {
  static constexpr std::string_view name = "slab::pool";
  static constexpr bool frees_each = true; // values live in shmd's pool: erase them after
  using key_type = slab::key;
  static inline slab::pool<P>* current = nullptr;
  explicit pool_peer(std::size_t /*capacity*/) : p(*current) {}
  key_type insert(const P& v) { return p.emplace(v); }
  P* get(key_type k) noexcept { return p.get(k); }
  void erase(key_type k) noexcept { p.erase(k); }
  slab::pool<P>& p;
};

struct open_pools {
  slab::pool<Payload64> b64;
  slab::pool<Payload256> b256;
  slab::pool<Payload64>* grow = nullptr; // this repetition's
  slab::pool<Payload64>* pace = nullptr; // this repetition's, for the paced growth
};

// ---- handoff -------------------------------------------------------------------------

using handoff::ring;

/// How B reads the stamp of what A sent and frees it: one per handoff peer.
struct pool_side {
  slab::pool<Payload64>& p;
  std::uint64_t take(std::uint64_t raw) {
    const std::optional<Payload64> v = p.take(slab::key::from_raw(raw));
    if (!v) throw std::runtime_error("handoff: take refused a key A sent");
    return v->w[0];
  }
};
struct boost_side {
  peers::bip::managed_shared_memory& seg;
  std::uint64_t take(std::uint64_t handle) {
    auto* v = static_cast<Payload64*>(seg.get_address_from_handle(
        static_cast<peers::bip::managed_shared_memory::handle_t>(handle)));
    const std::uint64_t stamp = v->w[0];
    seg.deallocate(v);
    return stamp;
  }
};

/// Runs the consumer in a child on `cpu` (`attach` builds its side there), the producer
/// here: `emplace(value)` returns what goes into the ring.
template <class Attach, class Emplace>
std::vector<latency::stats> run_handoff(latency::recorder& rec, const latency::clock_info& clk,
                                        std::size_t n, int cpu, Attach attach, Emplace emplace) {
  void* mem =
      ::mmap(nullptr, sizeof(ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error("mmap of the ring failed");
  ring& r = *new (mem) ring();
  const pid_t child = ::fork();
  if (child == 0) {
    try {
      latency::pin_to_cpu(cpu);
      attach(r, n);
      ::_exit(0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "handoff consumer: %s\n", e.what());
      ::_exit(1);
    }
  }
  const bool started = handoff::produce(
      r, rec, n,
      [&] {
        int st = 0;
        return ::waitpid(child, &st, WNOHANG) != child;
      },
      emplace);
  if (!started) throw std::runtime_error("handoff consumer died");
  int st = 0;
  ::waitpid(child, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) throw std::runtime_error("handoff consumer failed");
  std::vector<latency::stats> out{latency::summarize(rec.samples(), clk), r.results[0],
                                  r.results[1]};
  ::munmap(mem, sizeof(ring));
  return out;
}

// ---- N processes churning one pool ---------------------------------------------------

/// Runs `work(i, shared)` in `n` child processes pinned to different CPUs, starts them
/// together, and returns the results of process 0 with the mean throughput per process.
template <class Work>
latency::stats run_nproc(std::size_t n, const std::vector<int>& cpus, Work work) {
  if (n > nproc::shared::max_procs) throw std::invalid_argument("nproc: too many processes");
  void* mem = ::mmap(nullptr, sizeof(nproc::shared), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error("mmap failed");
  auto& sh = *new (mem) nproc::shared();
  std::vector<pid_t> kids;
  for (std::size_t i = 0; i < n; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      try {
        latency::pin_to_cpu(cpus[i % cpus.size()]);
        sh.results[i] = work(i, sh);
        ::_exit(0);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "nproc child %zu: %s\n", i, e.what());
        ::_exit(1);
      }
    }
    kids.push_back(pid);
  }
  while (sh.ready.load() != static_cast<int>(n)) {
    int st = 0;
    for (const pid_t k : kids)
      if (::waitpid(k, &st, WNOHANG) == k) throw std::runtime_error("nproc child died early");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  sh.go.store(true, std::memory_order_release);
  bool ok = true;
  for (const pid_t k : kids) {
    int st = 0;
    ::waitpid(k, &st, 0);
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  if (!ok) throw std::runtime_error("an nproc child failed");
  latency::stats s = sh.results[0];
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i)
    sum += sh.results[i].ops_per_s;
  s.ops_per_s = sum / static_cast<double>(n);
  ::munmap(mem, sizeof(nproc::shared));
  return s;
}

// ---- driver --------------------------------------------------------------------------

options parse(int argc, char** argv) {
  options o;
  bool reps_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "--reps" && has_value) {
      o.reps = std::max<std::size_t>(1, std::strtoul(argv[++i], nullptr, 10));
      reps_given = true;
    } else if (a == "--shmd" && has_value) {
      o.shmd = argv[++i];
    } else if (a == "--cpu" && has_value) {
      o.cpu = std::atoi(argv[++i]);
    } else if (a == "--grow-at" && has_value) {
      o.grow_at = std::strtod(argv[++i], nullptr);
      if (!(o.grow_at > 0 && o.grow_at < 1))
        throw std::invalid_argument("--grow-at: a fraction in (0, 1), not " + std::string(argv[i]));
    } else if (a == "--json" && has_value) {
      o.json = argv[++i];
    } else if (a == "--csv" && has_value) {
      o.csv = argv[++i];
    } else if (a == "--plot-dir" && has_value) {
      o.plot_dir = argv[++i];
    } else if (a == "--only" && has_value) {
      std::string list = argv[++i];
      for (std::size_t at = 0; at <= list.size();) {
        const std::size_t comma = std::min(list.find(',', at), list.size());
        if (comma > at) o.only.push_back(list.substr(at, comma - at));
        at = comma + 1;
      }
    } else {
      std::fprintf(
          stderr,
          "usage: pool_latency [--quick] [--reps K] [--cpu N] [--shmd PATH] [--grow-at F]\n"
          "                    [--csv FILE] [--json FILE] [--plot-dir DIR] [--only W,...]\n"
          "The daemon-backed pool beside its peers: cache-hit alloc+free, gets, growth\n"
          "from empty, churn, cross-process handoff and N processes churning one pool,\n"
          "through a shmd it starts itself. --only runs the workloads whose names start\n"
          "with one of the given prefixes (alloc_free, growth, churn, handoff, nproc...).\n");
      std::exit(a == "--help" ? 0 : 1);
    }
  }
  if (o.quick && !reps_given) o.reps = 1;
  return o;
}

struct plan {
  std::vector<workload> ws;
  std::size_t handoff_n, nproc_ops, nproc_live;
};

plan make_plan(bool quick) {
  const std::size_t live = quick ? 20'000 : 1'000'000, ops = quick ? 200'000 : 10'000'000;
  const std::size_t grow = quick ? 400'000 : 4'000'000, get_ops = quick ? 80'000 : 4'000'000;
  const std::string l = quick ? "20K" : "1M";
  plan p;
  for (const std::size_t b : {64U, 256U}) {
    const std::string sz = "/" + std::to_string(b) + "B";
    p.ws.push_back({"alloc_free" + sz, kind::alloc_free, 0, ops, b, 16});
    p.ws.push_back({"get_random_" + l + sz, kind::get_random, live, get_ops, b, 16});
    p.ws.push_back({"get_seq_" + l + sz, kind::get_seq, live, get_ops, b, 16});
  }
  p.ws.push_back(
      {std::string("growth_") + (quick ? "400K" : "4M") + "/64B", kind::growth, grow, grow, 64});
  // The same, paced: ~500 ns between inserts (1300 cycles at 2.6 GHz), ~128 MB/s of
  // 64-byte values, below what shmd prepares (prefaults and locks) per second here, so
  // that its growth can run ahead, as it is meant to.
  p.ws.push_back({std::string("growth_paced_") + (quick ? "400K" : "4M") + "/64B", kind::growth,
                  grow, grow, 64, 1, 1300});
  p.ws.push_back({"churn_" + l + "/64B", kind::churn, live, ops, 64});
  p.ws.push_back({"lifecycle_" + l + "/64B", kind::lifecycle, live, ops, 64});
  p.handoff_n = quick ? 20'000 : 1'000'000;
  p.nproc_ops = quick ? 100'000 : 4'000'000;
  p.nproc_live = quick ? 10'000 : 100'000;
  return p;
}

// Which peers run which workloads here (slab_latency has every in-process peer on
// growth and churn; this program keeps the ones that frame the pool).
bool applies(const std::string& peer, kind k) {
  const bool get = k == kind::get_random || k == kind::get_seq;
  if (peer == "slab::pool" || peer == "slab::slab") return true;
  if (get) return peer == "vec_slab" || peer == "plain array";
  if (k == kind::alloc_free)
    return peer == "floor" || peer == "glibc malloc" || peer == "boost shm" ||
           peer == "boost node_alloc" || peer == "rte_mempool";
  if (k == kind::growth) return peer == "floor" || peer == "slab+locked" || peer == "vec_slab";
  if (peer == "checked floor" || peer == "checked floor, inline") return true; // churn, lifecycle
  return peer == "floor" || peer == "slab+locked" || peer == "rte_mempool" ||
         peer == "boost node_alloc" || peer == "glibc malloc"; // churn
}

std::vector<peer_entry> make_peers(open_pools& pools, int cpu) {
  using namespace workloads;
  peer_entry pool{"slab::pool", "", true, [&pools](context& c, const workload& w) {
                    pool_peer<Payload64>::current =
                        w.k != kind::growth ? &pools.b64 : (w.gap != 0 ? pools.pace : pools.grow);
                    pool_peer<Payload256>::current = &pools.b256;
                    return run_sized<pool_peer>(c, w);
                  }};
  return {pool,
          entry<peers::slab_peer>(),
          entry<peers::slab_locked_peer>(),
          entry<peers::vec_slab_peer>(),
          entry<peers::floor_peer>(),
          entry<peers::checked_floor_peer>(),
          entry<peers::checked_floor_inline_peer>(),
          entry<peers::array_peer>(),
          entry<peers::malloc_peer>(false),
          entry<peers::boost_shm_peer>(false),
          entry<peers::boost_node_peer>(false),
          peers::dpdk::entry(cpu)};
}

std::vector<targets::verdict> judge(const std::vector<latency::row>& rows, const plan& pl) {
  using targets::ratio;
  std::vector<targets::verdict> v;
  for (const workload& w : pl.ws) {
    switch (w.k) {
    case kind::alloc_free:
      v.push_back(ratio(
          rows, "cache-hit alloc+free through the client library: median within 1.3x of the floor",
          w.name, "slab::pool", "floor", 0, 1.3));
      break;
    case kind::get_random:
    case kind::get_seq:
      v.push_back(ratio(rows, "get(key) with the stale-key check: within 1.5x of a plain array",
                        w.name, "slab::pool", "plain array", 0, 1.5));
      continue;
    case kind::growth:
      v.push_back(ratio(rows, "growth through shmd: p99 no worse than the floor's", w.name,
                        "slab::pool", "floor", 1, 1.0));
      v.push_back(ratio(rows, "growth through shmd: p999 no worse than the floor's", w.name,
                        "slab::pool", "floor", 2, 1.0));
      v.push_back(ratio(rows, "growth through shmd: max within 1.5x the floor's", w.name,
                        "slab::pool", "floor", 4, 1.5));
      break;
    case kind::churn:
    case kind::lifecycle:
      // The floor never reads a generation; the checked floor does, and nothing else
      // (checked_floor.hpp): the pool's distance from it is what the pool adds.
      for (const std::size_t stat : {0U, 1U, 2U})
        v.push_back(ratio(rows, "within 1.2x of the checked floor (a generation read, no more)",
                          w.name, "slab::pool", "checked floor", stat, 1.2));
      break;
    }
    v.push_back(targets::ahead(
        rows, w.name, "slab::pool",
        {"floor", "checked floor", "checked floor, inline", "slab::slab", "slab+locked"}));
  }
  v.push_back(targets::ahead(rows, "handoff B", "slab::pool", {}));
  v.push_back(targets::ahead(rows, "handoff A", "slab::pool", {}));
  v.push_back(targets::ahead(rows, "nproc_churn/2", "slab::pool", {}));
  for (const char* peer : {"slab::pool", "boost node_alloc"}) {
    const latency::row* one = targets::find(rows, "nproc_churn/1", peer);
    const latency::row* two = targets::find(rows, "nproc_churn/2", peer);
    targets::verdict t{std::string("N processes churning one pool (") + peer +
                           "): throughput per process falls <= 25% from 1 to 2",
                       false, "not measured"};
    if (one != nullptr && two != nullptr) {
      const double a = one->of(5).median, b = two->of(5).median;
      t.met = b >= 0.75 * a;
      char buf[160];
      std::snprintf(buf, sizeof buf, "%.1f Mops/s per process alone, %.1f with two: %+.0f%%", a, b,
                    a > 0 ? (b / a - 1) * 100 : 0.0);
      t.detail = buf;
    }
    v.push_back(t);
  }
  return v;
}

void write_outputs(const options& o, const latency::run_info& info,
                   const std::vector<latency::row>& rows, const std::vector<targets::verdict>& vs) {
  if (!o.csv.empty()) {
    std::ofstream f(o.csv);
    latency::write_csv(f, info, rows);
  }
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    latency::write_json(f, info, rows);
    std::ofstream t(o.json + ".targets.json");
    targets::write_json(t, vs);
  }
  if (!o.plot_dir.empty()) {
    std::filesystem::create_directories(o.plot_dir);
    std::vector<std::string> seen;
    for (const latency::row& r : rows) {
      if (r.workload == "timer" || std::find(seen.begin(), seen.end(), r.workload) != seen.end())
        continue;
      seen.push_back(r.workload);
      std::string file = r.workload;
      for (char& ch : file)
        if (ch == '/' || ch == ' ') ch = '_';
      std::ofstream f(std::filesystem::path(o.plot_dir) / ("pool_latency." + file + ".dat"));
      latency::write_ladder(f, rows, r.workload);
    }
  }
}

struct runner {
  const options& o;
  const plan& pl;
  const std::string& socket;
  latency::run_info& info;
  std::vector<latency::row>& rows;
  latency::recorder& rec;
  workloads::context c;
  int other_cpu;

  latency::row& row(const std::string& w, const std::string& peer, const std::string& note = {}) {
    for (latency::row& r : rows)
      if (r.workload == w && r.peer == peer) return r;
    rows.push_back({w, peer, {}, note});
    return rows.back();
  }

  void add(latency::row& r, const std::function<latency::stats()>& f) {
    if (!r.note.empty()) return;
    try {
      r.reps.push_back(f());
    } catch (const std::exception& e) {
      r.reps.clear();
      r.note = std::string("failed: ") + e.what();
    }
  }

  void rep(std::size_t i, open_pools& pools, const std::vector<peer_entry>& ps) {
    const latency::timer_result t =
        latency::measure_timer(rec, o.quick ? 100'000 : 4'000'000, c.clk);
    c.clk.overhead = t.overhead;
    c.seed = 42 + i;
    info.overhead.push_back(t.overhead);
    row("timer", "empty").reps.push_back(t.floor);
    for (const workload& w : pl.ws) {
      if (!o.wants(w.name)) continue;
      std::fprintf(stderr, "rep %zu/%zu: %s\n", i + 1, o.reps, w.name.c_str());
      for (const peer_entry& p : ps)
        if (applies(p.name, w.k)) add(row(w.name, p.name, p.not_run), [&] { return p.run(c, w); });
    }
    if (o.wants("handoff")) {
      std::fprintf(stderr, "rep %zu/%zu: handoff\n", i + 1, o.reps);
      handoffs(pools);
    }
    if (o.wants("nproc_churn")) {
      std::fprintf(stderr, "rep %zu/%zu: nproc_churn\n", i + 1, o.reps);
      for (const std::size_t n : {1U, 2U})
        nprocs(n, i);
    }
  }

  void handoffs(open_pools& pools) {
    const std::vector<std::string> names = {"handoff A", "handoff B", "handoff A->B"};
    const std::vector<std::string> what = {"A: emplace", "B: take", "stamp-to-get"};
    std::vector<latency::stats> h;
    try {
      h = run_handoff(
          rec, c.clk, pl.handoff_n, other_cpu,
          [&](ring& r, std::size_t n) {
            slab::client cl = slab::client::connect(socket);
            slab::pool<Payload64> p = cl.open<Payload64>("b64");
            handoff::consume(r, pool_side{p}, c.clk, n);
          },
          [&](const Payload64& v) { return pools.b64.emplace(v).raw(); });
      for (std::size_t k = 0; k < 3; ++k)
        row(names[k], "slab::pool").reps.push_back(h[k]);
    } catch (const std::exception& e) {
      row("handoff A", "slab::pool").note = e.what();
    }
    latency::row& b = row("handoff A", "boost shm");
    if (!b.note.empty()) return;
    try {
      peers::boost_segment seg(4096, sizeof(Payload64));
      const std::string name = seg.name();
      h = run_handoff(
          rec, c.clk, pl.handoff_n, other_cpu,
          [&](ring& r, std::size_t n) {
            peers::bip::managed_shared_memory s(peers::bip::open_only, name.c_str());
            handoff::consume(r, boost_side{s}, c.clk, n);
          },
          [&](const Payload64& v) {
            void* m = seg.segment().allocate(sizeof(Payload64));
            ::new (m) Payload64(v);
            return static_cast<std::uint64_t>(seg.segment().get_handle_from_address(m));
          });
      for (std::size_t k = 0; k < 3; ++k)
        row(names[k], "boost shm").reps.push_back(h[k]);
    } catch (const std::exception& e) {
      b.note = std::string("failed: ") + e.what();
    }
    dpdk_handoff(names);
  }

  /// Runs dpdk_procs (rte_mempool across processes, as DPDK shares one: an EAL primary
  /// and secondaries) with `args`, this run's clock and an output file, and reads the
  /// `count` stats it wrote; empty, with `note` saying why, when it could not run.
  std::vector<latency::stats> run_dpdk_procs(std::vector<std::string> args, std::size_t count,
                                             const char* what, std::string& note) {
#ifdef DPDK_PROCS_BINARY
    slabtest::temp_dir dir;
    slabtest::program p;
    p.binary = DPDK_PROCS_BINARY;
    p.args = std::move(args);
    for (const std::string& a :
         {std::string("--hz"), std::to_string(c.clk.hz), std::string("--step"),
          std::to_string(c.clk.step), std::string("--overhead"), std::to_string(c.clk.overhead),
          std::string("--out"), dir.file("stats")})
      p.args.push_back(a);
    p.out_path = dir.file("out");
    p.err_path = dir.file("err");
    // A run takes about a second; a stall of the EAL primary (seen under this program,
    // never standalone) must not hold up the rest.
    const slabtest::program_result r = slabtest::run_program(p, std::chrono::seconds(60));
    const std::string bytes = slabtest::read_file(dir.file("stats"));
    std::vector<latency::stats> out(count);
    if (r.status.code() == 3 || !r.status.ok() || bytes.size() != count * sizeof(latency::stats)) {
      note = r.status.code() == 3 ? "not measured: " + r.out.substr(0, r.out.find('\n'))
                                  : "failed: dpdk_procs " + r.status.describe() + ": " + r.err;
      // A repetition lost after others ran would otherwise go unseen (the row shows them).
      std::fprintf(stderr, "%s, rte_mempool: %s\n", what, note.c_str());
      return {};
    }
    std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
#else
    (void)args;
    (void)count;
    (void)what;
    note = "not built: DPDK was not found at configure time";
    return {};
#endif
  }

  /// The handoff for rte_mempool: A the EAL primary, B a secondary, on the same CPUs
  /// and loops as the pool's (handoff.hpp).
  void dpdk_handoff(const std::vector<std::string>& names) {
    latency::row& a = row("handoff A", "rte_mempool");
    if (!a.note.empty()) return;
    if (o.quick) {
      // A smoke check, not a measurement: a multi-process EAL run needs root and free
      // hugepages, and its primary has been seen to stall under this program.
      a.note = "not run with --quick (a multi-process EAL run is a measurement)";
      return;
    }
    const std::vector<latency::stats> h =
        run_dpdk_procs({"--cpu-a", std::to_string(info.cpu), "--cpu-b", std::to_string(other_cpu),
                        "--n", std::to_string(pl.handoff_n)},
                       3, "handoff", a.note);
    for (std::size_t k = 0; k < h.size(); ++k)
      row(names[k], "rte_mempool").reps.push_back(h[k]);
  }

  void nprocs(std::size_t n, std::size_t r) {
    const std::string w = "nproc_churn/" + std::to_string(n);
    const std::vector<int> cpus = {info.cpu, other_cpu};
    add(row(w, "slab::pool"), [&] {
      return run_nproc(n, cpus, [&](std::size_t i, nproc::shared& sh) {
        slab::client cl = slab::client::connect(socket);
        slab::pool<Payload64> p = cl.open<Payload64>("b64");
        pool_peer<Payload64>::current = &p;
        pool_peer<Payload64> peer(0);
        return nproc::churn_bursts(peer, pl.nproc_live, pl.nproc_ops, 1000 * r + i, c.clk, sh);
      });
    });
    add(row(w, "boost node_alloc"), [&] {
      // The parent creates the segment; each child opens it and takes the node pool
      // of the same segment manager: one shared free list behind the segment's mutex.
      peers::boost_segment seg(n * (pl.nproc_live + 4 * nproc::burst) + 65536, sizeof(Payload64));
      const std::string name = seg.name();
      return run_nproc(n, cpus, [&](std::size_t i, nproc::shared& sh) {
        struct shared_node_peer {
          using key_type = Payload64*;
          using alloc = peers::boost_node_peer<Payload64>::alloc;
          peers::bip::managed_shared_memory s;
          alloc a;
          explicit shared_node_peer(const std::string& nm)
              : s(peers::bip::open_only, nm.c_str()), a(s.get_segment_manager()) {}
          key_type insert(const Payload64& v) { return ::new (&*a.allocate(1)) Payload64(v); }
          Payload64* get(key_type k) noexcept { return k; }
          void erase(key_type k) noexcept { a.deallocate(alloc::pointer(k), 1); }
        } peer(name);
        return nproc::churn_bursts(peer, pl.nproc_live, pl.nproc_ops, 1000 * r + i, c.clk, sh);
      });
    });
    row(w, "rte_mempool",
        "not measured yet: N EAL secondaries churning one mempool ran standalone, but "
        "under this program the EAL primary stalled after its secondaries finished "
        "(docs/benchmarks.md); not shipped until that is understood");
  }
};

/// How fast shmd prepared (bound, fallocated, faulted in, locked) the tiers it added to
/// pool `name` after tier 0, from the pool's tier table: bytes and seconds, summed; and
/// what one chunk of tier 1 (pool_map::chunk_end) is, in slots and in bytes.
struct preparation {
  double bytes = 0, seconds = 0;
  std::uint64_t chunk_slots = 0;
  double chunk_bytes = 0;
};
preparation prepared(const std::string& socket, const std::string& name) {
  slabtest::pool_view v(socket, name);
  const slab::proto::pool_header& h = v.map().info();
  preparation p;
  for (unsigned t = 1; t < h.tiers_published.load(); ++t) {
    p.bytes += static_cast<double>(h.tiers[t].meta_bytes + h.tiers[t].data_bytes);
    p.seconds += static_cast<double>(h.tiers[t].prepare_ns) / 1e9;
  }
  if (h.tiers_published.load() > 1) {
    const slab::proto::tier_info& t1 = h.tiers[1];
    p.chunk_slots = v.map().chunk_end(t1.first_slot) - t1.first_slot;
    p.chunk_bytes = static_cast<double>(t1.meta_bytes + t1.data_bytes) *
                    static_cast<double>(p.chunk_slots) / static_cast<double>(t1.slots);
  }
  return p;
}

int run(const options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const plan pl = make_plan(o.quick);
  slabtest::shmd_process d(daemon_config(o));
  latency::run_info info;
  latency::begin_run(info, "pool_latency", o.cpu, o.reps, o.quick);
  const int other_cpu = info.cpu == 0 ? 1 : info.cpu - 1;
  std::size_t samples = pl.handoff_n;
  for (const workload& w : pl.ws)
    samples = std::max(samples, w.samples());
  latency::recorder rec(std::max<std::size_t>(samples, 4'000'000));

  slab::client cl = slab::client::connect(d.socket_path());
  open_pools pools{cl.open<Payload64>("b64"), cl.open<Payload256>("b256")};
  const std::vector<peer_entry> ps = make_peers(pools, info.cpu);
  std::vector<latency::row> rows;
  rows.reserve(256); // runner::row hands out references: no reallocation
  runner run{o,        pl, d.socket_path(), info, rows, rec, {rec, {info.tsc_hz, info.tsc_step, 0}},
             other_cpu};
  std::vector<double> prep_rates; // bytes per second, one per repetition
  preparation chunk;              // what a chunk of the growth pools is
  for (std::size_t r = 0; r < o.reps; ++r) {
    slab::pool<Payload64> grow = cl.open<Payload64>("grow" + std::to_string(r));
    slab::pool<Payload64> pace = cl.open<Payload64>("pace" + std::to_string(r));
    pools.grow = &grow;
    pools.pace = &pace;
    run.rep(r, pools, ps);
    if (const preparation p = prepared(d.socket_path(), "grow" + std::to_string(r));
        p.seconds > 0) {
      prep_rates.push_back(p.bytes / p.seconds);
      chunk = p;
    }
    pools.grow = nullptr;
    pools.pace = nullptr;
  }
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::vector<targets::verdict> vs = judge(rows, pl);
  latency::print_table(std::cout, info, rows);
  latency::print_faults(std::cout, rows);
  const slab::pool_stats s = pools.b64.stats();
  std::cout << "pools: "
            << (s.hugepages ? "on hugepages" : "on normal pages (no hugepages reserved)")
            << "; growth pools start at 262144 slots, grow_at " << o.grow_at << "\n";
  if (!prep_rates.empty()) {
    std::sort(prep_rates.begin(), prep_rates.end());
    const double mid = prep_rates[prep_rates.size() / 2];
    char line[200];
    std::snprintf(line, sizeof line,
                  "shmd prepared the growth pools' new tiers at %.2f GB/s (median of %zu, "
                  "%.2f-%.2f): %.2f ms per chunk of %llu slots of 64 bytes\n",
                  mid / 1e9, prep_rates.size(), prep_rates.front() / 1e9, prep_rates.back() / 1e9,
                  chunk.chunk_bytes / mid * 1e3,
                  static_cast<unsigned long long>(chunk.chunk_slots));
    std::cout << line;
  }
  std::cout << peers::dpdk::describe() << '\n';
  targets::print(std::cout, vs);
  write_outputs(o, info, rows, vs);
  peers::dpdk::shutdown();
  // What shmd logged (warnings and up: a tier on normal pages, a slow growth), which
  // the figures above may owe something to.
  if (const std::string said = d.stderr_text(); !said.empty()) std::cerr << "shmd:\n" << said;
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pool_latency: %s\n", e.what());
    peers::dpdk::shutdown();
    return 2;
  }
}
