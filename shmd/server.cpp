#include "server.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <slab/error.hpp>
#include <slab/platform/ipc.hpp>
#include <slab/proto/protocol.hpp>

#include "log.hpp"

namespace shmd {
namespace {

namespace proto = slab::proto;
namespace platform = slab::platform;
using slab::errc;

constexpr std::uint64_t tag_listen = 0, tag_signal = 1, tag_done = ~std::uint64_t{0};

template <class M> bool read_as(const void* msg, std::size_t len, M& out) {
  if (len != sizeof(M)) return false;
  std::memcpy(&out, msg, sizeof(M));
  return true;
}

std::string pool_names(const std::vector<std::unique_ptr<pool_owner>>& pools) {
  std::string s;
  for (const auto& p : pools)
    s += (s.empty() ? "" : ", ") + p->name();
  return s;
}

bool process_alive(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0; // readable once the process has exited
}

void add_to_epoll(int ep, int fd, std::uint64_t tag) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

// fds are tagged by value + 2 so 0 and 1 stay free for the listener and signals.
std::uint64_t tag_of(int fd) { return static_cast<std::uint64_t>(fd) + 2; }

} // namespace

server::server(daemon_config cfg, std::vector<std::unique_ptr<pool_owner>> pools)
    : cfg_(std::move(cfg)), pools_(std::move(pools)), urgent_(pools_.size(), false) {
  own_uid_ = ::getuid();
  own_gid_ = ::getgid();
  started_unix_ns_ =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

server::~server() {
  {
    std::lock_guard<std::mutex> g(work_mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void server::listen() {
  auto l = platform::listen_seqpacket(cfg_.socket, 0666);
  if (!l) {
    throw slab::error(errc::system, "cannot listen on " + cfg_.socket + ": " + l.error().what);
  }
  listen_ = std::move(l.value());
}

int server::run() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr); // before the worker starts: it inherits the mask
  signals_ = platform::unique_fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  epoll_ = platform::unique_fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!signals_ || !epoll_) throw slab::error(errc::system, "signalfd/epoll_create1 failed");
  add_to_epoll(epoll_.get(), listen_.get(), tag_listen);
  add_to_epoll(epoll_.get(), signals_.get(), tag_signal);
  done_ = platform::unique_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!done_) throw slab::error(errc::system, "eventfd failed");
  add_to_epoll(epoll_.get(), done_.get(), tag_done);
  worker_ = std::thread([this] { worker_loop(); });
  watch_orphans();

  publish_status();
  ::sd_notify(0, "READY=1");
  log_notice("ready: " + std::to_string(pools_.size()) + " pool(s) (" + pool_names(pools_) +
             "), listening on " + cfg_.socket);
  watchdog_.start();

  for (;;) {
    epoll_event evs[64];
    const int n = ::epoll_wait(epoll_.get(), evs, 64, watchdog_.loop_timeout_ms());
    watchdog_.beat_main();
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = evs[i].data.u64;
      if (tag == tag_listen) {
        accept_clients();
      } else if (tag == tag_done) {
        send_closed();
      } else if (tag == tag_signal) {
        signalfd_siginfo si{};
        if (::read(signals_.get(), &si, sizeof si) == sizeof si && si.ssi_signo != SIGPIPE) {
          watchdog_.stop(); // no WATCHDOG=1 after STOPPING=1
          ::sd_notify(0, "STOPPING=1");
          log_notice(std::string("stopping on ") + ::strsignal(static_cast<int>(si.ssi_signo)));
          return 0;
        }
      } else {
        const int fd = static_cast<int>(tag - 2);
        if (conns_.count(fd) != 0)
          on_readable(fd);
        else if (exited_watch_.count(fd) != 0)
          on_process_exit(fd);
      }
    }
  }
}

void server::accept_clients() {
  for (;;) {
    auto a = platform::accept_seqpacket(listen_.get());
    if (!a) return; // EAGAIN: nothing more (or a transient error, logged at debug)
    const int fd = a.value().get();
    connection c;
    c.sock = std::move(a.value());
    if (auto cred = platform::peer_of(fd)) {
      c.pid = cred.value().pid;
      c.uid = cred.value().uid;
      c.gid = cred.value().gid;
    }
    add_to_epoll(epoll_.get(), fd, tag_of(fd));
    c.serial = next_serial_++;
    conns_.emplace(fd, std::move(c));
  }
}

