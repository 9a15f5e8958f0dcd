#include "server.hpp"

#include <array>
#include <csignal>
#include <cstdint>
#include <string>

#include <slab/error.hpp>
#include <slab/platform/ipc.hpp>

#include "checked.hpp"
#include "log.hpp"
#include "systemd.hpp"

namespace shmd {
namespace {

namespace platform = slab::platform;
using slab::errc;

// The loop's own tags; fds of connections and watched processes are tagged from
// control::first_fd_tag on.
constexpr std::uint64_t tag_listen = 0, tag_signal = 1, tag_done = ~std::uint64_t{0};
static_assert(control::first_fd_tag > tag_signal);

} // namespace

server::server(daemon_config cfg, std::vector<std::unique_ptr<pool_owner>> pools)
    : cfg_(std::move(cfg)), pools_(std::move(pools)), events_(checked(platform::poller::create())),
      worker_(pools_, watchdog_), control_(cfg_, pools_, worker_, events_) {}

void server::listen() {
  auto l = platform::listen_seqpacket(cfg_.socket, 0666);
  if (!l) {
    throw slab::error(errc::system, "cannot listen on " + cfg_.socket + ": " + l.error().what);
  }
  listen_ = std::move(l.value());
}

void server::start() {
  // Blocked before the worker starts: it inherits the mask, so these signals only ever
  // reach the signalfd. SIGPIPE too: a client that hangs up mid-send is no reason to die.
  signals_ = checked(platform::signal_fd::block_and_open({SIGTERM, SIGINT, SIGPIPE}));
  const auto watch = [this](int fd, std::uint64_t tag) {
    if (auto s = events_.add(fd, tag); !s) throw slab::error(errc::system, s.error().what);
  };
  watch(listen_.get(), tag_listen);
  watch(signals_->fd(), tag_signal);
  watch(worker_.done_fd(), tag_done);
  worker_.start();
  control_.watch_orphans();
  worker_.publish_status();
  systemd::notify("READY=1");
  log_notice("ready: " + std::to_string(pools_.size()) + " pool(s) (" + pool_names(pools_) +
             "), listening on " + cfg_.socket);
  watchdog_.start();
}

int server::run() {
  start();
  std::array<std::uint64_t, 64> ready{};
  for (;;) {
    const platform::result<std::size_t> n = events_.wait(ready, watchdog_.loop_timeout_ms());
    watchdog_.beat_main();
    if (!n) continue; // EINTR is no error; nothing else can fail on a valid epoll set
    for (std::size_t i = 0; i < n.value(); ++i) {
      const std::uint64_t tag = ready[i];
      if (tag == tag_listen) {
        accept_clients();
      } else if (tag == tag_done) {
        control_.send_closed(worker_.take_closed());
      } else if (tag == tag_signal) {
        if (stop_signalled()) return 0;
      } else {
        control_.on_event(static_cast<int>(tag - control::first_fd_tag));
      }
    }
  }
}

bool server::stop_signalled() {
  const int signo = signals_->take();
  if (signo == 0 || signo == SIGPIPE) return false;
  watchdog_.stop(); // no WATCHDOG=1 after STOPPING=1
  systemd::notify("STOPPING=1");
  log_notice("stopping on " + platform::signal_name(signo));
  return true;
}

void server::accept_clients() {
  for (;;) {
    auto a = platform::accept_seqpacket(listen_.get());
    if (!a) return; // EAGAIN: nothing more (or a transient error)
    platform::peer_credentials peer{};
    if (auto cred = platform::peer_of(a.value().get())) peer = cred.value();
    control_.add(std::move(a.value()), peer);
  }
}

} // namespace shmd
