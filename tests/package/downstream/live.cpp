// A client built only against the installed package, talking to the installed daemon:
// starts PREFIX/sbin/shmd on a scratch config, connects, allocates, reads back and
// frees, then stops shmd and expects a clean exit. Exits non-zero on any surprise.
// Usage: downstream_live SHMD SCRATCH_DIR
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <slab/client.hpp>

namespace {

struct order {
  long id;
  double price;
  order(long i, double p) : id(i), price(p) {}
};

int fail(const char* what) {
  std::fprintf(stderr, "downstream_live: %s\n", what);
  return 1;
}

// Retries while shmd is still starting (no socket yet, or not listening).
std::optional<slab::client> connect(const std::string& socket) {
  for (int i = 0; i < 200; ++i) {
    try {
      return slab::client::connect(socket);
    } catch (const slab::error& e) {
      if (e.code() != slab::errc::no_daemon) {
        std::fprintf(stderr, "downstream_live: %s\n", e.what());
        return std::nullopt;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

int use(const std::string& socket) {
  std::optional<slab::client> c = connect(socket);
  if (!c) return fail("could not connect to shmd within 10 s");
  slab::pool<order> orders = c->open<order>("downstream");
  const slab::key k = orders.emplace(42, 100.5);
  const order* o = orders.get(k);
  if (o == nullptr || o->id != 42 || o->price != 100.5) return fail("value not read back");
  if (orders.stats().live == 0) return fail("the pool does not count the value as live");
  if (!orders.erase(slab::key::from_raw(k.raw()))) return fail("erase refused");
  if (orders.get(k) != nullptr || orders.erase(k)) return fail("stale key still reaches a value");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3) return fail("usage: downstream_live SHMD SCRATCH_DIR");
  const std::string dir = argv[2];
  const std::string socket = dir + "/shmd.sock";
  const std::string config = dir + "/shmd.toml";
  // Segments as memfds (segment_dir, hugepage_dir ""): nothing outlives the test.
  std::ofstream(config) << "[daemon]\nsocket = \"" << socket << "\"\n"
                        << "segment_dir = \"\"\nhugepage_dir = \"\"\n"
                        << "[[pool]]\nname = \"downstream\"\nslot_size = 64\n"
                        << "capacity = 1024\nhugepages = \"off\"\n";
  const pid_t shmd = ::fork();
  if (shmd < 0) return fail("fork failed");
  if (shmd == 0) {
    ::execl(argv[1], argv[1], "--config", config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int rc = 1;
  try {
    rc = use(socket);
  } catch (const slab::error& e) {
    std::fprintf(stderr, "downstream_live: %s\n", e.what());
  }
  ::kill(shmd, SIGTERM);
  int status = 0;
  ::waitpid(shmd, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fail("shmd did not exit cleanly");
  if (rc == 0) std::puts("downstream_live: connected, allocated, read back, freed: ok");
  return rc;
}
