#include "worker.hpp"

#include <chrono>
#include <cstdio>
#include <string>

#include "checked.hpp"
#include "systemd.hpp"

namespace shmd {

worker::worker(std::vector<std::unique_ptr<pool_owner>>& pools, watchdog& beats)
    : pools_(pools), beats_(beats), done_(checked(slab::platform::wakeup::create())),
      urgent_(pools.size(), false) {}

worker::~worker() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void worker::start() {
  thread_ = std::thread([this] { loop(); });
}

void worker::queue_reclaim(const std::vector<context_ref>& refs) {
  {
    std::lock_guard<std::mutex> g(mu_);
    for (const context_ref& r : refs)
      reclaims_.push_back(r);
  }
  cv_.notify_one();
}

void worker::nudge_growth(std::uint32_t pool) {
  {
    std::lock_guard<std::mutex> g(mu_);
    urgent_[pool] = true;
  }
  cv_.notify_one();
}

std::vector<context_ref> worker::take_closed() {
  (void)done_.drain();
  std::vector<context_ref> done;
  std::lock_guard<std::mutex> g(mu_);
  done.swap(closed_);
  return done;
}

void worker::run_pending() {
  std::unique_lock<std::mutex> lk(mu_);
  round(lk);
}

void worker::round(std::unique_lock<std::mutex>& lk) {
  while (!reclaims_.empty()) {
    const context_ref r = reclaims_.front();
    reclaims_.pop_front();
    lk.unlock();
    pools_[r.pool]->reclaim(r.ctx);
    lk.lock();
    if (r.reply_to != 0) {
      closed_.push_back(r);
      done_.notify();
    }
  }
  std::vector<bool> urgent(pools_.size(), false);
  urgent.swap(urgent_);
  lk.unlock();
  for (std::size_t i = 0; i < pools_.size(); ++i)
    pools_[i]->maybe_grow(urgent[i]);
  lk.lock();
}

bool worker::has_work() const {
  bool any = false;
  for (const bool u : urgent_)
    any = any || u;
  for (const auto& p : pools_)
    any = any || p->more_to_offer(); // a tier offered in part: its next chunk now
  return stopping_ || any || !reclaims_.empty();
}

void worker::loop() {
  auto last_status = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    beats_.beat_worker();
    round(lk);
    if (std::chrono::steady_clock::now() - last_status > std::chrono::seconds(1)) {
      lk.unlock();
      publish_status();
      last_status = std::chrono::steady_clock::now();
      lk.lock();
    }
    cv_.wait_for(lk, std::chrono::milliseconds(1), [this] { return has_work(); });
  }
}

void worker::publish_status() {
  std::string s = "STATUS=";
  for (const auto& p : pools_) {
    const std::uint64_t ready = p->ready_slots();
    const std::uint64_t live = p->live_estimate();
    char b[160];
    std::snprintf(b, sizeof b, "%s%s %.1f%% of %llu slots live", s.size() > 7 ? "; " : "",
                  p->name().c_str(),
                  ready == 0 ? 0.0 : 100.0 * static_cast<double>(live) / static_cast<double>(ready),
                  static_cast<unsigned long long>(ready));
    s += b;
  }
  systemd::notify(s);
}

} // namespace shmd
