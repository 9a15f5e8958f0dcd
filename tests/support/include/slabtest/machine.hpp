// The machine a test changes and restores: who it runs as, and the system-wide hugepage
// pool (vm.nr_hugepages), held at a size for one test.
#pragma once

#include <cstdint>
#include <string>

#include <slabtest/shared.hpp>

namespace slabtest {

[[nodiscard]] bool is_root() noexcept;

/// The number a /proc/sys file holds (0 if it cannot be read).
[[nodiscard]] std::uint64_t read_number(const std::string& path);
/// Writes a number to a /proc/sys file; false on failure.
bool write_number(const std::string& path, std::uint64_t v);

/// Exactly `n` free default-size hugepages for one test (n == 0: none), the previous
/// vm.nr_hugepages restored after; or a reason why not (why(), for GTEST_SKIP). A lock
/// file (flock) keeps the test processes that resize the pool from doing it at once.
class hugepage_reserve {
public:
  explicit hugepage_reserve(std::uint64_t n);
  ~hugepage_reserve();
  hugepage_reserve(const hugepage_reserve&) = delete;
  hugepage_reserve& operator=(const hugepage_reserve&) = delete;

  [[nodiscard]] bool ok() const noexcept { return why_.empty(); }
  [[nodiscard]] const std::string& why() const noexcept { return why_; }

private:
  void set(std::uint64_t n);

  fd_handle lock_;
  std::uint64_t previous_ = 0;
  bool changed_ = false;
  std::string why_;
};

} // namespace slabtest
