// shmd: the slab service's daemon. Reads its config, creates every pool's first tier
// (mapped, NUMA-bound, prefaulted, mlocked), then serves clients on its socket until
// SIGTERM or SIGINT. Exit codes: 0 clean stop, 1 bad usage or config, 2 could not start.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <slab/error.hpp>
#include <slab/mapped/pool_map.hpp>
#include <slab/platform/ipc.hpp>

#include "config.hpp"
#include "log.hpp"
#include "pool_owner.hpp"
#include "server.hpp"
#include "store.hpp"

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
    const shmd::segment_store store = shmd::open_store(cfg, shmd::store_use::destroy);
    for (const std::string& name : pools) {
      const unsigned n = slab::mapped::pool_map::destroy(name, store.dirs);
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
  // Before anything is created: in a directory another user can write to, that user
  // could bind the socket path first or replace the socket, and take the clients.
  if (const slab::platform::status d = slab::platform::check_socket_directory(cfg.socket); !d) {
    shmd::log_error("refusing to listen on " + cfg.socket + ": " + d.error().what);
    return 2;
  }
  // Before any pool is opened: a second shmd on a running one's config would adopt its
  // pools, taking over the running daemon's own context (record 0) and reclaiming its
  // clients' records under it, and only then fail to listen.
  if (slab::platform::connect_seqpacket(cfg.socket)) {
    shmd::log_error("cannot listen on " + cfg.socket + ": another daemon is listening on '" +
                    cfg.socket + "'; not touching its pools");
    return 2;
  }
  try {
    const shmd::segment_store store = shmd::open_store(cfg); // locked until shmd exits
    (void)shmd::report_unconfigured(store, cfg);
    std::vector<std::unique_ptr<shmd::pool_owner>> pools;
    for (const auto& p : cfg.pools)
      pools.push_back(shmd::pool_owner::open(p, store.dirs));
    shmd::server srv(std::move(cfg), std::move(pools));
    srv.listen();
    return srv.run();
  } catch (const slab::error& e) {
    shmd::log_error(e.what());
    return 2;
  }
}
