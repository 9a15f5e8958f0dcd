// pool_map: one process's mapping of a daemon-backed pool, and the region (core/region.hpp)
// the shared algorithms run on. shmd creates pools and their tiers through it; clients
// and slabctl attach to them from the segments' file descriptors.
//
// Layout: proto/pool_layout.hpp. Hot-path accessors are inline and branch-free but for
// one predictable compare (has_slot); mapping a tier this process has not seen yet is
// the slow path, delegated to `fetch_tiers` (a client asks the daemon for the fds).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/core/slot_header.hpp>
#include <slab/platform/platform.hpp>
#include <slab/platform/segment.hpp>
#include <slab/proto/pool_layout.hpp>

namespace slab::mapped {

namespace detail {
struct control_layout;
} // namespace detail

/// What shmd asks for when it creates a pool.
struct pool_spec {
  std::string name;
  std::uint32_t slot_size = 0;
  std::uint64_t capacity = 0;     ///< slots in tier 0 (rounded up)
  std::uint64_t max_capacity = 0; ///< ceiling for growth (rounded up to whole pages)
  std::uint32_t contexts = 64;
  platform::page_policy hugepages = platform::page_policy::prefer;
  int numa_node = -1;
};

/// Tier 0 size, the ceiling and the stride that spec leads to on this machine.
[[nodiscard]] proto::pool_geometry plan_geometry(const pool_spec& spec, std::size_t huge_page);

/// A tier's segments, kept by the daemon to hand to clients.
struct tier_segments {
  platform::unique_fd meta, data;
};

class pool_map {
public:
  /// Creates the control segment of a new pool (shmd). No tiers yet: create_tier(0)
  /// next. With a named store, the segments are files "<pool>.control",
  /// "<pool>.t<N>.meta" and "<pool>.t<N>.data" that outlive the daemon.
  static platform::result<std::unique_ptr<pool_map>>
  create(const pool_spec& spec, const platform::segment_store& store = {});
  /// Adopts a pool a previous daemon left in a named store: validates the control
  /// segment as attach does, maps and mlocks every published tier, and returns their
  /// segments in `tiers`. A tier created but never published (its creator died) is
  /// removed. Nothing is written to the pool. ENOENT when there is no such pool.
  static platform::result<std::unique_ptr<pool_map>> adopt(const std::string& name,
                                                           const platform::segment_store& store,
                                                           std::vector<tier_segments>& tiers);
  /// Attaches to an existing pool from its control segment (clients, slabctl): checks
  /// the magic, the ABI and every size against the segment before trusting any of it.
  static platform::result<std::unique_ptr<pool_map>> attach(platform::unique_fd control,
                                                            bool writable);

  pool_map(const pool_map&) = delete;
  pool_map& operator=(const pool_map&) = delete;
  ~pool_map();

  /// shmd: creates tier t's segments, maps them here, fills in tiers[t] and prepares
  /// (binds, faults in, locks) its first chunk of slots (chunk_end). A failure leaves
  /// nothing of the tier. Nothing of it is offered to anyone until shmd publishes it.
  platform::result<tier_segments> create_tier(unsigned t);
  /// shmd: prepares the last created tier's slots from mapped_slots() up to `to` (a
  /// chunk_end, within the tier), given the tier's segments. A failure leaves what was
  /// prepared before as it was; a retry prepares the rest.
  platform::status prepare_slots(int meta_fd, int data_fd, std::uint64_t to);
  /// Where the chunk of slots that starts at `from` ends: shmd prepares and offers a
  /// tier in chunks of about prepare_chunk_bytes of payloads (at least a magazine's
  /// worth), so that a client in a burst never waits for a whole tier.
  [[nodiscard]] std::uint64_t chunk_end(std::uint64_t from) const noexcept;
  static constexpr std::uint64_t prepare_chunk_bytes = std::uint64_t{4} << 20;
  /// shmd adopting a pool: faults in and locks every slot below `to`, which a previous
  /// daemon prepared.
  platform::status take_over(std::uint64_t to);
  /// Maps tier t from its segments' fds (checked against the header's sizes) and faults
  /// in what of it is offered (ready_slots); has_slot faults in the rest as it comes.
  platform::status map_tier(unsigned t, int meta_fd, int data_fd);

  /// Removes the named segments of pool `name` from the store (shmd --destroy).
  /// Returns how many files were removed.
  static unsigned destroy(const std::string& name, const platform::segment_store& store);

