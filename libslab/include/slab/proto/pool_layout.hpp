// The shared layout of a daemon-backed pool: what lives in which segment, at which
// offset. Defined once, here; shmd creates it, clients and slabctl map it.
//
// A pool is one control segment plus two segments per tier:
//
//   control segment (normal pages, mlocked)
//   +--------------------+ 0
//   | pool_header        |  magic, ABI, geometry, tier table, status the daemon keeps
//   +--------------------+ header_bytes (4 KiB multiple)
//   | pool_state         |  depot cells, fresh cursor, ready_slots (core/shared_layout)
//   +--------------------+ contexts_offset
//   | context_record[C]  |  one per attachable context; record 0 is the daemon's
//   +--------------------+ magazines_offset
//   | magazine[X]        |  the magazines beyond one per K slots (the budget's slack)
//   +--------------------+ control_bytes
//
//   tier t, "meta" segment                 tier t, "data" segment
//   +---------------------------+ 0        +---------------------------+ 0
//   | shared_header[n_t]        |          | payload[n_t], stride apart|
//   +---------------------------+ hdr_bytes+---------------------------+
//   | magazine[n_t / K]         |
//   +---------------------------+
//
// Every process reserves two virtual ranges per pool, one for all headers and one for
// all payloads (max_slots entries each, PROT_NONE), and maps each tier's parts at their
// fixed places: header(i) = headers + i, payload(i) = payloads + i * stride, with no
// tier lookup on the per-operation path. Tier t's magazines are mapped anywhere; their
// ids are X + (first slot of t) / K + j, so a magazine id finds its tier by tier math.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <slab/core/shared_layout.hpp>
#include <slab/core/slot_header.hpp>
#include <slab/core/tier.hpp>