void server::on_readable(int fd) {
  connection& c = conns_.at(fd);
  alignas(8) char buf[proto::max_msg];
  std::vector<platform::unique_fd> fds; // clients send none; any sent are closed
  auto r = platform::receive_message(fd, buf, sizeof buf, fds);
  if (!r) {
    if (r.error().err == EAGAIN) return;
    return drop(fd, r.error().what);
  }
  if (r.value() == 0) return drop(fd, "");
  handle(c, buf, r.value());
}

void server::drop(int fd, const std::string& why) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  connection c = std::move(it->second);
  conns_.erase(it);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  if (!why.empty()) log_warning("client pid " + std::to_string(c.pid) + " dropped: " + why);
  c.sock = platform::unique_fd();
  if (c.contexts.empty()) return;
  // The socket is gone; the contexts are reclaimed once the process is, too (a process
  // that closed its socket but lives on may still be using its caches).
  auto pidfd = platform::open_pidfd(c.pid);
  if (pidfd && process_alive(pidfd.value().get())) {
    const int pfd = pidfd.value().get();
    c.pidfd = std::move(pidfd.value());
    add_to_epoll(epoll_.get(), pfd, tag_of(pfd));
    exited_watch_.emplace(pfd, std::move(c));
    return;
  }
  queue_reclaim(std::move(c.contexts));
}

// Contexts an adopted pool's records name, of processes still running: reclaimed when
// each process exits, as if its connection had closed.
void server::watch_orphans() {
  for (std::uint32_t id = 0; id < pools_.size(); ++id) {
    for (const pool_owner::orphan& o : pools_[id]->take_orphans()) {
      connection c;
      c.pid = o.pid;
      c.uid = 0xFFFFFFFFU; // not known: it connected to the previous shmd
      c.adopted = true;
      c.contexts.push_back({id, o.ctx});
      auto pidfd = platform::open_pidfd(o.pid);
      if (!pidfd || !process_alive(pidfd.value().get())) {
        queue_reclaim(std::move(c.contexts));
        continue;
      }
      const int pfd = pidfd.value().get();
      c.pidfd = std::move(pidfd.value());
      add_to_epoll(epoll_.get(), pfd, tag_of(pfd));
      exited_watch_.emplace(pfd, std::move(c));
    }
  }
}

// A process closing a context it holds through an earlier connection (it reconnected
// after a restart of shmd): the watch on its process no longer covers that context.
bool server::release_watched(std::uint32_t pid, context_ref ref) {
  for (auto it = exited_watch_.begin(); it != exited_watch_.end(); ++it) {
    connection& w = it->second;
    if (w.pid != pid) continue;
    for (auto r = w.contexts.begin(); r != w.contexts.end(); ++r) {
      if (r->pool == ref.pool && r->ctx == ref.ctx) {
        w.contexts.erase(r);
        if (w.contexts.empty()) {
          ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->first, nullptr);
          exited_watch_.erase(it);
        }
        return true;
      }
    }
  }
  return false;
}

void server::on_process_exit(int pidfd) {
  auto it = exited_watch_.find(pidfd);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, pidfd, nullptr);
  queue_reclaim(std::move(it->second.contexts));
  exited_watch_.erase(it);
}

std::optional<std::uint32_t> server::pool_id_of(std::string_view name) const {
  for (std::uint32_t id = 0; id < pools_.size(); ++id) {
    if (pools_[id]->name() == name) return id;
  }
  return std::nullopt;
}

namespace {

// SO_PEERCRED carries the primary gid only, while members of an allowed group (clients
// join group slab: usermod -aG slab alice) usually have it as a supplementary group.
// SO_PEERGROUPS (Linux 4.13) gives those, as they were when the peer connected.
std::vector<gid_t> peer_groups(int fd) {
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    const int rc = ::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len);
    if (rc != 0 && errno != ERANGE) return {};
    groups.resize(len / sizeof(gid_t)); // ERANGE: len is the size needed
    if (rc == 0) return groups;
  }
  return {};
}

} // namespace

