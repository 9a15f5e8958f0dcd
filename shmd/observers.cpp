// control (control.hpp): the read-only requests of observers (slabctl), once greeted
// (observer_hello, clients.cpp): observe (a pool's segments, reopened read-only) and
// clients (who holds which context).
#include <algorithm>
#include <string>

#include <slab/error.hpp>
#include <slab/platform/ipc.hpp>
#include <slab/platform/segment.hpp>
#include <slab/proto/protocol.hpp>

#include "control.hpp"

namespace shmd {

namespace proto = slab::proto;
namespace platform = slab::platform;
using slab::errc;

void control::handle_observe(connection& c, proto::packet p) {
  proto::observe_req q;
  if (proto::decode(p, q) != proto::decode_result::ok) return drop(c.sock.get(), "bad observe");
  const std::string_view name = proto::get_text(q.pool);
  const std::optional<std::uint32_t> found =
      name.empty()
          ? (q.index < pools_.size() ? std::optional<std::uint32_t>(q.index) : std::nullopt)
          : pool_id_of(name);
  if (!found) {
    send_error(c, errc::not_found,
               (name.empty() ? "no pool number " + std::to_string(q.index)
                             : "no pool named '" + std::string(name) + "'") +
                   " (this shmd has: " + pool_names() + ")");
    return;
  }
  pool_owner& pool = *pools_[*found];
  // Reopened read-only: an observer's mappings can then be PROT_READ only (mprotect to
  // write fails with EACCES), whatever it tries.
  std::vector<platform::unique_fd> owned;
  std::string failed; // the first reopen that failed
  const auto reopen = [&](int fd) {
    auto ro = platform::reopen_read_only(fd);
    if (!ro && failed.empty()) failed = ro.error().what;
    if (ro) owned.push_back(std::move(ro.value()));
  };
  reopen(pool.map().control_fd());
  pool.with_tier_fds(q.first_tier, [&](const std::vector<int>& fds) {
    for (const int fd : fds)
      reopen(fd);
  });
  if (!failed.empty()) {
    send_error(c, errc::system,
               "pool '" + pool.name() + "': cannot reopen a segment read-only: " + failed);
    return;
  }
  const pool_owner::growth_failures f = pool.failures();
  proto::observed r;
  r.pool_id = *found;
  r.pools = static_cast<std::uint32_t>(pools_.size());
  r.first_tier = q.first_tier;
  r.growth_failures = f.count;
  r.last_failure_unix_ns = f.last_unix_ns;
  r.daemon_started_unix_ns = started_unix_ns_;
  proto::set_text(r.pool, pool.name());
  proto::set_text(r.last_failure, f.last);
  std::vector<int> fds;
  fds.reserve(owned.size());
  for (const platform::unique_fd& fd : owned)
    fds.push_back(fd.get());
  r.tiers = static_cast<std::uint32_t>((fds.size() - 1) / 2);
  if (!platform::send_message(c.sock.get(), &r, sizeof r, fds))
    drop(c.sock.get(), "could not send the pool's segments");
}

std::vector<proto::client_entry> control::clients_of(std::uint32_t pool) const {
  std::vector<proto::client_entry> all;
  const auto add = [&](const connection& k, proto::client_link link) {
    for (const context_ref& r : k.contexts) {
      if (r.pool != pool) continue;
      proto::client_entry e;
      e.context = r.ctx;
      e.pid = k.pid;
      e.uid = k.uid;
      e.link = static_cast<std::uint32_t>(link);
      proto::set_text(e.comm, k.comm.empty() ? platform::process_name(k.pid) : k.comm);
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
  return all;
}

void control::handle_clients(connection& c, proto::packet p) {
  proto::clients_req q;
  const std::optional<std::uint32_t> id = decode_for_pool(p, q);
  if (!id) {
    send_error(c, errc::not_found, "no pool named '" + std::string(proto::get_text(q.pool)) + "'");
    return;
  }
  const std::vector<proto::client_entry> all = clients_of(*id);
  proto::clients_msg r;
  r.pool_id = *id;
  r.total = static_cast<std::uint32_t>(all.size());
  r.first = q.first;
  for (std::size_t i = q.first; i < all.size() && r.count < proto::clients_msg::max_entries; ++i)
    r.entries[r.count++] = all[i];
  if (!platform::send_message(c.sock.get(), &r, sizeof r)) drop(c.sock.get(), "send failed");
}

} // namespace shmd
