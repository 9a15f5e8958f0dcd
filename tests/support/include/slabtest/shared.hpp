// What a test shares with the children it forks: memory mapped before the fork (at the
// same address in every process), a barrier in it, and pipes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include <slabtest/files.hpp>

namespace slabtest {

/// Anonymous MAP_SHARED memory of `bytes` (rounded up to pages); throws on failure.
void* map_shared(std::size_t bytes);
void unmap_shared(void* p, std::size_t bytes) noexcept;

/// n objects of T in an anonymous MAP_SHARED mapping: made before fork, the same
/// memory (at the same address) in the parent and every child. T must be usable
/// across processes (atomics, plain data).
template <class T> class shared_array {
public:
  explicit shared_array(std::size_t n = 1)
      : n_(n), data_(static_cast<T*>(map_shared(n * sizeof(T)))) {
    for (std::size_t i = 0; i < n_; ++i)
      ::new (&data_[i]) T();
  }
  ~shared_array() { unmap_shared(data_, n_ * sizeof(T)); }
  shared_array(const shared_array&) = delete;
  shared_array& operator=(const shared_array&) = delete;

  T& operator[](std::size_t i) noexcept { return data_[i]; }
  T* get() noexcept { return data_; }
  T& operator*() noexcept { return data_[0]; }
  T* operator->() noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }

private:
  std::size_t n_;
  T* data_;
};

/// A barrier for processes (or threads) in shared memory: round r is passed once
/// `parties` callers have arrived r + 1 times. Spins (yielding now and then) so that the
/// parties leave it together; gives up after `timeout` (returns false).
class spin_barrier {
public:
  bool arrive_and_wait(std::uint64_t parties, std::uint64_t round, milliseconds timeout = 10s);

private:
  std::atomic<std::uint64_t> arrived_{0};
};

/// A file descriptor closed on destruction.
class fd_handle {
public:
  fd_handle() = default;
  explicit fd_handle(int fd) noexcept : fd_(fd) {}
  fd_handle(fd_handle&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  fd_handle& operator=(fd_handle&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~fd_handle() { close(); }
  fd_handle(const fd_handle&) = delete;
  fd_handle& operator=(const fd_handle&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  void close() noexcept;

private:
  int fd_ = -1;
};

/// A pipe (O_CLOEXEC). After fork, each side closes the end it does not use, so that the
/// reader sees EOF once every writer is gone.
struct pipe_pair {
  fd_handle read_end, write_end;
  pipe_pair();
};

/// Writes all n bytes (through EINTR and short writes); false on error.
bool write_all(int fd, const void* data, std::size_t n);
/// Reads exactly n bytes; false on EOF or error (also when EOF comes mid-object).
bool read_all(int fd, void* data, std::size_t n);

template <class T> bool send_value(int fd, const T& v) { return write_all(fd, &v, sizeof v); }
template <class T> bool receive_value(int fd, T& v) { return read_all(fd, &v, sizeof v); }

} // namespace slabtest
