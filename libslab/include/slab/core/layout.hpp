// Slot layout: how far apart payloads sit and how they are aligned.
//
// A payload is aligned to at least alignof(std::max_align_t), and to 64 bytes when the
// slot is 64 bytes or larger, so two hot slots never share a cache line. The stride is
// the slot size rounded up to that alignment; an over-aligned type (alignas(128), a
// page-aligned buffer) is honoured by raising the alignment to its own.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace slab::core {

inline constexpr std::size_t cache_line = 64;

struct slot_layout {
  std::size_t size;   ///< payload bytes the caller asked for
  std::size_t align;  ///< alignment of every payload (a power of two)
  std::size_t stride; ///< distance between consecutive payloads

  static constexpr slot_layout for_payload(std::size_t size, std::size_t type_align = 1) noexcept {
    std::size_t a = alignof(std::max_align_t);
    if (size >= cache_line && a < cache_line) a = cache_line;
    if (type_align > a) a = type_align;
    const std::size_t s = size == 0 ? 1 : size;
    return {s, a, (s + a - 1) & ~(a - 1)};
  }
};

static_assert(slot_layout::for_payload(8).stride == 16);
static_assert(slot_layout::for_payload(24).stride == 32);
static_assert(slot_layout::for_payload(64).stride == 64);
static_assert(slot_layout::for_payload(65).stride == 128);
static_assert(slot_layout::for_payload(128).align == 64);
static_assert(slot_layout::for_payload(8, 256).stride == 256);

} // namespace slab::core
