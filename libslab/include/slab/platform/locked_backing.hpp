// locked_backing: a backing for slab::slab<T> whose tiers are hugepage-backed,
// NUMA-bound, prefaulted and mlocked, so that neither growth's first touches nor the
// kernel's reclaim put a page fault on the hot path.
//
//   slab::slab<Order, slab::platform::locked_backing> book(
//       {}, slab::platform::locked_backing({.hugepages = slab::platform::page_policy::prefer}));
//
// With page_policy::prefer and no hugepages available it falls back to normal pages
// and reports it once through the warning sink (stderr by default, one line prefixed
// "slab: warning: "). `require` throws slab::error(errc::hugepages) instead; a failed
// mlock throws slab::error(errc::mlock) unless `lock` is false; a bad NUMA node throws
// slab::error(errc::numa); an alignment that is not a power of two throws
// errc::invalid_argument. Alignments above the page size are honoured.
//
// The backing owns the blocks it handed out: it is movable (the source is left empty)
// but not copyable, and its destructor unmaps whatever was not deallocated.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <slab/platform/platform.hpp>

namespace slab::platform {

class locked_backing {
public:
  using warning_sink = std::function<void(const std::string&)>;

  locked_backing() : locked_backing(map_options{}) {}
  /// An empty `warn` means the default sink (stderr).
  explicit locked_backing(map_options opt, warning_sink warn = {});
  locked_backing(const locked_backing&) = delete;
  locked_backing& operator=(const locked_backing&) = delete;
  locked_backing(locked_backing&& o) noexcept;
  locked_backing& operator=(locked_backing&& o) noexcept;
  ~locked_backing();

  void* allocate(std::size_t bytes, std::size_t align);
  void deallocate(void* p, std::size_t bytes, std::size_t align) noexcept;

  /// True once any tier fell back from hugepages to normal pages.
  [[nodiscard]] bool fell_back() const noexcept { return fell_back_; }
  [[nodiscard]] const map_options& options() const noexcept { return opt_; }

private:
  map_options opt_;
  warning_sink warn_;
  bool fell_back_ = false;
  std::vector<mapping> maps_; // one per live block, so deallocate unmaps the real length

  void release() noexcept;
};

} // namespace slab::platform
