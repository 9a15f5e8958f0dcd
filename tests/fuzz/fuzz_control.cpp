// fuzz_control: shmd's control-socket message handler (shmd/control.hpp) fed arbitrary
// packets, over one small pool of memfd segments, without its event loop.
//
// For each input (format: control_input.hpp) a connection is made over a socketpair with
// the input's credentials, each packet is delivered as one message, the answers are read
// and thrown away (their fds closed), and the connection is closed; the worker's pending
// work (reclaims, growth) then runs on this thread (worker::run_pending). Every 64 inputs,
// and at exit, the pool is audited over shmd's own mapping: a message must never leave a
// slot lost or handed out twice, nor a context record in a state reclaim cannot mend.
// Anything wrong aborts, which libFuzzer reports with the input that did it.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include <slab/core/audit.hpp>
#include <slab/platform/events.hpp>
#include <slab/platform/process.hpp>

#include "control_input.hpp"
#include "shmd/config.hpp"
#include "shmd/control.hpp"
#include "shmd/log.hpp"
#include "shmd/pool_owner.hpp"
#include "shmd/watchdog.hpp"
#include "shmd/worker.hpp"

namespace {

// Small enough that a few opens exhaust the contexts, and growth has room for two tiers.
constexpr const char* config_text = R"(
[daemon]
socket = "/nonexistent/fuzz.sock"
segment_dir = ""
hugepage_dir = ""
[[pool]]
name = "fuzz"
slot_size = 64
capacity = 1024
max_capacity = 4096
hugepages = "off"
contexts = 4
)";

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_control: %s\n", why.c_str());
  std::abort();
}

/// shmd's parts as server.cpp wires them, minus the loop, the listener and the signals.
struct daemon_parts {
  shmd::daemon_config cfg = shmd::parse_config(config_text, "fuzz.toml");
  std::vector<std::unique_ptr<shmd::pool_owner>> pools;
  slab::platform::poller events = make_poller();
  shmd::watchdog beats{std::chrono::microseconds{0}}; // disabled
  std::unique_ptr<shmd::worker> work;
  std::unique_ptr<shmd::control> ctl;
  std::uint64_t inputs = 0;

  daemon_parts() {
    shmd::set_log_level(shmd::level::error); // every dropped connection would log a warning
    pools.push_back(shmd::pool_owner::open(cfg.pools[0], slab::platform::segment_store{}));
    work = std::make_unique<shmd::worker>(pools, beats);
    ctl = std::make_unique<shmd::control>(cfg, pools, *work, events);
  }
  ~daemon_parts() { audit(); }

  static slab::platform::poller make_poller() {
    auto p = slab::platform::poller::create();
    if (!p) fail(p.error().what);
    return std::move(p.value());
  }

  void settle() {
    work->run_pending();
    ctl->send_closed(work->take_closed());
  }

  void audit() {
    for (const auto& p : pools) {
      const slab::core::audit_report r = slab::core::audit(p->map());
      if (r.ok()) continue;
      std::string all;
      for (const std::string& s : r.problems)
        all += "\n  " + s;
      fail("pool '" + p->name() + "' fails its audit after " + std::to_string(inputs) +
           " inputs:" + all);
    }
  }
};

/// Reads every answer waiting on the client's end and closes the fds they carry.
/// Returns false once shmd has closed the connection.
bool drain(int fd) {
  for (;;) {
    std::array<char, 1024> buf{};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * 256)> control{};
    iovec iov{buf.data(), buf.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.data();
    m.msg_controllen = control.size();
    const ssize_t n = ::recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); n >= 0 && c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const auto* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
      for (std::size_t i = 0; i < count; ++i)
        ::close(fds[i]);
    }
    if (n == 0) return false; // shmd hung up (an empty answer is never sent)
    if (n < 0) return true;   // EAGAIN: nothing more for now
  }
}

slab::platform::peer_credentials credentials(std::uint8_t who) {
  const slab::platform::peer_credentials own = slab::platform::own_credentials();
  const std::uint32_t uid = fuzz::id_choices[who & 3U];
  const std::uint32_t gid = fuzz::id_choices[(who >> 2U) & 3U];
  return {0, uid == ~std::uint32_t{0} ? own.uid : uid, gid == ~std::uint32_t{0} ? own.gid : gid};
}

void run_one(daemon_parts& d, std::span<const std::uint8_t> bytes) {
  const fuzz::control_input in = fuzz::split_input(bytes);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    fail("socketpair failed");
  const int shmd_end = sv[0], client_end = sv[1];
  d.ctl->add(slab::platform::unique_fd(shmd_end), credentials(in.who));
  bool open = true;
  for (const auto& p : in.packets) {
    if (::send(client_end, p.data(), p.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(p.size()))
      break;
    d.ctl->on_event(shmd_end);
    d.settle();
    open = drain(client_end);
    if (!open) break;
  }
  if (open) d.ctl->hang_up(shmd_end);
  ::close(client_end);
  d.settle();
  if (++d.inputs % 64 == 0) d.audit();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static daemon_parts d; // one pool for the whole run, as one shmd serves many clients
  run_one(d, std::span<const std::uint8_t>(data, size));
  return 0;
}