namespace slab::proto {

/// Bumped on any change to this file or protocol.hpp that an older peer would misread.
inline constexpr std::uint32_t abi_version = 3; // 3: magazines line-aligned, pool identity
inline constexpr std::uint64_t pool_magic = 0x4c4f4f5042414c53ULL; // "SLABPOOL"
inline constexpr std::size_t pool_name_max = 64;                   // including the NUL

/// Pool modes (pool_header::mode), from the config's `mode`. In an arena nothing is ever
/// erased: clients refuse to free, and may read a handed-out key's value without
/// checking its generation.
inline constexpr std::uint32_t mode_slab = 0;
inline constexpr std::uint32_t mode_arena = 1;

/// Tier flags (tier_info::flags).
inline constexpr std::uint32_t tier_huge = 1U << 0;      ///< data on hugepages
inline constexpr std::uint32_t tier_meta_huge = 1U << 1; ///< meta on hugepages
inline constexpr std::uint32_t tier_locked = 1U << 2;    ///< mlocked by the daemon
inline constexpr std::uint32_t tier_fallback = 1U << 3;  ///< `prefer` fell back to normal pages
inline constexpr std::uint32_t tier_numa_ok = 1U << 4;   ///< every sampled page on numa_node

struct tier_info {
  std::uint64_t first_slot;   ///< index of its first slot
  std::uint64_t slots;        ///< n_t
  std::uint64_t meta_bytes;   ///< size of the meta segment
  std::uint64_t data_bytes;   ///< size of the data segment
  std::uint64_t header_bytes; ///< headers part of meta; magazines follow at this offset
  std::uint32_t page_size;    ///< page size in force for the data segment
  std::int32_t numa_node;     ///< node asked for (-1: none)
  std::uint32_t flags;        ///< tier_*
  std::uint32_t reserved;
  std::uint64_t created_unix_ns; ///< when the daemon published it
  std::uint64_t prepare_ns;      ///< creating + binding + prefaulting + locking it took
};
static_assert(sizeof(tier_info) == 72);

/// Offset 0 of the control segment. Written by the daemon before the first client
/// attaches; later changes are the atomics only.
struct pool_header {
  std::uint64_t magic;
  std::uint32_t abi;
  std::uint32_t header_bytes;
  char name[pool_name_max];
  std::uint32_t slot_size;       ///< payload bytes the config asked for
  std::uint32_t stride;          ///< distance between payloads
  std::uint32_t align;           ///< payload alignment
  std::uint32_t base_log2;       ///< tier 0 holds 2^base_log2 slots
  std::uint64_t max_slots;       ///< ceiling for growth (a multiple of K)
  std::uint32_t contexts;        ///< context records
  std::uint32_t extra_magazines; ///< X: magazines in the control segment
  std::uint32_t magazine_slots;  ///< K, for a sanity check
  std::uint32_t page_policy;     ///< slab::platform::page_policy asked for
  std::int32_t numa_node;
  std::uint32_t max_tiers; ///< entries of `tiers`
  std::uint64_t state_offset;
  std::uint64_t contexts_offset;
  std::uint64_t magazines_offset;
  std::uint64_t control_bytes;
  std::uint64_t created_unix_ns;
  std::atomic<std::uint32_t> tiers_published; ///< tiers [0, n) exist (release)
  std::atomic<std::uint32_t> daemon_pid;
  std::atomic<std::uint64_t> retired_allocs; ///< counters of reclaimed contexts, summed
  std::atomic<std::uint64_t> retired_frees;
  std::atomic<std::uint64_t> reclaims; ///< contexts reclaimed so far
  std::uint32_t mode;                  ///< mode_slab or mode_arena, fixed at creation
  /// slab::errc of the daemon's last failed attempt to add a tier, 0 once one succeeds:
  /// a client that runs dry can say why the pool did not grow (the log says more).
  std::atomic<std::uint32_t> growth_failed;
  /// Random at creation, never changed: names this pool apart from every other, and
  /// from an earlier or later pool of the same name (key_salt).
  std::uint64_t identity;
  tier_info tiers[core::max_tiers];
};

/// What a pool's keys carry XORed into their generation half: an even, non-zero 32-bit
/// value derived from the pool's identity. Even, so that a key's generation keeps its
/// parity (odd: live); XORed, so that a key handed out by another pool, whose index
/// and generation coincide with a live slot here (the normal case for two young pools),
/// names a generation this slot does not have except with probability 2^-31. The core
/// works on unsalted keys; the client library salts what it hands out and unsalts
/// what it is given (one XOR).
inline constexpr std::uint32_t key_salt(std::uint64_t identity) noexcept {
  const auto s = static_cast<std::uint32_t>(identity ^ (identity >> 32)) & ~std::uint32_t{1};
  return s != 0 ? s : 2U;
}
static_assert(key_salt(0) == 2 && key_salt(1) == 2 && (key_salt(0x1234567890ULL) & 1U) == 0);

/// Where things are, computed the same way by the daemon and every client.
struct pool_geometry {
  core::tier_geometry geo{0};
  std::uint64_t max_slots = 0;
  std::uint32_t stride = 0;
  std::uint32_t contexts = 0;
  std::uint32_t extra_magazines = 0;
  std::uint32_t key_salt = 0; ///< key_salt(identity), where get() finds it beside the stride

  [[nodiscard]] unsigned tier_count() const noexcept { return geo.tiers_for(max_slots); }
  [[nodiscard]] std::uint64_t tier_slots(unsigned t) const noexcept {
    const std::uint64_t end =
        geo.capacity_through(t) < max_slots ? geo.capacity_through(t) : max_slots;
    return end - geo.tier_begin(t);
  }
  /// First magazine id of tier t's meta segment.
  [[nodiscard]] std::uint64_t tier_first_magazine(unsigned t) const noexcept {
    return extra_magazines + geo.tier_begin(t) / core::magazine_slots;
  }
};

/// Copies s into a fixed char field, always NUL-terminated.
template <std::size_t N> void set_text(char (&dst)[N], std::string_view s) noexcept {
  const std::size_t n = s.size() < N - 1 ? s.size() : N - 1;
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}
/// The text of a fixed char field, stopping at the first NUL (or the end).
template <std::size_t N> std::string_view get_text(const char (&src)[N]) noexcept {
  return {src, ::strnlen(src, N)};
}

inline constexpr std::uint64_t round_up(std::uint64_t v, std::uint64_t to) noexcept {
  return (v + to - 1) / to * to;
}

} // namespace slab::proto
