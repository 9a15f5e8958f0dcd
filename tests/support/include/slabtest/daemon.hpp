// The daemon a test runs against: shmd_process (shmd.hpp), and a test that ends with a
// shmd that does not stop cleanly on SIGTERM (a crash, a sanitizer report at exit, no
// exit within the grace time) fails.
//
//   slabtest::daemon d;                               // config written, shmd started, READY=1
//   slabtest::exit_status st = slabtest::run_in_child([&] {
//     slab::client c = slab::client::connect(d.socket_path());
//     ...
//     return 0;
//   });
//   EXPECT_TRUE(st.ok()) << st.describe();
#pragma once

#include <gtest/gtest.h>

#include <slabtest/shmd.hpp>

namespace slabtest {

class daemon : public shmd_process {
public:
  using shmd_process::shmd_process;
  ~daemon() override {
    if (!owned_here() || !running()) return;
    const exit_status st = stop();
    if (!st.ok()) {
      ADD_FAILURE() << "shmd did not stop cleanly on SIGTERM: " << st.describe()
                    << "; its stderr:\n"
                    << stderr_text();
    }
  }
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;
};

} // namespace slabtest