  // ---- the region interface ----
  core::pool_state& state() noexcept { return *state_; }
  core::shared_header& header(std::uint32_t i) noexcept { return headers_[i]; }
  core::context_record& context(std::uint32_t c) noexcept { return records_[c]; }
  core::magazine& mag(std::uint32_t m) noexcept {
    if (m < extra_) return extra_mags_[m];
    const std::uint64_t slot = std::uint64_t{m - extra_} * core::magazine_slots;
    const unsigned t = geo_.geo.tier_of(static_cast<std::uint32_t>(slot));
    return tier_mags_[t][(slot - geo_.geo.tier_begin(t)) / core::magazine_slots];
  }
  bool has_slot(std::uint32_t i) {
    return i < mapped_slots_.load(std::memory_order_acquire) || map_more(i);
  }
  bool has_magazine(std::uint32_t m) {
    if (m < extra_) return true;
    const std::uint64_t slot = std::uint64_t{m - extra_} * core::magazine_slots;
    return slot < geo_.max_slots && has_slot(static_cast<std::uint32_t>(slot));
  }
  [[nodiscard]] std::uint32_t context_count() const noexcept { return geo_.contexts; }
  [[nodiscard]] std::uint32_t magazine_count() const noexcept {
    return state_->magazines.load(std::memory_order_acquire);
  }

  void* payload(std::uint32_t i) noexcept { return data_ + std::size_t{i} * geo_.stride; }
  [[nodiscard]] proto::pool_header& info() noexcept { return *hdr_; }
  [[nodiscard]] const proto::pool_geometry& geometry() const noexcept { return geo_; }
  /// Slots this process can use without the slow path: in tiers it mapped, faulted in
  /// up to what is offered (clients) or prepared (shmd).
  [[nodiscard]] std::uint64_t mapped_slots() const noexcept { return mapped_slots_.load(); }
  [[nodiscard]] unsigned mapped_tiers() const noexcept { return mapped_tiers_; }
  /// Allocations minus frees over every context, past (the header's retired counters)
  /// and present (the records' counters, read relaxed: exact only when nobody runs).
  [[nodiscard]] std::uint64_t live_estimate() const noexcept;
  [[nodiscard]] int control_fd() const noexcept { return control_.get(); }

  /// Called (under the map's lock) with the first tier this process lacks; returns
  /// false when it cannot get it. Clients set it to a request to the daemon.
  std::function<bool(unsigned first_missing)> fetch_tiers;

private:
  pool_map() = default;
  bool map_more(std::uint32_t i);
  platform::status reserve_ranges();
  platform::status map_control(bool writable);
  void write_header(const pool_spec& spec, const detail::control_layout& cl);
  void build_shared_state(const detail::control_layout& cl);
  void describe_new_tier(unsigned t, const platform::segment& meta, const platform::segment& data);
  void forget_failed_tier(unsigned t);
  bool placed_on_node(unsigned t);
  platform::status map_tier_locked(unsigned t, int meta_fd, int data_fd);
  template <class F> void for_parts(unsigned t, std::uint64_t a, std::uint64_t b, F&& f);
  bool populate_to(std::uint64_t to);
  platform::status lock_prefix(unsigned t, std::uint64_t to);

  platform::unique_fd control_;
  platform::segment_store store_;
  std::size_t control_bytes_ = 0;
  bool writable_ = true;
  proto::pool_header* hdr_ = nullptr;
  core::pool_state* state_ = nullptr;
  core::context_record* records_ = nullptr;
  core::magazine* extra_mags_ = nullptr;
  std::uint32_t extra_ = 0;
  proto::pool_geometry geo_;
  core::shared_header* headers_ = nullptr; // reserved range, max_slots headers
  std::byte* data_ = nullptr;              // reserved range, max_slots payloads
  std::size_t headers_span_ = 0, data_span_ = 0;
  core::magazine* tier_mags_[core::max_tiers]{};
  std::size_t tier_mag_bytes_[core::max_tiers]{};
  std::atomic<std::uint64_t> mapped_slots_{0};
  unsigned mapped_tiers_ = 0;
  std::recursive_mutex mu_; // slow path: mapping tiers (fetch_tiers calls map_tier under it)
};
static_assert(core::region<pool_map>);

} // namespace slab::mapped
