// dpdk_procs: DPDK's rte_mempool across processes, run the way a DPDK user shares a
// mempool between processes: an EAL primary (this process) creates the mempool
// (per-lcore cache of 512, DPDK's largest) and a memzone, and execs an EAL secondary of
// itself, which looks both up by name in the shared hugepage memory; each process uses
// its own lcore's cache. Hugepage memory sits at the same address in every process, so
// objects pass between them as addresses.
//
//   dpdk_procs --cpu-a A --cpu-b B --n N --hz HZ --step S --overhead O --out FILE
//     the handoff (handoff.hpp): the primary is process A on CPU A, the secondary is
//     B on CPU B. FILE receives three latency::stats (A: get, B: take, stamp-to-get).
//
// The stats are computed with the caller's clock (its TSC rate, step and timer
// overhead) so that the figures stand beside the other peers'. Needs root and free
// hugepages: multi-process EAL maps hugetlbfs files, so the primary mounts a private
// hugetlbfs for the run (unmounted after). Exit 0 done, 3 cannot run on this machine
// (the reason on stdout), 1 failed.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_memzone.h>

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <slab/platform/platform.hpp>
#include <slabtest/process.hpp>

#include "handoff.hpp"

namespace {

constexpr const char* pool_name = "slab_procs_pool";
constexpr const char* zone_name = "slab_procs_zone";
constexpr unsigned cache_size = 512; // RTE_MEMPOOL_CACHE_MAX_SIZE

struct options {
  int cpu_a = -1, cpu_b = -1;
  std::size_t n = 0;
  latency::clock_info clk{};
  std::string out;
  // the secondary's: the primary's file prefix and hugetlbfs mount
  std::string secondary_prefix, huge_dir;
};

/// Thrown rather than exiting, so that what was set up (the hugetlbfs mount) is undone
/// on the way out; main prints it and exits 3.
struct cannot_run_here : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void cannot_run(const std::string& why) { throw cannot_run_here(why); }

/// Hugepage memory a new mapping can still count on, in MiB.
std::uint64_t free_hugepage_megabytes() {
  const slab::platform::hugepage_info h = slab::platform::query_hugepages();
  return h.available() * h.page_size / (1024 * 1024);
}

/// Objects the mempool holds, and the hugepage memory the primary's EAL takes for them
/// (an object with its header and trailer is under 256 bytes; 16 MiB for EAL itself).
constexpr unsigned objects = 4096 + 2 * cache_size;
constexpr unsigned eal_megabytes = 16 + objects * 256 / (1024 * 1024);

void eal_init(const std::string& type, const std::string& prefix, const std::string& huge_dir,
              int cpu) {
  std::vector<std::string> args = {"dpdk_procs",
                                   "--proc-type=" + type,
                                   "--file-prefix",
                                   prefix,
                                   "--huge-dir",
                                   huge_dir,
                                   "-l",
                                   std::to_string(cpu),
                                   "--no-pci",
                                   "--no-telemetry",
                                   "--log-level",
                                   "*:error"};
  if (type == "primary") args.insert(args.end(), {"-m", std::to_string(eal_megabytes)});
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0)
    throw std::runtime_error(type + " EAL init: " + rte_strerror(rte_errno));
}

/// A private hugetlbfs mount for the run, on a fresh directory; both removed after. It
/// is made in a mount namespace of this process's own (the secondaries, its children,
/// share it), so that it goes with the last of them even if they are killed -9.
class huge_mount {
public:
  huge_mount() {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr))
      cannot_run("cannot make a mount namespace for the EAL primary (" +
                 std::string(std::strerror(errno)) + "): needs root");
    if (::mount("nodev", dir_.path().c_str(), "hugetlbfs", 0, nullptr) != 0)
      cannot_run("cannot mount hugetlbfs for the EAL primary (" +
                 std::string(std::strerror(errno)) + "): needs root");
  }
  ~huge_mount() { ::umount2(dir_.path().c_str(), MNT_DETACH); } // then dir_ goes
  huge_mount(const huge_mount&) = delete;
  huge_mount& operator=(const huge_mount&) = delete;
  [[nodiscard]] const std::string& dir() const { return dir_.path(); }

