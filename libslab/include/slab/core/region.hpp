// The abstract memory region the shared algorithms run on.
//
// The algorithms (cache.hpp, reclaim.hpp, audit.hpp) never see an address space: they
// ask a region for the object behind an id. A daemon-backed pool answers from segments
// mapped at fixed places in reserved ranges; tests and benchmarks answer from a heap
// block (local_region.hpp). Every id that comes out of shared memory may be garbage
// (a dying or hostile context can write anything), so the region also says whether an
// id names something that exists, mapping a tier on the slow path if it must.
#pragma once

#include <concepts>
#include <cstdint>

#include <slab/core/shared_layout.hpp>
#include <slab/core/slot_header.hpp>

namespace slab::core {

template <class R>
concept region = requires(R& r, const R& cr, std::uint32_t id) {
  { r.state() } -> std::same_as<pool_state&>;
  /// Requires has_slot(id) / has_magazine(id) / id < context_count().
  { r.header(id) } -> std::same_as<shared_header&>;
  { r.mag(id) } -> std::same_as<magazine&>;
  { r.context(id) } -> std::same_as<context_record&>;
  /// True when `id` names a slot (magazine) that exists and is mapped in this process;
  /// may map a tier first (the one slow-path syscall a client makes).
  { r.has_slot(id) } -> std::same_as<bool>;
  { r.has_magazine(id) } -> std::same_as<bool>;
  { cr.context_count() } -> std::convertible_to<std::uint32_t>;
  /// Magazine ids are [0, magazine_count()).
  { cr.magazine_count() } -> std::convertible_to<std::uint32_t>;
};

} // namespace slab::core