bool server::allowed(const connection& c) const {
  const auto& uids = cfg_.allow_uids;
  const auto& gids = cfg_.allow_gids;
  const std::vector<gid_t> groups = peer_groups(c.sock.get());
  const auto member = [&](std::uint32_t g) {
    return g == c.gid || std::find(groups.begin(), groups.end(), g) != groups.end();
  };
  if (uids.empty() && gids.empty()) return c.uid == own_uid_ || member(own_gid_);
  for (std::uint32_t u : uids) {
    if (u == c.uid) return true;
  }
  return std::any_of(gids.begin(), gids.end(), member);
}

// Observers read a pool through read-only mappings: root, whoever may connect as a
// client (it can read everything through its own mapping anyway), and the monitor lists.
bool server::may_observe(const connection& c) const {
  if (c.uid == 0 || allowed(c)) return true;
  const auto& uids = cfg_.monitor_uids;
  const auto& gids = cfg_.monitor_gids;
  if (std::find(uids.begin(), uids.end(), c.uid) != uids.end()) return true;
  const std::vector<gid_t> groups = peer_groups(c.sock.get());
  return std::any_of(gids.begin(), gids.end(), [&](std::uint32_t g) {
    return g == c.gid || std::find(groups.begin(), groups.end(), g) != groups.end();
  });
}

bool server::send_error(connection& c, std::uint32_t code, const std::string& text) {
  proto::error_msg e;
  e.code = code;
  proto::set_text(e.text, text);
  return platform::send_message(c.sock.get(), &e, sizeof e).ok();
}

void server::handle(connection& c, const void* msg, std::size_t len) {
  proto::msg_header h{};
  if (len < sizeof h) return drop(c.sock.get(), "message shorter than its header");
  std::memcpy(&h, msg, sizeof h);
  if (h.magic != proto::msg_magic) return drop(c.sock.get(), "not the slab protocol (bad magic)");
  if (h.abi != proto::abi_version) {
    const std::string text = "protocol ABI mismatch: shmd speaks ABI " +
                             std::to_string(proto::abi_version) + ", the client ABI " +
                             std::to_string(h.abi) + "; rebuild the client against this libslab";
    send_error(c, static_cast<std::uint32_t>(errc::abi_mismatch), text);
    return drop(c.sock.get(), text);
  }
  const auto type = static_cast<proto::msg_type>(h.type);
  const bool greeting = type == proto::msg_type::hello || type == proto::msg_type::observer_hello;
  if (!c.greeted && !greeting) return drop(c.sock.get(), "no hello first");
  // A connection greeted as an observer reads; it never opens, grows or closes anything.
  const bool observing = type == proto::msg_type::observe || type == proto::msg_type::clients_req;
  if (c.greeted && !greeting && (observing ? !c.observer_ok : !c.client_ok)) {
    return drop(c.sock.get(),
                "message type " + std::to_string(h.type) + " on a connection not greeted for it");
  }
  switch (type) {
  case proto::msg_type::hello: return handle_hello(c, msg, len);
  case proto::msg_type::observer_hello: return handle_observer_hello(c, msg, len);
  case proto::msg_type::open: return handle_open(c, msg, len);
  case proto::msg_type::tiers_req: return handle_tiers(c, msg, len);
  case proto::msg_type::grow: {
    proto::grow_req g;
    if (!read_as(msg, len, g) || !pool_id_of(proto::get_text(g.pool)))
      return drop(c.sock.get(), "bad grow");
    return nudge_growth(*pool_id_of(proto::get_text(g.pool)));
  }
  case proto::msg_type::close: return handle_close(c, msg, len);
  case proto::msg_type::observe: return handle_observe(c, msg, len);
  case proto::msg_type::clients_req: return handle_clients(c, msg, len);
  default: return drop(c.sock.get(), "unexpected message type " + std::to_string(h.type));
  }
}

void server::handle_hello(connection& c, const void* msg, std::size_t len) {
  proto::hello h;
  if (!read_as(msg, len, h) || c.greeted) return drop(c.sock.get(), "bad hello");
  greet(c, proto::get_text(h.comm), false);
}

void server::handle_observer_hello(connection& c, const void* msg, std::size_t len) {
  proto::observer_hello h;
  if (!read_as(msg, len, h) || c.greeted) return drop(c.sock.get(), "bad observer hello");
  greet(c, proto::get_text(h.comm), true);
}