private:
  slabtest::temp_dir dir_;
};

/// The secondaries a primary started: killed and reaped if the primary leaves early
/// (they spin on shared memory, mapping the mount); wait() reaps them when done.
class secondaries {
public:
  secondaries() = default;
  secondaries(const secondaries&) = delete;
  secondaries& operator=(const secondaries&) = delete;
  ~secondaries() {
    for (const pid_t p : pids_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
  }
  /// Starts this program again as a secondary on `cpu`, its stderr to err_path.
  void start(const options& o, int cpu, const std::string& prefix, const std::string& huge_dir,
             const std::string& err_path) {
    slabtest::program p;
    p.binary = "/proc/self/exe";
    p.args = {"--secondary", prefix,
              "--huge-dir",  huge_dir,
              "--cpu-a",     std::to_string(o.cpu_a),
              "--cpu-b",     std::to_string(cpu),
              "--n",         std::to_string(o.n),
              "--hz",        std::to_string(o.clk.hz),
              "--step",      std::to_string(o.clk.step),
              "--overhead",  std::to_string(o.clk.overhead),
              "--out",       o.out};
    p.err_path = err_path;
    pids_.push_back(slabtest::start_program(p));
  }
  /// False when one of them has exited (dead before its time, when called early).
  bool all_running() {
    const auto gone = std::find_if(pids_.begin(), pids_.end(), [](pid_t p) {
      int st = 0;
      return ::waitpid(p, &st, WNOHANG) == p;
    });
    if (gone == pids_.end()) return true;
    pids_.erase(gone); // reaped
    lost_ = true;
    return false;
  }
  /// Reaps them all; true when every one exited 0.
  bool wait() {
    bool ok = true;
    for (const pid_t p : pids_) {
      int st = 0;
      ok = ::waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0 && ok;
    }
    pids_.clear();
    return ok && !lost_;
  }

private:
  std::vector<pid_t> pids_;
  bool lost_ = false;
};

/// The primary's EAL, mempool and memzone for one run, torn down in reverse.
class primary_session {
public:
  primary_session(const options& o, std::size_t zone_bytes) {
    if (::geteuid() != 0) cannot_run("multi-process EAL needs root (a hugetlbfs mount)");
    if (free_hugepage_megabytes() < eal_megabytes + 8)
      cannot_run("multi-process EAL needs hugepages: fewer than " +
                 std::to_string(eal_megabytes + 8) + " MiB free (bench/run --hugepages N)");
    mount_ = std::make_unique<huge_mount>();
    prefix_ = "slab_procs_" + std::to_string(::getpid());
    eal_init("primary", prefix_, mount_->dir(), o.cpu_a);
    mp_ = rte_mempool_create(pool_name, objects, sizeof(peers::Payload64), cache_size, 0, nullptr,
                             nullptr, nullptr, nullptr, SOCKET_ID_ANY, 0);
    mz_ = rte_memzone_reserve(zone_name, zone_bytes, SOCKET_ID_ANY, 0);
    if (mp_ == nullptr || mz_ == nullptr) {
      const std::string why = rte_strerror(rte_errno);
      teardown();
      throw std::runtime_error("primary: mempool or memzone: " + why);
    }
  }
  ~primary_session() { teardown(); }
  primary_session(const primary_session&) = delete;
  primary_session& operator=(const primary_session&) = delete;

  rte_mempool* pool() const noexcept { return mp_; }
  void* zone() const noexcept { return mz_->addr; }
  const std::string& prefix() const noexcept { return prefix_; }
  const std::string& huge_dir() const noexcept { return mount_->dir(); }

private:
  void teardown() noexcept {
    if (mp_ != nullptr) rte_mempool_free(mp_);
    if (mz_ != nullptr) rte_memzone_free(mz_);
    mp_ = nullptr;
    mz_ = nullptr;
    const std::string runtime = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(runtime, ec);
  }
  std::unique_ptr<huge_mount> mount_;
  std::string prefix_;
  rte_mempool* mp_ = nullptr;
  const rte_memzone* mz_ = nullptr;
};

/// A secondary's view: the primary's mempool and memzone, found by name.
struct secondary_session {
  rte_mempool* mp = nullptr;
  void* zone = nullptr;
  explicit secondary_session(const options& o) {
    eal_init("secondary", o.secondary_prefix, o.huge_dir, o.cpu_b);
    mp = rte_mempool_lookup(pool_name);
    const rte_memzone* mz = rte_memzone_lookup(zone_name);
    if (mp == nullptr || mz == nullptr) throw std::runtime_error("secondary: lookup failed");
    zone = mz->addr;
  }
  ~secondary_session() { rte_eal_cleanup(); }
  secondary_session(const secondary_session&) = delete;
  secondary_session& operator=(const secondary_session&) = delete;
};

template <std::size_t N> void write_stats(const std::string& path, const latency::stats (&s)[N]) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(s), sizeof s);
  if (!f) throw std::runtime_error("cannot write " + path);
}

