// shmd: the slab service's daemon. Reads its config, creates every pool's first tier
// (mapped, NUMA-bound, prefaulted, mlocked), then serves clients on its socket until
// SIGTERM or SIGINT. Exit codes: 0 clean stop, 1 bad usage or config, 2 could not start.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slab/error.hpp>
#include <slab/mapped/pool_map.hpp>
#include <slab/platform/ipc.hpp>

#include "config.hpp"
#include "log.hpp"
#include "pool_owner.hpp"
#include "server.hpp"

namespace {

constexpr const char* usage = R"(usage: shmd --config FILE [--foreground] [--check]
       shmd --config FILE --destroy [POOL...]
       shmd --help | --version

Maps the pools FILE declares as shared memory (hugepage-backed, mlocked, NUMA-bound)
and serves slab clients on the control socket FILE names.

  --config FILE   the TOML configuration (see packaging/shmd.toml)
  --foreground    stay in the foreground (the default; shmd never forks, as systemd's
                  Type=notify expects; accepted for clarity in scripts)
  --check         validate FILE, print the pools it declares, and exit
  --destroy       remove the segments (and so every value) of the named pools, or of
                  every pool FILE declares; refused while a shmd serves FILE's socket.
                  Pools survive restarts of shmd; this is the one way to drop them
  --help          this text
  --version       the version and protocol ABI
)";

struct args {
  std::string config;
  bool check = false;
  bool destroy = false;
  std::vector<std::string> pools; // for --destroy
};

int parse_args(int argc, char** argv, args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (s == "--version") {
      std::printf("shmd %s (protocol ABI %u)\n", SLAB_VERSION, slab::proto::abi_version);
      return 0;
    }
    if (s == "--foreground") continue;
    if (s == "--check") {
      a.check = true;
    } else if (s == "--destroy") {
      a.destroy = true;
    } else if (a.destroy && s.rfind("--", 0) != 0) {
      a.pools.push_back(s);
    } else if (s == "--config" && i + 1 < argc) {
      a.config = argv[++i];
    } else if (s.rfind("--config=", 0) == 0) {
      a.config = s.substr(9);
    } else {
      std::fprintf(stderr, "shmd: unknown argument '%s'\n%s", s.c_str(), usage);
      return 1;
    }
  }
  if (a.config.empty()) {
    std::fprintf(stderr, "shmd: --config FILE is required\n%s", usage);
    return 1;
  }
  return -1; // go on
}

// Why shmd may not use a directory, and what to change: it runs as some user, which must
// be able to write there.
std::string dir_problem(const std::string& what, int err) {
  std::string s = what + ": " + std::strerror(err);
  if (err == EACCES || err == EPERM || err == EROFS) {
    s += " (shmd runs as uid " + std::to_string(::geteuid()) + ", gid " +
         std::to_string(::getegid()) +
         "; the directory must be writable by it: chown it to shmd's user, as the package's "
         "tmpfiles.d/shmd.conf does, or point segment_dir/hugepage_dir elsewhere)";
  }
  return s;
}

// One shmd per segment directory: a second one would adopt the pools of the first while
// it runs them (take over its own context, record 0, reclaim its clients' records). An
// flock on a file in the directory, held until the process exits (the fd is never
// closed; close-on-exec).
void lock_segment_dir(const std::string& dir) {
  const std::string path = dir + "/.shmd.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw slab::error(slab::errc::system, dir_problem("cannot open " + path, errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(fd);
    throw slab::error(slab::errc::system,
                      e == EWOULDBLOCK ? "another shmd is using the segment directory " + dir +
                                             " (" + path + " is locked); not touching its pools"
                                       : "cannot lock " + path + ": " + std::strerror(e));
  }
}

// The directories segments live in, created if missing (mode 0700: only shmd opens
// segment files; clients get their fds over the socket), and locked for this process.
slab::platform::segment_store make_store(const shmd::daemon_config& cfg) {
  slab::platform::segment_store store;
  store.normal_dir = cfg.segment_dir;
  store.huge_dir = cfg.hugepage_dir;
  if (store.huge_dir == "auto") {
    const std::string mount = slab::platform::find_hugetlbfs_mount();
    store.huge_dir = mount.empty() ? std::string() : mount + "/shmd";
    if (mount.empty()) {
      shmd::log_info("no hugetlbfs mount: hugepage segments are memfds and do not survive a "
                     "restart of shmd (mount hugetlbfs, e.g. at /dev/hugepages, to keep them)");
    }
  }
  for (const std::string* dir : {&store.normal_dir, &store.huge_dir}) {
    if (dir->empty()) continue;
    if (::mkdir(dir->c_str(), 0700) != 0 && errno != EEXIST) {
      throw slab::error(slab::errc::system,
                        dir_problem("cannot create segment directory " + *dir, errno));
    }
    lock_segment_dir(*dir);
  }
  return store;
}

int destroy(const shmd::daemon_config& cfg, std::vector<std::string> pools) {
  if (slab::platform::connect_seqpacket(cfg.socket)) {
    shmd::log_error("a shmd is serving " + cfg.socket + ": stop it before --destroy");
    return 1;
  }
  if (pools.empty()) {
    for (const auto& p : cfg.pools)
      pools.push_back(p.name);
  }
  try {
    const slab::platform::segment_store store = make_store(cfg);
    for (const std::string& name : pools) {
      const unsigned n = slab::mapped::pool_map::destroy(name, store);
      std::printf("pool %s: %u segment file(s) removed\n", name.c_str(), n);
    }
  } catch (const slab::error& e) {
    shmd::log_error(e.what());
    return 2;
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  args a;
  if (const int rc = parse_args(argc, argv, a); rc >= 0) return rc;
  shmd::daemon_config cfg;
  try {
    cfg = shmd::load_config(a.config);
  } catch (const slab::error& e) {
    shmd::log_error(e.what());
    return 1;
  }
  shmd::level lvl{};
  if (shmd::parse_level(cfg.log_level, lvl)) shmd::set_log_level(lvl);
  if (a.check) {
    for (const auto& p : cfg.pools) {
      std::printf("pool %s: %u-byte slots, %llu at start, at most %llu\n", p.name.c_str(),
                  p.slot_size, static_cast<unsigned long long>(p.capacity),
                  static_cast<unsigned long long>(p.max_capacity));
    }
    std::printf("%s: ok\n", a.config.c_str());
    return 0;
  }
  if (a.destroy) return destroy(cfg, a.pools);
  // Before any pool is opened: a second shmd on a running one's config would adopt its
  // pools, taking over the running daemon's own context (record 0) and reclaiming its
  // clients' records under it, and only then fail to listen.
  if (slab::platform::connect_seqpacket(cfg.socket)) {
    shmd::log_error("cannot listen on " + cfg.socket + ": another daemon is listening on '" +
                    cfg.socket + "'; not touching its pools");
    return 2;
  }
  try {
    const slab::platform::segment_store store = make_store(cfg);
    std::vector<std::unique_ptr<shmd::pool_owner>> pools;
    for (const auto& p : cfg.pools)
      pools.push_back(shmd::pool_owner::open(p, store));
    shmd::server srv(std::move(cfg), std::move(pools));
    srv.listen();
    return srv.run();
  } catch (const slab::error& e) {
    shmd::log_error(e.what());
    return 2;
  }
}