void server::greet(connection& c, std::string_view comm, bool observer) {
  const std::string who = "pid " + std::to_string(c.pid) + " (" + std::string(comm) + ", uid " +
                          std::to_string(c.uid) + ", gid " + std::to_string(c.gid) + ")";
  c.comm = std::string(comm);
  if (observer ? !may_observe(c) : !allowed(c)) {
    const std::string text =
        "permission denied: uid " + std::to_string(c.uid) + " gid " + std::to_string(c.gid) +
        (observer ? " may not observe: it is neither root nor in shmd's allow_uids/allow_gids or "
                    "monitor_uids/monitor_gids ("
                  : " is not in shmd's allow_uids/allow_gids (") +
        cfg_.source + ")";
    send_error(c, static_cast<std::uint32_t>(errc::permission_denied), text);
    return drop(c.sock.get(), who + ": " + text);
  }
  c.greeted = true;
  c.client_ok = !observer;
  c.observer_ok = observer;
  proto::welcome w;
  w.daemon_pid = static_cast<std::uint32_t>(::getpid());
  w.pools = static_cast<std::uint32_t>(pools_.size());
  proto::set_text(w.version, SLAB_VERSION);
  if (!platform::send_message(c.sock.get(), &w, sizeof w)) return drop(c.sock.get(), "send failed");
  log_debug((observer ? "observer " : "client ") + who + " connected");
}

void server::handle_open(connection& c, const void* msg, std::size_t len) {
  proto::open_req o;
  if (!read_as(msg, len, o)) return drop(c.sock.get(), "bad open");
  const std::string_view name = proto::get_text(o.pool);
  const std::optional<std::uint32_t> found = pool_id_of(name);
  if (!found) {
    send_error(c, static_cast<std::uint32_t>(errc::not_found),
               "no pool named '" + std::string(name) + "' (this shmd has: " + pool_names(pools_) +
                   ")");
    return;
  }
  const std::uint32_t id = *found;
  pool_owner& p = *pools_[id];
  const slab::proto::pool_header& info = p.map().info();
  if (o.type_size > info.slot_size || o.type_align > info.align) {
    send_error(c, static_cast<std::uint32_t>(errc::type_mismatch),
               "a type of " + std::to_string(o.type_size) + " bytes aligned to " +
                   std::to_string(o.type_align) + " does not fit pool '" + p.name() +
                   "' (slots of " + std::to_string(info.slot_size) + " bytes aligned to " +
                   std::to_string(info.align) + ")");
    return;
  }
  const auto ctx = p.attach_context(c.pid);
  if (!ctx) {
    send_error(c, static_cast<std::uint32_t>(errc::exhausted),
               "pool '" + p.name() + "' has all of its " + std::to_string(p.config().contexts) +
                   " contexts attached (raise contexts in " + cfg_.source + ")");
    return;
  }
  c.contexts.push_back({id, *ctx});
  bool sent = false;
  p.with_tier_fds(0, [&](const std::vector<int>& tier_fds) {
    proto::opened r;
    r.pool_id = id;
    r.context = *ctx;
    r.tiers = static_cast<std::uint32_t>(tier_fds.size() / 2);
    std::vector<int> fds{p.map().control_fd()};
    fds.insert(fds.end(), tier_fds.begin(), tier_fds.end());
    sent = platform::send_message(c.sock.get(), &r, sizeof r, fds).ok();
  });
  if (!sent) return drop(c.sock.get(), "could not send the pool's segments");
  log_info("pool '" + p.name() + "': context " + std::to_string(*ctx) + " attached by pid " +
           std::to_string(c.pid));
}

void server::handle_tiers(connection& c, const void* msg, std::size_t len) {
  proto::tiers_req q;
  const std::optional<std::uint32_t> id =
      read_as(msg, len, q) ? pool_id_of(proto::get_text(q.pool)) : std::nullopt;
  if (!id) return drop(c.sock.get(), "bad tiers request");
  bool sent = false;
  pools_[*id]->with_tier_fds(q.first, [&](const std::vector<int>& fds) {
    proto::tiers_msg r;
    r.pool_id = *id;
    r.first = q.first;
    r.count = static_cast<std::uint32_t>(fds.size() / 2);
    sent = platform::send_message(c.sock.get(), &r, sizeof r, fds).ok();
  });
  if (!sent) drop(c.sock.get(), "could not send tier segments");
}

