// control (control.hpp): the connections' bookkeeping, the dispatch of every message, and
// the client requests: hello, open, tiers, grow, close.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <slab/error.hpp>
#include <slab/platform/ipc.hpp>
#include <slab/proto/protocol.hpp>

#include "control.hpp"
#include "log.hpp"

namespace shmd {

namespace proto = slab::proto;
namespace platform = slab::platform;
using slab::errc;

namespace {

std::uint64_t tag_of(int fd) { return static_cast<std::uint64_t>(fd) + control::first_fd_tag; }

std::uint64_t unix_now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

} // namespace

control::control(const daemon_config& cfg, std::vector<std::unique_ptr<pool_owner>>& pools,
                 worker& work, platform::poller& events)
    : cfg_(cfg), pools_(pools), work_(work), events_(events),
      access_(cfg, platform::own_credentials()), started_unix_ns_(unix_now_ns()) {}

// ---- connections ----------------------------------------------------------------------

void control::add(platform::unique_fd sock, platform::peer_credentials peer) {
  const int fd = sock.get();
  connection c;
  c.sock = std::move(sock);
  c.pid = peer.pid;
  c.uid = peer.uid;
  c.gid = peer.gid;
  c.serial = next_serial_++;
  c.accepted = std::chrono::steady_clock::now();
  uid_load& load = load_[c.uid];
  if (c.uid != 0 &&
      (load.ungreeted >= max_ungreeted_per_uid || load.all >= cfg_.max_connections_per_uid)) {
    const bool waiting = load.ungreeted >= max_ungreeted_per_uid;
    const std::string text =
        "too many connections from uid " + std::to_string(c.uid) + ": " +
        (waiting ? std::to_string(load.ungreeted) + " have not said hello yet (at most " +
                       std::to_string(max_ungreeted_per_uid) + ")"
                 : std::to_string(load.all) + " open (max_connections_per_uid = " +
                       std::to_string(cfg_.max_connections_per_uid) + " in " + cfg_.source + ")");
    if (load.all == 0) load_.erase(c.uid);
    send_error(c, errc::permission_denied, text);
    platform::close_after_reply(c.sock);
    log_refusal(c.uid, "client pid " + std::to_string(c.pid) + " refused: " + text);
    return;
  }
  ++load.all;
  ++load.ungreeted;
  ++ungreeted_;
  (void)events_.add(fd, tag_of(fd)); // fails only for a closed fd: then it never reads
  conns_.emplace(fd, std::move(c));
}

void control::expire_ungreeted() {
  if (ungreeted_ == 0) return; // the common case: no scan of every connection per event
  const auto now = std::chrono::steady_clock::now();
  std::vector<int> late;
  for (const auto& [fd, c] : conns_) {
    if (!c.greeted && now - c.accepted >= hello_timeout) late.push_back(fd);
  }
  for (const int fd : late) {
    const connection& c = conns_.at(fd);
    log_refusal(c.uid, "client pid " + std::to_string(c.pid) + " (uid " + std::to_string(c.uid) +
                           ") dropped: no hello within " + std::to_string(hello_timeout.count()) +
                           " s of connecting");
    drop(fd, "");
  }
}

int control::next_deadline_ms() const {
  if (ungreeted_ == 0) return -1;
  std::optional<std::chrono::steady_clock::time_point> first;
  for (const auto& [fd, c] : conns_) {
    if (!c.greeted && (!first || c.accepted < *first)) first = c.accepted;
  }
  if (!first) return -1;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      *first + hello_timeout - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(left.count() + 1, 0, 60'000));
}

// At most one refusal logged per uid every 10 s, with the count of those not logged: a
// user who opens thousands of connections must not flood the journal either.
void control::log_refusal(std::uint32_t uid, const std::string& text) {
  refusal_log& r = refusals_[uid];
  const auto now = std::chrono::steady_clock::now();
  if (r.logged_at != std::chrono::steady_clock::time_point{} &&
      now - r.logged_at < std::chrono::seconds(10)) {
    ++r.unlogged;
    return;
  }
  log_warning(text + (r.unlogged == 0 ? std::string()
                                      : " (and " + std::to_string(r.unlogged) +
                                            " more refusals of this uid not logged)"));
  r = {now, 0};
}

void control::on_event(int fd) {
  if (conns_.count(fd) != 0) {
    on_readable(fd);
  } else if (exited_watch_.count(fd) != 0) {
    on_process_exit(fd);
  }
}

void control::on_readable(int fd) {
  connection& c = conns_.at(fd);
  alignas(8) std::byte buf[proto::max_msg];
  std::vector<platform::unique_fd> fds; // clients send none; any sent are closed
  auto r = platform::receive_message(fd, buf, sizeof buf, fds);
  if (!r) {
    if (r.error().err == EAGAIN) return;
    return drop(fd, r.error().what);
  }
  if (r.value() == 0) return drop(fd, "");
  handle(c, proto::packet(buf, r.value()));
}

void control::drop(int fd, const std::string& why) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  connection c = std::move(it->second);
  conns_.erase(it);
  events_.remove(fd);
  if (auto l = load_.find(c.uid); l != load_.end()) {
    --l->second.all;
    if (!c.greeted) {
      --l->second.ungreeted;
      --ungreeted_;
    }
    if (l->second.all == 0) load_.erase(l);
  }
  if (!why.empty()) log_warning("client pid " + std::to_string(c.pid) + " dropped: " + why);
  c.sock = platform::unique_fd();
  if (c.contexts.empty()) return;
  // The socket is gone; the contexts are reclaimed once the process is, too (a process
  // that closed its socket but lives on may still be using its caches).
  watch_exit(std::move(c));
}

void control::watch_exit(connection c) {
  auto pidfd = platform::open_pidfd(c.pid);
  if (!pidfd || platform::pidfd_exited(pidfd.value().get())) {
    work_.queue_reclaim(c.contexts);
    return;
  }
  const int pfd = pidfd.value().get();
  c.pidfd = std::move(pidfd.value());
  (void)events_.add(pfd, tag_of(pfd));
  exited_watch_.emplace(pfd, std::move(c));
}

// Contexts an adopted pool's records name, of processes still running: reclaimed when
// each process exits, as if its connection had closed.
void control::watch_orphans() {
  for (std::uint32_t id = 0; id < pools_.size(); ++id) {
    for (const pool_owner::orphan& o : pools_[id]->take_orphans()) {
      connection c;
      c.pid = o.pid;
      c.uid = 0xFFFFFFFFU; // not known: it connected to the previous shmd
      c.adopted = true;
      c.contexts.push_back({id, o.ctx});
      watch_exit(std::move(c));
    }
  }
}

// A process closing a context it holds through an earlier connection (it reconnected
// after a restart of shmd): the watch on its process no longer covers that context.
bool control::release_watched(std::uint32_t pid, context_ref ref) {
  for (auto it = exited_watch_.begin(); it != exited_watch_.end(); ++it) {
    connection& w = it->second;
    if (w.pid != pid) continue;
    for (auto r = w.contexts.begin(); r != w.contexts.end(); ++r) {
      if (r->pool == ref.pool && r->ctx == ref.ctx) {
        w.contexts.erase(r);
        if (w.contexts.empty()) {
          events_.remove(it->first);
          exited_watch_.erase(it);
        }
        return true;
      }
    }
  }
  return false;
}

void control::on_process_exit(int pidfd) {
  // Only a pidfd that says so: an event is never taken for an exit on hearsay.
  if (!platform::pidfd_exited(pidfd)) return;
  auto it = exited_watch_.find(pidfd);
  events_.remove(pidfd);
  work_.queue_reclaim(it->second.contexts);
  exited_watch_.erase(it);
}

void control::send_closed(const std::vector<context_ref>& done) {
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

std::optional<std::uint32_t> control::pool_id_of(std::string_view name) const {
  for (std::uint32_t id = 0; id < pools_.size(); ++id) {
    if (pools_[id]->name() == name) return id;
  }
  return std::nullopt;
}

std::string control::pool_names() const { return shmd::pool_names(pools_); }

bool control::send_error(connection& c, errc code, const std::string& text) {
  proto::error_msg e;
  e.code = static_cast<std::uint32_t>(code);
  proto::set_text(e.text, text);
  return platform::send_message(c.sock.get(), &e, sizeof e).ok();
}

// ---- dispatch -------------------------------------------------------------------------

void control::handle(connection& c, proto::packet p) {
  proto::msg_header h{};
  const proto::decode_result r = proto::read_header(p, h);
  if (r == proto::decode_result::abi_mismatch) {
    const std::string text = "protocol ABI mismatch: shmd speaks ABI " +
                             std::to_string(proto::abi_version) + ", the client ABI " +
                             std::to_string(h.abi) + "; rebuild the client against this libslab";
    send_error(c, errc::abi_mismatch, text);
    return drop(c.sock.get(), text);
  }
  if (r != proto::decode_result::ok) return drop(c.sock.get(), std::string(proto::describe(r)));
  if (!admit(c, h)) return;
  switch (static_cast<proto::msg_type>(h.type)) {
  case proto::msg_type::hello: return handle_greeting(c, p, false);
  case proto::msg_type::observer_hello: return handle_greeting(c, p, true);
  case proto::msg_type::open: return handle_open(c, p);
  case proto::msg_type::tiers_req: return handle_tiers(c, p);
  case proto::msg_type::grow: return handle_grow(c, p);
  case proto::msg_type::close: return handle_close(c, p);
  case proto::msg_type::observe: return handle_observe(c, p);
  case proto::msg_type::clients_req: return handle_clients(c, p);
  default: return drop(c.sock.get(), "unexpected message type " + std::to_string(h.type));
  }
}

// Whether the connection may send a message of this type in the state it is in; drops it
// (false) when not.
bool control::admit(connection& c, const proto::msg_header& h) {
  const auto type = static_cast<proto::msg_type>(h.type);
  const bool greeting = type == proto::msg_type::hello || type == proto::msg_type::observer_hello;
  if (!c.greeted && !greeting) {
    drop(c.sock.get(), "no hello first");
    return false;
  }
  // A connection greeted as an observer reads; it never opens, grows or closes anything.
  const bool observing = type == proto::msg_type::observe || type == proto::msg_type::clients_req;
  if (c.greeted && !greeting && (observing ? !c.observer_ok : !c.client_ok)) {
    drop(c.sock.get(),
         "message type " + std::to_string(h.type) + " on a connection not greeted for it");
    return false;
  }
  return true;
}

void control::greet(connection& c, std::string_view comm, bool observer) {
  const std::string who = "pid " + std::to_string(c.pid) + " (" + std::string(comm) + ", uid " +
                          std::to_string(c.uid) + ", gid " + std::to_string(c.gid) + ")";
  c.comm = std::string(comm);
  const peer_identity id{c.uid, c.gid, platform::peer_groups(c.sock.get())};
  if (observer ? !access_.may_observe(id) : !access_.may_use_pools(id)) {
    const std::string text =
        "permission denied: uid " + std::to_string(c.uid) + " gid " + std::to_string(c.gid) +
        (observer ? " may not observe: it is neither root nor in shmd's allow_uids/allow_gids or "
                    "monitor_uids/monitor_gids ("
                  : " is not in shmd's allow_uids/allow_gids (") +
        cfg_.source + ")";
    send_error(c, errc::permission_denied, text);
    return drop(c.sock.get(), who + ": " + text);
  }
  c.greeted = true;
  --load_[c.uid].ungreeted;
  --ungreeted_;
  c.client_ok = !observer;
  c.observer_ok = observer;
  proto::welcome w;
  w.daemon_pid = platform::own_pid();
  w.pools = static_cast<std::uint32_t>(pools_.size());
  proto::set_text(w.version, SLAB_VERSION);
  if (!platform::send_message(c.sock.get(), &w, sizeof w)) return drop(c.sock.get(), "send failed");
  log_debug((observer ? "observer " : "client ") + who + " connected");
}

// ---- client requests ------------------------------------------------------------------

// hello and observer_hello carry the same fields: what differs is the lists checked and
// what the connection may send afterwards.
void control::handle_greeting(connection& c, proto::packet p, bool observer) {
  proto::hello h;
  proto::observer_hello oh;
  const bool ok = observer ? proto::decode(p, oh) == proto::decode_result::ok
                           : proto::decode(p, h) == proto::decode_result::ok;
  if (!ok || c.greeted) return drop(c.sock.get(), observer ? "bad observer hello" : "bad hello");
  greet(c, proto::get_text(observer ? oh.comm : h.comm), observer);
}

void control::handle_open(connection& c, proto::packet p) {
  proto::open_req o;
  if (proto::decode(p, o) != proto::decode_result::ok) return drop(c.sock.get(), "bad open");
  const std::string_view name = proto::get_text(o.pool);
  const std::optional<std::uint32_t> found = pool_id_of(name);
  if (!found) {
    send_error(c, errc::not_found,
               "no pool named '" + std::string(name) + "' (this shmd has: " + pool_names() + ")");
    return;
  }
  if (o.type_size == 0 || o.type_align == 0 || (o.type_align & (o.type_align - 1)) != 0) {
    send_error(c, errc::invalid_argument,
               "open of pool '" + std::string(name) + "' for a type of " +
                   std::to_string(o.type_size) + " bytes aligned to " +
                   std::to_string(o.type_align) +
                   ": a type has at least 1 byte and a power-of-two alignment");
    return;
  }
  const std::uint32_t id = *found;
  pool_owner& pool = *pools_[id];
  const proto::pool_header& info = pool.map().info();
  if (o.type_size > info.slot_size || o.type_align > info.align) {
    send_error(c, errc::type_mismatch,
               "a type of " + std::to_string(o.type_size) + " bytes aligned to " +
                   std::to_string(o.type_align) + " does not fit pool '" + pool.name() +
                   "' (slots of " + std::to_string(info.slot_size) + " bytes aligned to " +
                   std::to_string(info.align) + ")");
    return;
  }
  const auto ctx = pool.attach_context(c.pid);
  if (!ctx) {
    send_error(c, errc::exhausted,
               "pool '" + pool.name() + "' has all of its " +
                   std::to_string(pool.config().contexts) +
                   " contexts attached (raise contexts in " + cfg_.source + ")");
    return;
  }
  c.contexts.push_back({id, *ctx});
  bool sent = false;
  pool.with_tier_fds(0, [&](const std::vector<int>& tier_fds) {
    proto::opened r;
    r.pool_id = id;
    r.context = *ctx;
    r.tiers = static_cast<std::uint32_t>(tier_fds.size() / 2);
    std::vector<int> fds{pool.map().control_fd()};
    fds.insert(fds.end(), tier_fds.begin(), tier_fds.end());
    sent = platform::send_message(c.sock.get(), &r, sizeof r, fds).ok();
  });
  if (!sent) return drop(c.sock.get(), "could not send the pool's segments");
  log_info("pool '" + pool.name() + "': context " + std::to_string(*ctx) + " attached by pid " +
           std::to_string(c.pid));
}

void control::handle_tiers(connection& c, proto::packet p) {
  proto::tiers_req q;
  const std::optional<std::uint32_t> id = decode_for_pool(p, q);
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

void control::handle_grow(connection& c, proto::packet p) {
  proto::grow_req g;
  const std::optional<std::uint32_t> id = decode_for_pool(p, g);
  if (!id) return drop(c.sock.get(), "bad grow");
  work_.nudge_growth(*id);
}

void control::handle_close(connection& c, proto::packet p) {
  proto::close_req q;
  const std::optional<std::uint32_t> id = decode_for_pool(p, q);
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
  work_.queue_reclaim({{ref.pool, ref.ctx, c.serial}});
}

} // namespace shmd
