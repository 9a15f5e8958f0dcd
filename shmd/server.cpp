#include "server.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <string>

#include <slab/error.hpp>
#include <slab/platform/ipc.hpp>
#include <slab/platform/process.hpp>
#include <slab/proto/protocol.hpp>

#include "checked.hpp"
#include "log.hpp"
#include "systemd.hpp"

namespace shmd {
namespace {

namespace platform = slab::platform;
namespace proto = slab::proto;
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
  spare_ = platform::open_spare_descriptor();
  fd_limit_ = platform::raise_descriptor_limit(); // one descriptor per client, two per tier
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
    // Before the wait, never between it and its batch: a connection closed here cannot
    // leave an event behind for a descriptor the batch would then see reused.
    control_.expire_ungreeted();
    resume_accepting();
    int timeout = watchdog_.loop_timeout_ms();
    for (const int t : {control_.next_deadline_ms(), accept_pause_ms()})
      timeout = t < 0 ? timeout : timeout < 0 ? t : std::min(timeout, t);
    const platform::result<std::size_t> n = events_.wait(ready, timeout);
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
    if (!a) {
      const int e = a.error().err;
      if (e == EMFILE || e == ENFILE) shed_connection();
      return; // EAGAIN: nothing more (or a transient error)
    }
    if (!spare_) spare_ = platform::open_spare_descriptor(); // taken back once one is free
    auto cred = platform::peer_of(a.value().get());
    if (!cred) { // never taken for root: a peer shmd cannot name is no peer at all
      log_warning("a connection refused: " + cred.error().what);
      continue;
    }
    control_.add(std::move(a.value()), cred.value());
  }
}

// Out of descriptors, the listening socket stays readable and the loop would spin on it.
// The spare descriptor makes room to take the first waiting connection, tell it why and
// close it; then it is taken back. Without a spare (none could be had since), the
// listening socket leaves the poller for 100 ms instead. The warning says how many
// were refused, at most once every 10 s.
void server::shed_connection() {
  spare_ = platform::unique_fd();
  auto a = platform::accept_seqpacket(listen_.get());
  if (!a) {
    spare_ = platform::open_spare_descriptor();
    pause_accepting();
    return;
  }
  platform::peer_credentials peer{};
  if (auto cred = platform::peer_of(a.value().get())) peer = cred.value();
  const std::string text = "shmd is out of file descriptors (limit " + std::to_string(fd_limit_) +
                           "): connection refused; raise LimitNOFILE, or lower "
                           "max_connections_per_uid";
  proto::error_msg err;
  err.code = static_cast<std::uint32_t>(errc::system);
  proto::set_text(err.text, text);
  (void)platform::send_message(a.value().get(), &err, sizeof err);
  platform::close_after_reply(a.value());
  spare_ = platform::open_spare_descriptor(); // after the close: its descriptor is free now
  const auto now = std::chrono::steady_clock::now();
  if (shed_logged_ != std::chrono::steady_clock::time_point{} &&
      now - shed_logged_ < std::chrono::seconds(10)) {
    ++shed_unlogged_;
    return;
  }
  log_warning(text + ": pid " + std::to_string(peer.pid) + " uid " + std::to_string(peer.uid) +
              (shed_unlogged_ == 0
                   ? std::string()
                   : " (and " + std::to_string(shed_unlogged_) + " more since the last warning)"));
  shed_logged_ = now;
  shed_unlogged_ = 0;
}

void server::pause_accepting() {
  if (accept_paused_) return;
  events_.remove(listen_.get());
  accept_paused_ = true;
  accept_resume_at_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
}

void server::resume_accepting() {
  if (!accept_paused_ || std::chrono::steady_clock::now() < accept_resume_at_) return;
  if (auto s = events_.add(listen_.get(), tag_listen); !s) return; // again next round
  accept_paused_ = false;
  if (!spare_) spare_ = platform::open_spare_descriptor();
}

int server::accept_pause_ms() const {
  if (!accept_paused_) return -1;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      accept_resume_at_ - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(left.count() + 1, 0, 100));
}

} // namespace shmd
