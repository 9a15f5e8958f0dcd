// General-purpose and shared-memory allocators as slab peers: a key is the object's
// address, insert allocates and copies the value in, erase destroys and frees.
//
//   malloc_peer        malloc/free: glibc's; in a child process with libjemalloc or
//                      libmimalloc preloaded, the same peer measures jemalloc or mimalloc
//                      (both replace malloc process-wide: see slab_latency --child-run)
//   boost_shm_peer     Boost.Interprocess managed_shared_memory: allocate/deallocate in a
//                      shared segment (a best-fit tree under an interprocess mutex)
//   boost_node_peer    Boost.Interprocess node_allocator<T> in a shared segment: a
//                      segregated free list of T-sized nodes, shared by every process
//                      that opens the segment, under the segment's mutex
//
// The arenas (the Boost segments) are sized for `capacity` values up front, since a
// managed segment cannot grow while it is mapped; their pages are faulted in on first
// touch, as Boost leaves them.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>

#include <boost/interprocess/allocators/node_allocator.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>

namespace peers {

/// malloc and free.
template <class P> struct malloc_peer {
  static constexpr std::string_view name = "glibc malloc";
  static constexpr bool frees_each = true; // dispose() frees every value left
  using key_type = P*;
  explicit malloc_peer(std::size_t /*capacity*/) {}
  key_type insert(const P& v) {
    void* m = std::malloc(sizeof(P));
    if (m == nullptr) throw std::bad_alloc();
    return ::new (m) P(v);
  }
  P* get(key_type k) noexcept { return k; }
  void erase(key_type k) noexcept {
    k->~P();
    std::free(k);
  }
};

namespace bip = boost::interprocess;

/// A uniquely named managed shared memory segment, removed when done.
class boost_segment {
public:
  /// Room for `objects` allocations of `object_bytes` each, plus the allocator's own
  /// headers and slack.
  boost_segment(std::size_t objects, std::size_t object_bytes)
      : name_(unique_name()),
        seg_(bip::create_only, name_.c_str(), objects * (object_bytes + 64) + (16U << 20)) {}
  boost_segment(const boost_segment&) = delete;
  boost_segment& operator=(const boost_segment&) = delete;
  ~boost_segment() { bip::shared_memory_object::remove(name_.c_str()); }
  bip::managed_shared_memory& segment() noexcept { return seg_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

private:
  static std::string unique_name() {
    static std::atomic<unsigned> n{0};
    const std::string name =
        "slab_bench." + std::to_string(::getpid()) + "." + std::to_string(n.fetch_add(1));
    bip::shared_memory_object::remove(name.c_str()); // a leftover of a killed run
    return name;
  }
  std::string name_;
  bip::managed_shared_memory seg_;
};

/// Boost.Interprocess managed_shared_memory: allocate and deallocate.
template <class P> struct boost_shm_peer {
  static constexpr std::string_view name = "boost shm";
  using key_type = P*;
  explicit boost_shm_peer(std::size_t capacity) : seg(capacity + 1024, sizeof(P)) {}
  key_type insert(const P& v) { return ::new (seg.segment().allocate(sizeof(P))) P(v); }
  P* get(key_type k) noexcept { return k; }
  void erase(key_type k) noexcept {
    k->~P();
    seg.segment().deallocate(k);
  }
  boost_segment seg;
};

/// Boost.Interprocess node_allocator<P>: the segment's shared node pool for P.
template <class P> struct boost_node_peer {
  static constexpr std::string_view name = "boost node_alloc";
  using key_type = P*;
  using alloc = bip::node_allocator<P, bip::managed_shared_memory::segment_manager>;
  explicit boost_node_peer(std::size_t capacity)
      : seg(capacity + 1024, sizeof(P)), a(seg.segment().get_segment_manager()) {}
  key_type insert(const P& v) { return ::new (&*a.allocate(1)) P(v); }
  P* get(key_type k) noexcept { return k; }
  void erase(key_type k) noexcept {
    k->~P();
    a.deallocate(typename alloc::pointer(k), 1);
  }
  boost_segment seg;
  alloc a;
};

} // namespace peers