// ---- the handoff ---------------------------------------------------------------------

/// B: reads each value's stamp and puts the object back.
int handoff_secondary(const options& o) {
  const secondary_session s(o);
  auto& r = *static_cast<handoff::ring*>(s.zone);
  struct side {
    rte_mempool* mp;
    std::uint64_t take(std::uint64_t raw) {
      auto* v = reinterpret_cast<peers::Payload64*>(static_cast<std::uintptr_t>(raw));
      const std::uint64_t stamp = v->w[0];
      std::destroy_at(v);
      rte_mempool_put(mp, v);
      return stamp;
    }
  };
  handoff::consume(r, side{s.mp}, o.clk, o.n);
  return 0;
}

/// A: gets objects, writes the stamped value, passes their addresses to B.
int handoff_primary(const options& o) {
  if (o.cpu_a == o.cpu_b) // one lcore id in both processes would share one lcore cache
    cannot_run("the handoff needs two CPUs (A and B on " + std::to_string(o.cpu_a) + ")");
  const primary_session s(o, sizeof(handoff::ring));
  auto& r = *::new (s.zone()) handoff::ring();
  const slabtest::temp_dir logs;
  secondaries b;
  b.start(o, o.cpu_b, s.prefix(), s.huge_dir(), logs.file("secondary.err"));
  latency::recorder rec(o.n);
  const bool started = handoff::produce(
      r, rec, o.n, [&] { return b.all_running(); },
      [&](const peers::Payload64& v) {
        void* p = nullptr;
        if (rte_mempool_get(s.pool(), &p) != 0) throw std::bad_alloc();
        return static_cast<std::uint64_t>(
            reinterpret_cast<std::uintptr_t>(::new (p) peers::Payload64(v)));
      });
  if (!b.wait() || !started) {
    throw std::runtime_error("the secondary (B) failed: " +
                             slabtest::read_file(logs.file("secondary.err")));
  }
  const latency::stats out[3] = {latency::summarize(rec.samples(), o.clk), r.results[0],
                                 r.results[1]};
  write_stats(o.out, out);
  return 0;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--cpu-a")
      o.cpu_a = std::stoi(v);
    else if (a == "--cpu-b")
      o.cpu_b = std::stoi(v);
    else if (a == "--n")
      o.n = std::stoull(v);
    else if (a == "--hz")
      o.clk.hz = std::stod(v);
    else if (a == "--step")
      o.clk.step = std::stoull(v);
    else if (a == "--overhead")
      o.clk.overhead = std::stod(v);
    else if (a == "--out")
      o.out = v;
    else if (a == "--secondary")
      o.secondary_prefix = v;
    else if (a == "--huge-dir")
      o.huge_dir = v;
    else
      throw std::runtime_error("unknown option " + a);
  }
  if (o.cpu_a < 0 || o.cpu_b < 0 || o.n == 0 || o.clk.hz <= 0 || o.out.empty())
    throw std::runtime_error(
        "usage: dpdk_procs --cpu-a A --cpu-b B --n N --hz HZ --step S --overhead O --out FILE");
  return o;
}

} // namespace

int main(int argc, char** argv) {
  try {
    const options o = parse(argc, argv);
    return o.secondary_prefix.empty() ? handoff_primary(o) : handoff_secondary(o);
  } catch (const cannot_run_here& e) {
    std::printf("%s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dpdk_procs: %s\n", e.what());
    return 1;
  }
}
