// What the two halves of pool_map (pool_map.cpp: attaching and mapping; pool_create.cpp:
// making and adopting pools) share: the control segment's layout, segment names, and
// the platform calls they make. Not installed.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <slab/core/layout.hpp>
#include <slab/mapped/pool_map.hpp>

namespace slab::mapped {

/// Where the control segment's parts start, and its size.
struct detail::control_layout {
  std::uint64_t header_bytes, state_offset, contexts_offset, magazines_offset, bytes;
};

using detail::control_layout;

using platform::ok_t;
using platform::page_policy;
using platform::result;
using platform::segment;
using platform::segment_store;
using platform::status;
using platform::sys_cause;
using platform::unique_fd;
// The platform calls these files make (platform/segment.hpp, platform/platform.hpp).
using platform::create_segment;
using platform::fd_size;
using platform::huge_page_size;
using platform::lock;
using platform::map_segment;
using platform::normal_page_size;
using platform::open_segment;
using platform::page_nodes;
using platform::prepare_new_range;
using platform::release_range;
using platform::remove_segment;
using platform::reserve_range;
using platform::unmap_segment;

// The pool's own errors: no errno from an OS call, a message naming the pool or tier.
inline platform::sys_error fail(int err, std::string what, sys_cause cause) {
  return platform::sys_error{err, std::move(what), cause};
}

inline constexpr std::uint64_t min_gran = 512; // slots: 512 headers fill one 4 KiB page
inline constexpr std::uint64_t slot_limit = core::max_slots;

inline control_layout control_for(std::uint32_t contexts, std::uint32_t extra) {
  control_layout c{};
  c.header_bytes = proto::round_up(sizeof(proto::pool_header), 4096);
  c.state_offset = c.header_bytes;
  c.contexts_offset = c.state_offset + proto::round_up(sizeof(core::pool_state), 64);
  c.magazines_offset = c.contexts_offset + std::uint64_t{contexts} * sizeof(core::context_record);
  c.bytes =
      proto::round_up(c.magazines_offset + std::uint64_t{extra} * sizeof(core::magazine), 4096);
  return c;
}

inline std::uint64_t now_unix_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// Meta segments go on hugepages only when every tier's header part is a whole number of
// them and starts on one: tier 0's headers must fill at least a hugepage.
inline bool meta_can_be_huge(const proto::pool_geometry& g, std::size_t huge) {
  return huge != 0 && g.geo.base() * sizeof(core::shared_header) >= huge;
}

inline std::uint64_t header_bytes_of(std::uint64_t slots) {
  return slots * sizeof(core::shared_header);
}
inline std::uint64_t magazine_bytes_of(std::uint64_t slots) {
  return slots / core::magazine_slots * sizeof(core::magazine);
}

/// Where a new segment lives, for messages: its path, or the memfd's name.
inline std::string segment_path(const segment_store& store, const std::string& name, bool huge) {
  const std::string& dir = huge ? store.huge_dir : store.normal_dir;
  return dir.empty() ? "memfd '" + name + "'" : dir + "/" + name;
}

inline std::string control_name(const std::string& pool) { return pool + ".control"; }
inline std::string tier_name(const std::string& pool, unsigned t, const char* part) {
  return pool + ".t" + std::to_string(t) + "." + part;
}

} // namespace slab::mapped
