// pool_latency: the daemon-backed pool (slab::pool<T> through shmd) beside the embedded
// slab and the floor, per operation, in TSC cycles net of the timer.
//
// It starts its own shmd (the one built beside it, or --shmd PATH) with a temporary
// config: one pool of 64-byte slots, 1M slots ready, hugepages preferred.
//
// Workloads (each sample one timed operation):
//   alloc_free  emplace then erase of the same value: the cache-hit path (after the first
//               magazine, every alloc and free stays in the context's two magazines).
//   get         random get over 1M live keys, reading one word of the value; the plain
//               array row indexes a prefaulted array instead (no key check at all).
//   handoff     process A (this one) emplaces a value stamped with the TSC and passes the
//               key through a shared ring to process B, pinned to another CPU, which gets
//               and erases it; one key in flight at a time. Rows: A's emplace, B's
//               get+erase, and stamp-to-get (the whole handoff: the key's and the value's
//               cache lines crossing cores, ring included).
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <slab/client.hpp>

#include "latency.hpp"
#include "peers/peers.hpp"

namespace {

using peers::Payload64;

struct options {
  std::string shmd = SHMD_BINARY;
  std::size_t reps = 3;
  std::size_t n = 1'000'000;
  bool quick = false;
  int cpu = -1;
};

// ---- a daemon of our own ----------------------------------------------------------

class daemon_process {
public:
  explicit daemon_process(const std::string& binary) {
    dir_ = std::filesystem::temp_directory_path() / ("pool_latency." + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    socket_ = (dir_ / "shmd.sock").string();
    const std::string cfg = (dir_ / "shmd.toml").string();
    std::ofstream(cfg) << "[daemon]\nsocket = \"" << socket_ << "\"\nlog_level = \"warning\"\n"
                       << "segment_dir = \"" << dir_.string() << "\"\nhugepage_dir = \"\"\n"
                       << "[[pool]]\nname = \"bench\"\nslot_size = 64\ncapacity = 1048576\n"
                       << "max_capacity = 8388608\nhugepages = \"prefer\"\ncontexts = 8\n";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl(binary.c_str(), binary.c_str(), "--config", cfg.c_str(), nullptr);
      std::perror("exec shmd");
      ::_exit(127);
    }
    for (int i = 0; i < 300; ++i) { // up to 30 s: the first tier is prefaulted first
      try {
        (void)slab::client::connect(socket_);
        return;
      } catch (const slab::error&) {
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) throw std::runtime_error("shmd exited at start");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    throw std::runtime_error("shmd did not come up at " + socket_);
  }
  ~daemon_process() {
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    std::filesystem::remove_all(dir_);
  }
  [[nodiscard]] const std::string& socket() const { return socket_; }

private:
  std::filesystem::path dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

// ---- workloads ----------------------------------------------------------------------

struct ctx {
  latency::recorder& rec;
  latency::clock_info clk;
  std::size_t n;
};

latency::stats done(ctx& c) { return latency::summarize(c.rec.samples(), c.clk); }

template <class Pool> latency::stats alloc_free(ctx& c, Pool& p) {
  const Payload64 v = peers::make_payload(7);
  for (int warm = 0; warm < 1000; ++warm)
    p.erase(p.insert(v));
  c.rec.clear();
  for (std::size_t i = 0; i < c.n; ++i) {
    c.rec.time([&] { p.erase(p.insert(v)); });
  }
  return done(c);
}

template <class Pool> latency::stats random_get(ctx& c, Pool& p) {
  std::vector<typename Pool::key_type> keys = peers::fill(p, c.n);
  peers::splitmix64 rng(42);
  c.rec.clear();
  for (std::size_t i = 0; i < c.n; ++i) {
    const auto k = keys[rng.below(keys.size())];
    c.rec.time([&] { return p.get(k)->w[3]; });
  }
  for (const auto& k : keys)
    p.erase(k);
  return done(c);
}

// The client pool behind the peers' interface.
struct pool_peer {
  using key_type = slab::key;
  slab::pool<Payload64>& p;
  key_type insert(const Payload64& v) { return p.emplace(v); }
  Payload64* get(key_type k) noexcept { return p.get(k); }
  void erase(key_type k) noexcept { p.erase(k); }
};

// A plain prefaulted array indexed directly: the least a get can cost.
struct array_peer {
  using key_type = std::size_t;
  std::vector<Payload64> a;
  std::size_t used = 0;
  explicit array_peer(std::size_t n) : a(n) {}
  key_type insert(const Payload64& v) {
    a[used] = v;
    return used++;
  }
  Payload64* get(key_type k) noexcept { return &a[k]; }
  void erase(key_type) noexcept {}
};

// ---- handoff -------------------------------------------------------------------------

// Single-producer single-consumer ring of keys in a MAP_SHARED page set.
struct ring {
  static constexpr std::size_t size = 1024;
  alignas(64) std::atomic<std::uint64_t> head{0};
  alignas(64) std::atomic<std::uint64_t> tail{0};
  alignas(64) std::atomic<bool> consumer_ready{false};
  alignas(64) std::uint64_t keys[size];
  latency::stats results[2]; // written by the consumer: get+erase, stamp-to-get
};

void consume(ring& r, const std::string& socket, const ctx& c0, int cpu) {
  latency::pin_to_cpu(cpu);
  slab::client cl = slab::client::connect(socket);
  slab::pool<Payload64> pool = cl.open<Payload64>("bench");
  latency::recorder get_erase(c0.n), e2e(c0.n);
  r.consumer_ready.store(true, std::memory_order_release); // the producer starts now
  for (std::size_t i = 0; i < c0.n; ++i) {
    while (r.tail.load(std::memory_order_acquire) == r.head.load(std::memory_order_relaxed)) {}
    const std::uint64_t raw = r.keys[r.head.load(std::memory_order_relaxed) % ring::size];
    r.head.fetch_add(1, std::memory_order_release);
    const slab::key k = slab::key::from_raw(raw);
    std::uint64_t stamp = 0;
    const std::uint64_t t0 = latency::tsc_start();
    Payload64* v = pool.get(k);
    stamp = v->w[0];
    pool.erase(k);
    const std::uint64_t t1 = latency::tsc_stop();
    get_erase.add(t1 - t0);
    e2e.add(t0 > stamp ? t0 - stamp : 0);
  }
  r.results[0] = latency::summarize(get_erase.samples(), c0.clk);
  latency::clock_info raw_clk = c0.clk;
  raw_clk.overhead = 0; // stamp-to-get is a difference of two reads, not a timed region
  r.results[1] = latency::summarize(e2e.samples(), raw_clk);
}

std::vector<latency::stats> handoff(ctx& c, slab::pool<Payload64>& pool, const std::string& socket,
                                    int consumer_cpu) {
  void* mem =
      ::mmap(nullptr, sizeof(ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error("mmap of the ring failed");
  ring& r = *new (mem) ring();
  const pid_t child = ::fork();
  if (child == 0) {
    try {
      consume(r, socket, c, consumer_cpu);
      ::_exit(0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "handoff consumer: %s\n", e.what());
      ::_exit(1);
    }
  }
  while (!r.consumer_ready.load(std::memory_order_acquire)) {
    int st = 0;
    if (::waitpid(child, &st, WNOHANG) == child) throw std::runtime_error("handoff consumer died");
  }
  c.rec.clear();
  for (std::size_t i = 0; i < c.n; ++i) {
    // One key in flight at a time: stamp-to-get then measures the handoff itself, not
    // time spent queued behind earlier keys.
    while (r.tail.load(std::memory_order_relaxed) != r.head.load(std::memory_order_acquire)) {}
    Payload64 v = peers::make_payload(i);
    v.w[0] = latency::tsc_stop();
    const slab::key k = c.rec.time([&] { return pool.emplace(v); });
    r.keys[r.tail.load(std::memory_order_relaxed) % ring::size] = k.raw();
    r.tail.fetch_add(1, std::memory_order_release);
  }
  int st = 0;
  ::waitpid(child, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) throw std::runtime_error("handoff consumer failed");
  std::vector<latency::stats> out{done(c), r.results[0], r.results[1]};
  ::munmap(mem, sizeof(ring));
  return out;
}

// ---- driver --------------------------------------------------------------------------

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
    } else if (a == "--shmd" && i + 1 < argc) {
      o.shmd = argv[++i];
    } else if (a == "--cpu" && i + 1 < argc) {
      o.cpu = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: pool_latency [--quick] [--reps K] [--cpu N] [--shmd PATH]\n"
                   "Cache-hit alloc+free, random get and cross-process handoff through a\n"
                   "shmd it starts itself, beside slab::slab, the floor and a plain array.\n");
      std::exit(a == "--help" ? 0 : 1);
    }
  }
  return o;
}

int run(const options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  daemon_process d(o.shmd);
  latency::run_info info;
  latency::begin_run(info, "pool_latency", o.cpu, o.reps, o.quick);
  const int other_cpu = info.cpu == 0 ? 1 : 0;
  latency::recorder rec(std::max<std::size_t>(o.n, 1'000'000));
  ctx c{rec, {info.tsc_hz, info.tsc_step, 0}, o.n};

  slab::client cl = slab::client::connect(d.socket());
  slab::pool<Payload64> pool = cl.open<Payload64>("bench");
  pool_peer pp{pool};
  std::vector<latency::row> rows = {
      {"timer", "empty", {}},           {"alloc_free", "slab::pool", {}},
      {"alloc_free", "slab::slab", {}}, {"alloc_free", "floor", {}},
      {"get", "slab::pool", {}},        {"get", "slab::slab", {}},
      {"get", "plain array", {}},       {"handoff", "A: emplace", {}},
      {"handoff", "B: get+erase", {}},  {"handoff", "stamp-to-get", {}}};
  for (std::size_t rep = 0; rep < o.reps; ++rep) {
    const latency::timer_result t =
        latency::measure_timer(rec, o.quick ? 100'000 : 2'000'000, c.clk);
    c.clk.overhead = t.overhead;
    info.overhead.push_back(t.overhead);
    rows[0].reps.push_back(t.floor);
    std::fprintf(stderr, "rep %zu/%zu\n", rep + 1, o.reps);
    {
      peers::slab_peer sp(o.n);
      peers::floor_peer fp(o.n);
      rows[1].reps.push_back(alloc_free(c, pp));
      rows[2].reps.push_back(alloc_free(c, sp));
      rows[3].reps.push_back(alloc_free(c, fp));
    }
    {
      peers::slab_peer sp(o.n);
      array_peer ap(o.n);
      rows[4].reps.push_back(random_get(c, pp));
      rows[5].reps.push_back(random_get(c, sp));
      rows[6].reps.push_back(random_get(c, ap));
    }
    const std::vector<latency::stats> h = handoff(c, pool, d.socket(), other_cpu);
    for (std::size_t i = 0; i < 3; ++i)
      rows[7 + i].reps.push_back(h[i]);
  }
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  latency::print_table(std::cout, info, rows);
  const slab::pool_stats s = pool.stats();
  std::printf("pool 'bench': %s, %u tier(s), %llu slots ready\n",
              s.hugepages ? "hugepages" : "normal pages (no hugepages reserved)", s.tiers,
              static_cast<unsigned long long>(s.ready_slots));
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pool_latency: %s\n", e.what());
    return 2;
  }
}
