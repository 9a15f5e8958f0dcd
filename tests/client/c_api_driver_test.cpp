// Runs the C test program (c_api_test.c, built as C against slab/slab.h) against a real
// shmd: the program finds it through SHMD_SOCKET, as a C user's program would, and must
// exit 0 having printed every check it made.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include <slabtest/daemon.hpp>

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

/// The C program against `d` (SHMD_SOCKET), its stdout and stderr in one file.
slabtest::program_result run_c_program(const daemon& d) {
  slabtest::program p;
  p.binary = C_API_TEST_BINARY;
  p.out_path = p.err_path = d.dir().file("c_api_test.out");
  p.env = {{"SHMD_SOCKET", d.socket_path()}};
  return slabtest::run_program(p, std::chrono::seconds(30));
}

TEST(c_api, the_c_program_passes_against_a_real_shmd) {
  daemon d(with_arena());
  const slabtest::program_result r = run_c_program(d);
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
  const slabtest::program_result r = run_c_program(d);
  EXPECT_EQ(r.status.code(), 1) << r.status.describe() << "\n" << r.out;
  EXPECT_TRUE(slabtest::contains(r.out, "slab_attach(NULL, &c) == SLAB_OK")) << r.out;
  EXPECT_TRUE(slabtest::contains(r.out, "no shmd at " + sock)) << r.out;
}

} // namespace
