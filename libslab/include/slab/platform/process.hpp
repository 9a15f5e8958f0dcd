// Processes: who this one is, whether another one still runs, what it is called.
// Same contract as platform.hpp: errors are values naming the resource, nothing prints.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <slab/platform/platform.hpp>
#include <slab/platform/segment.hpp>

namespace slab::platform {

/// A process's identity: its pid and the real uid and gid it runs as (for a socket's
/// peer, as the kernel recorded them at connect: SO_PEERCRED).
struct peer_credentials {
  std::uint32_t pid = 0, uid = 0, gid = 0;
};

/// This process: getpid, getuid, getgid.
[[nodiscard]] peer_credentials own_credentials() noexcept;
[[nodiscard]] std::uint32_t own_pid() noexcept;
/// The effective uid and gid (what the kernel checks file access against), for messages
/// that say why a directory or file was refused.
[[nodiscard]] std::uint32_t own_effective_uid() noexcept;
[[nodiscard]] std::uint32_t own_effective_gid() noexcept;

/// 64 bits from the kernel's random source (getrandom), for identities that must not
/// repeat or be guessed (a pool's). Never blocks after early boot; falls back to mixing
/// the clock, the pid and an address if the call fails.
[[nodiscard]] std::uint64_t random_u64() noexcept;

/// Raises this process's soft limit on open descriptors (RLIMIT_NOFILE) to its hard
/// limit, as a server holding one descriptor per client should; returns the limit now
/// in force.
std::uint64_t raise_descriptor_limit() noexcept;

/// A process's name as the kernel keeps it (/proc/PID/comm, at most 15 bytes), or ""
/// when the process is gone or not visible.
[[nodiscard]] std::string process_name(std::uint32_t pid);
/// This process's name (/proc/self/comm), or "?" when it cannot be read.
[[nodiscard]] std::string own_process_name();

/// True while a process with this pid exists, whoever owns it (kill(pid, 0) succeeds or
/// is refused with EPERM). A pid can be reused once its process is reaped: a pidfd
/// (open_pidfd) names one process for good.
[[nodiscard]] bool process_exists(std::uint32_t pid) noexcept;

/// A pidfd for `pid` (readable once the process has exited), or an error on kernels
/// without pidfd_open.
[[nodiscard]] result<unique_fd> open_pidfd(std::uint32_t pid);
/// True once the process behind a pidfd has exited (its pidfd polls readable).
[[nodiscard]] bool pidfd_exited(int pidfd) noexcept;

/// The gid of the group called `name` (getgrnam_r: /etc/group, or whatever NSS the
/// machine uses), or nullopt when the machine knows no such group. An error only when
/// the lookup itself failed (EIO, an unreachable directory service), naming the group.
[[nodiscard]] result<std::optional<std::uint32_t>> group_id(const std::string& name);
/// The uid of the user called `name` (getpwnam_r), the same way.
[[nodiscard]] result<std::optional<std::uint32_t>> user_id(const std::string& name);

} // namespace slab::platform
