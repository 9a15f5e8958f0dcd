#include <slabtest/shared.hpp>

#include <cerrno>
#include <chrono>
#include <thread>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace slabtest {

namespace {
std::size_t whole_pages(std::size_t bytes) { return (bytes + 4095) / 4096 * 4096; }
} // namespace

void* map_shared(std::size_t bytes) {
  void* p = ::mmap(nullptr, whole_pages(bytes), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
  if (p == MAP_FAILED) fail_errno("mmap shared memory for the test");
  return p;
}

void unmap_shared(void* p, std::size_t bytes) noexcept { ::munmap(p, whole_pages(bytes)); }

bool spin_barrier::arrive_and_wait(std::uint64_t parties, std::uint64_t round,
                                   milliseconds timeout) {
  arrived_.fetch_add(1);
  const std::uint64_t target = parties * (round + 1);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (std::uint64_t spins = 1; arrived_.load() < target; ++spins) {
    if (spins % 64 == 0) std::this_thread::yield();
    if (spins % 4096 == 0 && std::chrono::steady_clock::now() >= deadline) return false;
  }
  return true;
}

void fd_handle::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

pipe_pair::pipe_pair() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail_errno("pipe2");
  read_end = fd_handle(fds[0]);
  write_end = fd_handle(fds[1]);
}

bool write_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

} // namespace slabtest