void server::handle_close(connection& c, const void* msg, std::size_t len) {
  proto::close_req q;
  const std::optional<std::uint32_t> id =
      read_as(msg, len, q) ? pool_id_of(proto::get_text(q.pool)) : std::nullopt;
  if (!id) return drop(c.sock.get(), "bad close");
  const context_ref ref{*id, q.context};
  const auto it = std::find_if(c.contexts.begin(), c.contexts.end(), [&](const context_ref& r) {
    return r.pool == ref.pool && r.ctx == ref.ctx;
  });
  const bool held = it != c.contexts.end();
  if (held) c.contexts.erase(it);
  // Or held through an earlier connection, before shmd restarted.
  if (!held && !release_watched(c.pid, ref))
    return drop(c.sock.get(), "close of a context it does not hold");
  // `closed` goes out once the record is free again (send_closed), so that a client
  // that closes and reopens at once finds the context it gave back.
  queue_reclaim({{ref.pool, ref.ctx, c.serial}});
}

namespace {

// The same file as fd, opened anew read-only: an observer's mappings can then be
// PROT_READ only (mprotect to write fails with EACCES), whatever it tries.
platform::unique_fd reopen_read_only(int fd) {
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  return platform::unique_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

} // namespace

void server::handle_observe(connection& c, const void* msg, std::size_t len) {
  proto::observe_req q;
  if (!read_as(msg, len, q)) return drop(c.sock.get(), "bad observe");
  const std::string_view name = proto::get_text(q.pool);
  const std::optional<std::uint32_t> found =
      name.empty()
          ? (q.index < pools_.size() ? std::optional<std::uint32_t>(q.index) : std::nullopt)
          : pool_id_of(name);
  if (!found) {
    send_error(c, static_cast<std::uint32_t>(errc::not_found),
               (name.empty() ? "no pool number " + std::to_string(q.index)
                             : "no pool named '" + std::string(name) + "'") +
                   " (this shmd has: " + pool_names(pools_) + ")");
    return;
  }
  pool_owner& p = *pools_[*found];
  const pool_owner::growth_failures f = p.failures();
  proto::observed r;
  r.pool_id = *found;
  r.pools = static_cast<std::uint32_t>(pools_.size());
  r.first_tier = q.first_tier;
  r.growth_failures = f.count;
  r.last_failure_unix_ns = f.last_unix_ns;
  r.daemon_started_unix_ns = started_unix_ns_;
  proto::set_text(r.pool, p.name());
  proto::set_text(r.last_failure, f.last);
  std::vector<platform::unique_fd> owned;
  int err = 0; // of the first reopen that failed
  const auto reopen = [&](int fd) {
    owned.push_back(reopen_read_only(fd));
    if (!owned.back() && err == 0) err = errno;
  };
  reopen(p.map().control_fd());
  p.with_tier_fds(q.first_tier, [&](const std::vector<int>& fds) {
    for (const int fd : fds)
      reopen(fd);
  });
  if (err != 0) {
    send_error(c, static_cast<std::uint32_t>(errc::system),
               "pool '" + p.name() +
                   "': cannot reopen a segment read-only (/proc/self/fd): " + std::strerror(err));
    return;
  }
  std::vector<int> fds;
  for (const platform::unique_fd& fd : owned)
    fds.push_back(fd.get());
  r.tiers = static_cast<std::uint32_t>((fds.size() - 1) / 2);
  if (!platform::send_message(c.sock.get(), &r, sizeof r, fds))
    drop(c.sock.get(), "could not send the pool's segments");
}

void server::handle_clients(connection& c, const void* msg, std::size_t len) {
  proto::clients_req q;
  const std::optional<std::uint32_t> id =
      read_as(msg, len, q) ? pool_id_of(proto::get_text(q.pool)) : std::nullopt;
  if (!id) {
    send_error(c, static_cast<std::uint32_t>(errc::not_found),
               "no pool named '" + std::string(proto::get_text(q.pool)) + "'");
    return;
  }
  std::vector<proto::client_entry> all;
  const auto add = [&](const connection& k, proto::client_link link) {
    for (const context_ref& r : k.contexts) {
      if (r.pool != *id) continue;
      proto::client_entry e;
      e.context = r.ctx;
      e.pid = k.pid;
      e.uid = k.uid;
      e.link = static_cast<std::uint32_t>(link);
      proto::set_text(e.comm, k.comm.empty() ? slab::platform::process_name(k.pid) : k.comm);
      all.push_back(e);
    }
  };
  for (const auto& kv : conns_)
    add(kv.second, proto::client_link::connected);
  for (const auto& kv : exited_watch_) {
    add(kv.second,
        kv.second.adopted ? proto::client_link::adopted : proto::client_link::exited_socket_closed);
  }
  std::sort(all.begin(), all.end(), [](const proto::client_entry& a, const proto::client_entry& b) {
    return a.context < b.context;
  });
  proto::clients_msg r;
  r.pool_id = *id;
  r.total = static_cast<std::uint32_t>(all.size());
  r.first = q.first;
  for (std::size_t i = q.first; i < all.size() && r.count < proto::clients_msg::max_entries; ++i)
    r.entries[r.count++] = all[i];
  if (!platform::send_message(c.sock.get(), &r, sizeof r)) drop(c.sock.get(), "send failed");
}

void server::send_closed() {
  std::uint64_t n = 0;
  (void)::read(done_.get(), &n, sizeof n);
  std::vector<context_ref> done;
  {
    std::lock_guard<std::mutex> g(work_mu_);
    done.swap(closed_);
  }
  for (const context_ref& ref : done) {
    const auto it = std::find_if(conns_.begin(), conns_.end(),
                                 [&](const auto& kv) { return kv.second.serial == ref.reply_to; });
    if (it == conns_.end()) continue; // it hung up meanwhile
    proto::closed r;
    r.pool_id = ref.pool;
    r.context = ref.ctx;
    if (!platform::send_message(it->first, &r, sizeof r)) drop(it->first, "send failed");
  }
}

void server::queue_reclaim(std::vector<context_ref> refs) {
  {
    std::lock_guard<std::mutex> g(work_mu_);
    for (const context_ref& r : refs)
      reclaims_.push_back(r);
  }
  work_cv_.notify_one();
}

void server::nudge_growth(std::uint32_t pool) {
  {
    std::lock_guard<std::mutex> g(work_mu_);
    urgent_[pool] = true;
  }
  work_cv_.notify_one();
}

void server::publish_status() {
  std::string s = "STATUS=";
  for (const auto& p : pools_) {
    const std::uint64_t ready = p->ready_slots();
    const std::uint64_t live = p->live_estimate();
    char b[160];
    std::snprintf(b, sizeof b, "%s%s %.1f%% of %llu slots live", s.size() > 7 ? "; " : "",
                  p->name().c_str(),
                  ready == 0 ? 0.0 : 100.0 * static_cast<double>(live) / static_cast<double>(ready),
                  static_cast<unsigned long long>(ready));
    s += b;
  }
  ::sd_notify(0, s.c_str());
}

void server::worker_loop() {
  auto last_status = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lk(work_mu_);
  while (!stopping_) {
    watchdog_.beat_worker();
    while (!reclaims_.empty()) {
      const context_ref r = reclaims_.front();
      reclaims_.pop_front();
      lk.unlock();
      pools_[r.pool]->reclaim(r.ctx);
      lk.lock();
      if (r.reply_to != 0) {
        closed_.push_back(r);
        const std::uint64_t one = 1;
        (void)::write(done_.get(), &one, sizeof one);
      }
    }
    std::vector<bool> urgent(pools_.size(), false);
    urgent.swap(urgent_);
    urgent_.assign(pools_.size(), false);
    lk.unlock();
    for (std::size_t i = 0; i < pools_.size(); ++i)
      pools_[i]->maybe_grow(urgent[i]);
    if (std::chrono::steady_clock::now() - last_status > std::chrono::seconds(1)) {
      publish_status();
      last_status = std::chrono::steady_clock::now();
    }
    lk.lock();
    work_cv_.wait_for(lk, std::chrono::milliseconds(1), [this] {
      bool any = false;
      for (bool u : urgent_)
        any = any || u;
      return stopping_ || any || !reclaims_.empty();
    });
  }
}

} // namespace shmd
