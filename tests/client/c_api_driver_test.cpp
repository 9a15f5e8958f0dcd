// Runs the C test program (c_api_test.c, built as C against slab/slab.h) against a real
// shmd: the program finds it through SHMD_SOCKET, as a C user's program would, and must
// exit 0 having printed every check it made.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "daemon_fixture.hpp"

#ifndef C_API_TEST_BINARY
#error "C_API_TEST_BINARY must name the C test program (tests/client/CMakeLists.txt)"
#endif

namespace {

using slabtest::daemon;
using slabtest::daemon_cfg;
using slabtest::pool_cfg;

daemon_cfg with_arena() {
  daemon_cfg cfg;
  pool_cfg arena;
  arena.name = "arena";
  arena.slot_size = 16;
  arena.capacity = 1024;
  arena.mode = "arena";
  cfg.pools.push_back(arena);
  return cfg;
}

struct program_run {
  slabtest::exit_status status;
  std::string out;
};

program_run run_c_program(const daemon& d) {
  const std::string out_path = d.dir().file("c_api_test.out");
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) slabtest::fail_errno("fork");
  if (pid == 0) {
    slabtest::die_with(parent);
    const int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) ::_exit(126);
    ::setenv("SHMD_SOCKET", d.socket_path().c_str(), 1);
    ::execl(C_API_TEST_BINARY, C_API_TEST_BINARY, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  program_run r;
  r.status = slabtest::wait_for_exit(pid, std::chrono::seconds(30));
  r.out = slabtest::read_file(out_path);
  return r;
}

TEST(c_api, the_c_program_passes_against_a_real_shmd) {
  daemon d(with_arena());
  const program_run r = run_c_program(d);
  EXPECT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  EXPECT_TRUE(slabtest::contains(r.out, "c_api_test: all checks passed")) << r.out;
  // What the program says it saw, so that a program checking nothing cannot pass.
  for (const char* line :
       {"ok: SLAB_E_NO_DAEMON", "ok: SLAB_E_NOT_FOUND", "ok: SLAB_E_TYPE_MISMATCH",
        "ok: SLAB_E_STALE", "ok: SLAB_E_NOT_SUPPORTED -> not supported by the pool's mode",
        "ok: 1000 values allocated", "ok: slab_strerror names 18 codes",
        "ok: a pool stays usable after its client is detached"}) {
    EXPECT_TRUE(slabtest::contains(r.out, line)) << "missing \"" << line << "\" in:\n" << r.out;
  }
}

TEST(c_api, without_a_daemon_attach_fails_with_a_code_not_a_crash) {
  // The same program with SHMD_SOCKET naming nothing: its first attach through the
  // environment fails cleanly, and it reports that as a failed check (exit 1).
  daemon d(with_arena());
  const std::string sock = d.socket_path();
  d.stop();
  const program_run r = run_c_program(d);
  EXPECT_EQ(r.status.code(), 1) << r.status.describe() << "\n" << r.out;
  EXPECT_TRUE(slabtest::contains(r.out, "slab_attach(NULL, &c) == SLAB_OK")) << r.out;
  EXPECT_TRUE(slabtest::contains(r.out, "no shmd at " + sock)) << r.out;
}

} // namespace
