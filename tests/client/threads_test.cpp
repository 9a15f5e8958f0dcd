// Threads of one process sharing a pool through a real shmd, each thread with its own
// pool<T> (its own context) opened concurrently on one slab::client: churn with frees
// across threads, then the audit. Labelled concurrent: the TSan build runs it (shmd,
// built with TSan too, runs under it as well).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <slab/client.hpp>

#include <slabtest/checks.hpp>

namespace {

using namespace std::chrono_literals;
using slab::key;
using slabtest::allocate;
using slabtest::check_and_erase;
using slabtest::daemon;
using slabtest::stamp;

TEST(threads, each_thread_its_own_pool_frees_across_threads) {
  constexpr int threads = 4;
  daemon d; // before any thread: the fixture forks
  slabtest::with_ledger ledger(1U << 20);
  std::vector<std::atomic<std::uint64_t>> box(256);
  slab::client c = slab::client::connect(d.socket_path());
  std::atomic<int> opened{0};
  std::atomic<std::uint64_t> ops{0}, cross{0};
  std::mutex mu;
  std::string failures;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      try {
        slab::pool<stamp> p = c.open<stamp>("test"); // concurrent opens on one client
        opened.fetch_add(1);
        while (opened.load() < threads)
          std::this_thread::yield();
        std::mt19937 rng(static_cast<unsigned>(t) + 1);
        std::vector<key> mine;
        std::uint32_t n = 0;
        std::uint64_t done = 0, taken = 0;
        const auto until = std::chrono::steady_clock::now() + 1500ms;
        while (std::chrono::steady_clock::now() < until) {
          for (int i = 0; i < 128; ++i, ++done) {
            const auto dice = static_cast<unsigned>(rng() % 100);
            if (dice < 45 || mine.empty()) {
              if (mine.size() < 300)
                mine.push_back(allocate(p, static_cast<std::uint32_t>(t), n++));
            } else if (dice < 65) {
              std::swap(mine[rng() % mine.size()], mine.back());
              check_and_erase(p, mine.back());
              mine.pop_back();
            } else {
              const std::uint64_t old = box[rng() % box.size()].exchange(mine.back().raw());
              mine.pop_back();
              if (old != 0) {
                check_and_erase(p, key::from_raw(old));
                ++taken;
              }
            }
          }
        }
        for (key k : mine)
          check_and_erase(p, k);
        ops.fetch_add(done);
        cross.fetch_add(taken);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> g(mu);
        failures += "thread " + std::to_string(t) + ": " + e.what() + "\n";
      }
    });
  }
  for (auto& t : ts)
    t.join();
  EXPECT_TRUE(failures.empty()) << failures;
  EXPECT_GT(ops.load(), 1000U);
  EXPECT_GT(cross.load(), 0U) << "no key was erased by another thread than its allocator";
  std::uint64_t parked = 0;
  for (auto& b : box)
    parked += b.load() != 0 ? 1U : 0U;
  // Every pool<T> is gone (their contexts closed); what is parked stays live.
  slabtest::expect_clean_audit(d, parked);
}

} // namespace
