// Where the embedded slab gets its tiers from.
//
// A backing hands out one block per tier and takes it back when the slab dies. It is
// called only when a tier is added (growth) or the slab is destroyed, never on the
// per-operation path. Contract:
//   void* allocate(std::size_t bytes, std::size_t align);  // bytes > 0, align a power
//       // of two; returns a block that is never moved; throws slab::error on failure.
//   void deallocate(void* p, std::size_t bytes, std::size_t align) noexcept;
//       // p, bytes and align exactly as returned by / passed to allocate.
//
// heap_backing (here) is the default. slab::platform::locked_backing
// (<slab/platform/locked_backing.hpp>) maps hugepages, prefaults and mlocks each tier,
// falling back to normal pages with a warning where hugepages are missing.
#pragma once

#include <concepts>
#include <cstddef>
#include <new>

#include <slab/error.hpp>

namespace slab {

template <class B>
concept backing = requires(B b, void* p, std::size_t n) {
  { b.allocate(n, n) } -> std::same_as<void*>;
  { b.deallocate(p, n, n) }
  noexcept;
};

struct heap_backing {
  void* allocate(std::size_t bytes, std::size_t align) {
    void* p = ::operator new (bytes, std::align_val_t{align}, std::nothrow);
    if (p == nullptr) throw error(errc::out_of_memory, "slab: the heap could not supply a tier");
    return p;
  }
  void deallocate(void* p, std::size_t /*bytes*/, std::size_t align) noexcept {
    ::operator delete (p, std::align_val_t{align});
  }
};

} // namespace slab
