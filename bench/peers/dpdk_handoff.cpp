// dpdk_handoff: the cross-process handoff (handoff.hpp) for DPDK's rte_mempool, run the
// way a DPDK user shares a mempool between processes: an EAL primary (process A, this
// one) creates the mempool (per-lcore cache of 512, DPDK's largest) and the ring in a
// memzone, and execs an EAL secondary (process B) on the other CPU, which looks both up
// by name in the shared hugepage memory; each process uses its own lcore's cache. A
// passes B the object's address: hugepage memory sits at the same address in both.
//
//   dpdk_handoff --cpu-a A --cpu-b B --n N --hz HZ --step S --overhead O --out FILE
//
// FILE receives three latency::stats (A: get, B: take, stamp-to-get), computed
// with the caller's clock (its TSC rate, step and timer overhead) so that the figures
// stand beside the other peers'. Needs root and free hugepages: multi-process EAL maps
// hugetlbfs files, so A mounts a private hugetlbfs for the run (unmounted after). Exit 0
// done, 3 cannot run on this machine (the reason on stdout), 1 failed.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_memzone.h>

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

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

constexpr const char* pool_name = "slab_handoff";
constexpr const char* ring_name = "slab_handoff_ring";
constexpr unsigned cache_size = 512; // RTE_MEMPOOL_CACHE_MAX_SIZE
constexpr unsigned objects = 4096 + 2 * cache_size;
constexpr unsigned eal_megabytes = 16; // the mempool (5K objects) and the ring need about 1 MiB

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

void eal_init(const std::string& type, const std::string& prefix, const std::string& huge_dir,
              int cpu) {
  std::vector<std::string> args = {"dpdk_handoff",
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

/// B: the secondary.
int secondary(const options& o) {
  eal_init("secondary", o.secondary_prefix, o.huge_dir, o.cpu_b);
  rte_mempool* mp = rte_mempool_lookup(pool_name);
  const rte_memzone* mz = rte_memzone_lookup(ring_name);
  if (mp == nullptr || mz == nullptr) throw std::runtime_error("secondary: lookup failed");
  auto& r = *static_cast<handoff::ring*>(mz->addr);
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
  handoff::consume(r, side{mp}, o.clk, o.n);
  rte_eal_cleanup();
  return 0;
}

/// A private hugetlbfs mount for the run, on a fresh directory; both removed after.
class huge_mount {
public:
  huge_mount() {
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

/// Starts this program again as the secondary, its stderr to `err_path`.
pid_t start_secondary(const options& o, const std::string& prefix, const std::string& huge_dir,
                      const std::string& err_path) {
  slabtest::program p;
  p.binary = "/proc/self/exe";
  p.args = {"--secondary", prefix,
            "--huge-dir",  huge_dir,
            "--cpu-a",     std::to_string(o.cpu_a),
            "--cpu-b",     std::to_string(o.cpu_b),
            "--n",         std::to_string(o.n),
            "--hz",        std::to_string(o.clk.hz),
            "--step",      std::to_string(o.clk.step),
            "--overhead",  std::to_string(o.clk.overhead),
            "--out",       o.out};
  p.err_path = err_path;
  return slabtest::start_program(p);
}

/// A: the primary.
int primary(const options& o) {
  if (o.cpu_a == o.cpu_b) // one lcore id in both processes would share one lcore cache
    cannot_run("the handoff needs two CPUs (A and B on " + std::to_string(o.cpu_a) + ")");
  if (::geteuid() != 0) cannot_run("multi-process EAL needs root (a hugetlbfs mount)");
  if (free_hugepage_megabytes() < eal_megabytes + 8)
    cannot_run("multi-process EAL needs hugepages: fewer than " +
               std::to_string(eal_megabytes + 8) + " MiB free (bench/run --hugepages N)");
  huge_mount huge;
  const std::string prefix = "slab_handoff_" + std::to_string(::getpid());
  eal_init("primary", prefix, huge.dir(), o.cpu_a);
  rte_mempool* mp = rte_mempool_create(pool_name, objects, sizeof(peers::Payload64), cache_size, 0,
                                       nullptr, nullptr, nullptr, nullptr, SOCKET_ID_ANY, 0);
  const rte_memzone* mz = rte_memzone_reserve(ring_name, sizeof(handoff::ring), SOCKET_ID_ANY, 0);
  if (mp == nullptr || mz == nullptr)
    throw std::runtime_error(std::string("primary: mempool or memzone: ") +
                             rte_strerror(rte_errno));
  auto& r = *::new (mz->addr) handoff::ring();
  const slabtest::temp_dir logs;
  const pid_t b = start_secondary(o, prefix, huge.dir(), logs.file("secondary.err"));
  int st = 0;
  bool reaped = false;
  // Should A fail from here on, B (spinning on the ring, mapping the mount) goes too.
  struct reaper {
    pid_t pid;
    bool& done;
    ~reaper() {
      if (done) return;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap_b{b, reaped};
  latency::recorder rec(o.n);
  const bool started = handoff::produce(
      r, rec, o.n, [&] { return ::waitpid(b, &st, WNOHANG) != b; },
      [&](const peers::Payload64& v) {
        void* p = nullptr;
        if (rte_mempool_get(mp, &p) != 0) throw std::bad_alloc();
        return static_cast<std::uint64_t>(
            reinterpret_cast<std::uintptr_t>(::new (p) peers::Payload64(v)));
      });
  if (started) ::waitpid(b, &st, 0);
  reaped = true; // by produce's waitpid when it died, else just now
  const bool ok = started && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  if (ok) {
    const latency::stats out[3] = {latency::summarize(rec.samples(), o.clk), r.results[0],
                                   r.results[1]};
    std::ofstream f(o.out, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(out), sizeof out);
    if (!f) throw std::runtime_error("cannot write " + o.out);
  }
  rte_mempool_free(mp);
  rte_memzone_free(mz);
  const std::string runtime = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(runtime, ec);
  if (!ok) {
    throw std::runtime_error("the secondary (B) failed: " +
                             slabtest::read_file(logs.file("secondary.err")));
  }
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
    throw std::runtime_error("usage: dpdk_handoff --cpu-a A --cpu-b B --n N --hz HZ --step S "
                             "--overhead O --out FILE");
  return o;
}

} // namespace

int main(int argc, char** argv) {
  try {
    const options o = parse(argc, argv);
    return o.secondary_prefix.empty() ? primary(o) : secondary(o);
  } catch (const cannot_run_here& e) {
    std::printf("%s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dpdk_handoff: %s\n", e.what());
    return 1;
  }
}
