// locked_backing: a backing for slab::slab<T> whose tiers are hugepage-backed,
// NUMA-bound, prefaulted and mlocked, so that neither growth's first touches nor the
// kernel's reclaim put a page fault on the hot path.
//
//   slab::slab<Order, slab::platform::locked_backing> book(
//       {}, slab::platform::locked_backing({.hugepages = slab::platform::page_policy::prefer}));
//
// With page_policy::prefer and no hugepages available it falls back to normal pages
// and reports it once through the warning sink (stderr by default). `require` throws
// slab::error(errc::hugepages) instead; a failed mlock throws slab::error(errc::mlock)
// unless `lock` is false; a bad NUMA node throws slab::error(errc::numa).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <slab/platform/platform.hpp>

namespace slab::platform {

class locked_backing {
public:
  using warning_sink = std::function<void(const std::string&)>;

  locked_backing() : locked_backing(map_options{}) {}
  explicit locked_backing(map_options opt, warning_sink warn = {});

  void* allocate(std::size_t bytes, std::size_t align);
  void deallocate(void* p, std::size_t bytes, std::size_t align) noexcept;

  /// True once any tier fell back from hugepages to normal pages.
  [[nodiscard]] bool fell_back() const noexcept { return fell_back_; }
  [[nodiscard]] const map_options& options() const noexcept { return opt_; }

private:
  map_options opt_;
  warning_sink warn_;
  bool fell_back_ = false;
};

} // namespace slab::platform
