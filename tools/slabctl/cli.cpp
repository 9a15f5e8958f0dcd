// slabctl: the operator's view of shmd's pools. Read-only: it observes through read-only
// segment fds and never registers a context. This file reads the command line and maps
// every error to its exit code; the verbs are in verbs.cpp and inspect.cpp.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>

#include <slab/client.hpp>
#include <slab/error.hpp>
#include <slab/proto/protocol.hpp>

#include "cli.hpp"
#include "config_socket.hpp"

namespace slabctl {

void usage_error(const std::string& what) {
  throw failure(exit_code::usage, "slabctl: " + what + " (slabctl --help lists the verbs)");
}

} // namespace slabctl

namespace {

using slabctl::exit_code;
using slabctl::failure;
using slabctl::options;
using slabctl::socket_from_config;
using slabctl::usage_error;

constexpr const char* usage_text = R"(usage: slabctl [OPTIONS] VERB [ARGS]

Verbs:
  status [POOL...]     occupancy, tiers, contexts, growth and warnings of every pool
                       (or the named ones); --json for the documented JSON schema
  top                  a live view refreshing in place; q or Ctrl-C quits
  inspect POOL KEY     whether KEY (decimal or 0x hex) is live, where its slot is, and
                       a hex dump of the slot; --json for scripts
  audit [POOL...]      full consistency check (safe while clients run); --json
  metrics [POOL...]    Prometheus text format, for node_exporter's textfile collector

Options:
  --socket PATH        shmd's control socket (default: $SHMD_SOCKET, else
                       /run/shmd/shmd.sock)
  --config FILE        take the socket from shmd's config FILE
  --json               machine-readable output (status, inspect, audit)
  --interval SECONDS   top's refresh period (default 1)
  --timeout SECONDS    audit: give up as inconclusive after this long (default 10)
  --no-numa-check      status: do not ask the kernel where the pages are
  --help, --version

Exit codes: 0 ok, 1 audit violations, 2 usage, 3 shmd unreachable, 4 permission
denied, 5 unknown pool, 6 stale key, 7 malformed key, 8 audit inconclusive, 9 other
failure (see docs/slabctl.md).
)";

double seconds_arg(const std::string& opt, const char* v) {
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(d > 0.0) || d > 86400.0)
    usage_error(opt + " takes a number of seconds in (0, 86400], got '" + std::string(v) + "'");
  return d;
}

std::optional<options> parse(int argc, char** argv) {
  options o;
  std::string config;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(usage_text, stdout);
      return std::nullopt;
    }
    if (a == "--version") {
      std::printf("slabctl %s (protocol ABI %u)\n", SLAB_VERSION, slab::proto::abi_version);
      return std::nullopt;
    }
    if (a == "--socket") {
      o.socket = value();
    } else if (a == "--config") {
      config = value();
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--no-numa-check") {
      o.numa_check = false;
    } else if (a == "--interval") {
      o.interval = seconds_arg(a, value());
    } else if (a == "--timeout") {
      o.timeout = seconds_arg(a, value());
    } else if (a.size() > 1 && a[0] == '-' && a != "-") {
      usage_error("unknown option '" + a + "'");
    } else if (o.verb.empty()) {
      o.verb = a;
    } else {
      o.args.push_back(a);
    }
  }
  if (o.verb.empty()) usage_error("no verb given");
  if (o.socket.empty() && !config.empty()) {
    try {
      o.socket = socket_from_config(config);
    } catch (const slab::error& e) {
      throw failure(exit_code::usage, std::string("slabctl: --config: ") + e.what());
    }
  }
  if (o.socket.empty()) o.socket = slab::default_socket_path();
  return o;
}

} // namespace

int main(int argc, char** argv) {
  try {
    const std::optional<options> o = parse(argc, argv);
    if (!o) return 0;
    return slabctl::run_verb(*o);
  } catch (const failure& f) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s\n", f.what());
    return static_cast<int>(f.code());
  } catch (const slab::error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "slabctl: %s\n", e.what());
    return static_cast<int>(slabctl::exit_code_of(e.code()));
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "slabctl: %s\n", e.what());
    return static_cast<int>(exit_code::failure);
  }
}
