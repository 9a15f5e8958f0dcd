// pool_map: attaching to a daemon-backed pool and mapping its tiers (clients, observers,
// and shmd itself).
#include <slab/mapped/pool_map.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <memory>
#include <mutex>

#include "internal.hpp"

namespace slab::mapped {

proto::pool_geometry plan_geometry(const pool_spec& spec, std::size_t huge_page) {
  const core::slot_layout lay = core::slot_layout::for_payload(spec.slot_size);
  std::uint64_t gran = min_gran;
  if (spec.hugepages != page_policy::off && huge_page != 0) {
    // Tier starts are multiples of tier 0's size B; B * stride must be a multiple of
    // the hugepage for every tier's payloads to start on one.
    const std::uint64_t low_bit = lay.stride & (~lay.stride + 1);
    const std::uint64_t data_gran = huge_page / low_bit;
    if (data_gran > gran) gran = data_gran;
  }
  std::uint64_t base = spec.capacity < gran ? gran : spec.capacity;
  base = std::bit_ceil(base);
  if (base > (std::uint64_t{1} << 31)) base = std::uint64_t{1} << 31;
  std::uint64_t max = spec.max_capacity < base ? base : spec.max_capacity;
  max = proto::round_up(max, gran);
  if (max > slot_limit) max = slot_limit / gran * gran;
  proto::pool_geometry g;
  g.geo = core::tier_geometry(static_cast<unsigned>(std::countr_zero(base)));
  g.max_slots = max;
  g.stride = static_cast<std::uint32_t>(lay.stride);
  g.contexts = spec.contexts;
  g.extra_magazines = 3 * spec.contexts + 2;
  return g;
}

pool_map::~pool_map() {
  for (unsigned t = 0; t < mapped_tiers_; ++t)
    unmap_segment(tier_mags_[t], tier_mag_bytes_[t], false);
  release_range(headers_, headers_span_);
  release_range(data_, data_span_);
  if (hdr_ != nullptr) unmap_segment(hdr_, control_bytes_, false);
}

status pool_map::reserve_ranges() {
  const std::size_t align = huge_page_size() != 0 ? huge_page_size() : normal_page_size();
  headers_span_ = proto::round_up(header_bytes_of(geo_.max_slots), align);
  data_span_ = proto::round_up(geo_.max_slots * geo_.stride, align);
  result<void*> h = reserve_range(headers_span_, align);
  if (!h) return h.error();
  headers_ = static_cast<core::shared_header*>(h.value());
  result<void*> d = reserve_range(data_span_, align);
  if (!d) return d.error();
  data_ = static_cast<std::byte*>(d.value());
  return ok_t{};
}

status pool_map::map_control(bool writable) {
  result<void*> m = map_segment(control_.get(), 0, control_bytes_, nullptr, writable, true);
  if (!m) return m.error();
  writable_ = writable;
  hdr_ = static_cast<proto::pool_header*>(m.value());
  return ok_t{};
}

result<std::unique_ptr<pool_map>> pool_map::attach(unique_fd control, bool writable) {
  std::unique_ptr<pool_map> p(new pool_map());
  result<std::uint64_t> size = fd_size(control.get());
  if (!size) return size.error();
  const auto bad = [](const std::string& why) {
    return fail(EPROTO, "pool control segment: " + why, sys_cause::invalid_argument);
  };
  if (size.value() < sizeof(proto::pool_header)) return bad("shorter than its header");
  p->control_ = std::move(control);
  p->control_bytes_ = static_cast<std::size_t>(size.value());
  if (status s = p->map_control(writable); !s) return s.error();
  const proto::pool_header& h = *p->hdr_;
  if (h.magic != proto::pool_magic) return bad("bad magic (not a slab pool)");
  if (h.abi != proto::abi_version) {
    return bad("ABI " + std::to_string(h.abi) + ", this library speaks " +
               std::to_string(proto::abi_version));
  }
  p->geo_.geo = core::tier_geometry(h.base_log2);
  p->geo_.max_slots = h.max_slots;
  p->geo_.stride = h.stride;
  p->geo_.contexts = h.contexts;
  p->geo_.extra_magazines = h.extra_magazines;
  p->extra_ = h.extra_magazines;
  p->geo_.key_salt = proto::key_salt(h.identity);
  const control_layout cl = control_for(h.contexts, h.extra_magazines);
  if (h.base_log2 > 31 || h.max_slots > slot_limit || h.max_slots % min_gran != 0 ||
      h.stride == 0 || h.stride < h.slot_size || h.align == 0 || h.stride % h.align != 0 ||
      h.magazine_slots != core::magazine_slots || h.max_tiers != core::max_tiers ||
      h.contexts == 0 || h.contexts > 65536 || h.extra_magazines != 3 * h.contexts + 2 ||
      cl.bytes != size.value() || h.state_offset != cl.state_offset ||
      h.contexts_offset != cl.contexts_offset || h.magazines_offset != cl.magazines_offset) {
    return bad("sizes and offsets do not agree with each other or with the segment");
  }
  auto* base = reinterpret_cast<std::byte*>(p->hdr_);
  p->state_ = reinterpret_cast<core::pool_state*>(base + cl.state_offset);
  p->records_ = reinterpret_cast<core::context_record*>(base + cl.contexts_offset);
  p->extra_mags_ = reinterpret_cast<core::magazine*>(base + cl.magazines_offset);
  if (status s = p->reserve_ranges(); !s) return s.error();
  return p;
}

// The three parts of tier t that slots [a, b) of it use (headers, magazines, payloads):
// f(address of the part, its offset in its segment, its length, its page size, the
// segment is data, whether on hugepages, the byte range [from, to) that [a, b) covers).
template <class F> void pool_map::for_parts(unsigned t, std::uint64_t a, std::uint64_t b, F&& f) {
  const proto::tier_info& ti = hdr_->tiers[t];
  const std::uint64_t first = geo_.geo.tier_begin(t), n = geo_.tier_slots(t);
  const bool meta_huge = (ti.flags & proto::tier_meta_huge) != 0;
  const std::size_t meta_page = meta_huge ? huge_page_size() : normal_page_size();
  const std::uint64_t la = a - first, lb = b - first;
  constexpr std::uint64_t K = core::magazine_slots, hs = sizeof(core::shared_header);
  f(reinterpret_cast<std::byte*>(headers_ + first), std::uint64_t{0}, header_bytes_of(n), meta_page,
    false, meta_huge, la * hs, lb * hs);
  f(reinterpret_cast<std::byte*>(tier_mags_[t]), header_bytes_of(n),
    std::uint64_t{tier_mag_bytes_[t]}, meta_page, false, meta_huge, la / K * sizeof(core::magazine),
    (lb + K - 1) / K * sizeof(core::magazine));
  f(data_ + first * geo_.stride, std::uint64_t{0}, n * geo_.stride, std::size_t{ti.page_size}, true,
    (ti.flags & proto::tier_huge) != 0, la * geo_.stride, lb * geo_.stride);
}

status pool_map::lock_prefix(unsigned t, std::uint64_t to) {
  status st = ok_t{};
  for_parts(t, geo_.geo.tier_begin(t), to,
            [&](std::byte* base, std::uint64_t, std::uint64_t len, std::size_t page, bool, bool,
                std::uint64_t, std::uint64_t end) {
              const std::uint64_t e = std::min(proto::round_up(end, page), len);
              if (st && e != 0) st = platform::lock(base, e);
            });
  return st;
}

// Faults slots [mapped_slots_, to) of the mapped tiers into this process's page tables
// (they are in memory already: shmd prepared them). Under mu_.
bool pool_map::populate_to(std::uint64_t to) {
  while (mapped_slots_.load(std::memory_order_relaxed) < to) {
    const std::uint64_t from = mapped_slots_.load(std::memory_order_relaxed);
    const unsigned t = geo_.geo.tier_of(static_cast<std::uint32_t>(from));
    if (t >= mapped_tiers_) return false;
    const std::uint64_t end = std::min(to, geo_.geo.tier_begin(t) + geo_.tier_slots(t));
    bool ok = true;
    for_parts(t, from, end,
              [&](std::byte* base, std::uint64_t, std::uint64_t len, std::size_t page, bool, bool,
                  std::uint64_t a, std::uint64_t b) {
                const std::uint64_t s = a / page * page, e = std::min(b, len);
                if (ok && s < e) ok = platform::populate(base + s, e - s, page, writable_).ok();
              });
    if (!ok) return false;
    mapped_slots_.store(end, std::memory_order_release);
  }
  return true;
}

std::uint64_t pool_map::chunk_end(std::uint64_t from) const noexcept {
  const unsigned t = geo_.geo.tier_of(static_cast<std::uint32_t>(from));
  const std::uint64_t tier_end = geo_.geo.tier_begin(t) + geo_.tier_slots(t);
  std::uint64_t chunk =
      std::bit_floor(std::max<std::uint64_t>(prepare_chunk_bytes / geo_.stride, 1));
  chunk = std::max<std::uint64_t>(chunk, core::magazine_slots);
  return std::min(from + chunk, tier_end);
}

status pool_map::prepare_slots(int meta_fd, int data_fd, std::uint64_t to) {
  std::lock_guard<std::recursive_mutex> g(mu_);
  const std::uint64_t from = mapped_slots_.load(std::memory_order_relaxed);
  if (mapped_tiers_ == 0 || to <= from) return ok_t{};
  const unsigned t = mapped_tiers_ - 1;
  proto::tier_info& ti = hdr_->tiers[t];
  const std::uint64_t first = geo_.geo.tier_begin(t), tier_end = first + geo_.tier_slots(t);
  if (from < first || to > tier_end || to % core::magazine_slots != 0) {
    return fail(EINVAL,
                "prepare_slots: slots " + std::to_string(from) + ".." + std::to_string(to) +
                    " are not in tier " + std::to_string(t),
                sys_cause::invalid_argument);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::string pool(proto::get_text(hdr_->name));
  status st = ok_t{};
  for_parts(t, from, to,
            [&](std::byte* base, std::uint64_t off, std::uint64_t len, std::size_t page, bool data,
                bool huge, std::uint64_t a, std::uint64_t b) {
              // Whole pages: the page that holds `from` was prepared with the slots before it.
              const std::uint64_t s = proto::round_up(a, page);
              const std::uint64_t e = std::min(proto::round_up(b, page), len);
              if (!st || s >= e) return;
              const std::string what =
                  (data ? "data segment " : "meta segment ") +
                  segment_path(store_, tier_name(pool, t, data ? "data" : "meta"), huge);
              st = prepare_new_range(base + s, data ? data_fd : meta_fd, off + s, e - s, page,
                                     ti.numa_node, what, huge);
            });
  if (!st) return st;
  for (std::uint64_t i = (from - first) / core::magazine_slots;
       i < (to - first) / core::magazine_slots; ++i)
    ::new (&tier_mags_[t][i]) core::magazine();
  ti.prepare_ns += static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  if (to == tier_end) {
    ti.flags |= proto::tier_locked;
    if (ti.numa_node >= 0 && placed_on_node(t)) ti.flags |= proto::tier_numa_ok;
  }
  mapped_slots_.store(to, std::memory_order_release);
  return ok_t{};
}

status pool_map::take_over(std::uint64_t to) {
  std::lock_guard<std::recursive_mutex> g(mu_);
  if (!populate_to(to)) {
    return fail(EFAULT, "faulting in slots up to " + std::to_string(to) + " failed",
                sys_cause::memory);
  }
  for (unsigned t = 0; t < mapped_tiers_; ++t) {
    const std::uint64_t first = geo_.geo.tier_begin(t), end = first + geo_.tier_slots(t);
    if (first >= to) break;
    if (status s = lock_prefix(t, std::min(to, end)); !s) return s;
  }
  return ok_t{};
}

status pool_map::map_tier(unsigned t, int meta_fd, int data_fd) {
  std::lock_guard<std::recursive_mutex> g(mu_);
  if (status s = map_tier_locked(t, meta_fd, data_fd); !s) return s;
  // What of it is offered now is faulted in here and now, the rest as it is offered.
  (void)populate_to(std::min(state_->ready_slots.load(std::memory_order_acquire),
                             geo_.geo.tier_begin(t) + geo_.tier_slots(t)));
  return ok_t{};
}

// Maps tier t's segments into the reserved ranges, nothing faulted in yet: clients fault
// in what is offered (populate_to), shmd prepares a new tier chunk by chunk.
status pool_map::map_tier_locked(unsigned t, int meta_fd, int data_fd) {
  if (t != mapped_tiers_ || t >= geo_.tier_count()) {
    return fail(EINVAL, "tier " + std::to_string(t) + " mapped out of order",
                sys_cause::invalid_argument);
  }
  const proto::tier_info& ti = hdr_->tiers[t];
  const std::uint64_t n = geo_.tier_slots(t);
  const std::uint64_t first = geo_.geo.tier_begin(t);
  result<std::uint64_t> ms = fd_size(meta_fd), ds = fd_size(data_fd);
  if (!ms || !ds || ti.slots != n || ti.first_slot != first || ms.value() != ti.meta_bytes ||
      ds.value() != ti.data_bytes || ti.header_bytes != header_bytes_of(n) ||
      ti.meta_bytes < header_bytes_of(n) + magazine_bytes_of(n) ||
      ti.data_bytes < n * geo_.stride) {
    return fail(EPROTO,
                "tier " + std::to_string(t) + ": segment sizes disagree with the pool header",
                sys_cause::invalid_argument);
  }
  result<void*> h = map_segment(meta_fd, 0, header_bytes_of(n), headers_ + first, writable_, false);
  if (!h) return h.error();
  const std::uint64_t mag_len = ti.meta_bytes - header_bytes_of(n);
  result<void*> m = map_segment(meta_fd, header_bytes_of(n), mag_len, nullptr, writable_, false);
  if (!m) return m.error();
  tier_mags_[t] = static_cast<core::magazine*>(m.value());
  tier_mag_bytes_[t] = mag_len;
  result<void*> d =
      map_segment(data_fd, 0, n * geo_.stride, data_ + first * geo_.stride, writable_, false);
  if (!d) return d.error();
  mapped_tiers_ = t + 1;
  return ok_t{};
}

std::uint64_t pool_map::live_estimate() const noexcept {
  std::uint64_t allocs = hdr_->retired_allocs.load(std::memory_order_relaxed);
  std::uint64_t frees = hdr_->retired_frees.load(std::memory_order_relaxed);
  for (std::uint32_t c = 0; c < geo_.contexts; ++c) {
    allocs += records_[c].counters.allocs.load(std::memory_order_relaxed);
    frees += records_[c].counters.frees.load(std::memory_order_relaxed);
  }
  return allocs - frees; // modular: a context may free more than it allocated
}

bool pool_map::map_more(std::uint32_t i) {
  const std::uint64_t ready = state_->ready_slots.load(std::memory_order_acquire);
  if (i >= ready) return false;
  std::lock_guard<std::recursive_mutex> g(mu_);
  if (i < mapped_slots_.load(std::memory_order_relaxed)) return true;
  // Tiers this process has not mapped yet: their fds from the daemon first.
  if (i >= geo_.geo.tier_begin(mapped_tiers_) && fetch_tiers) (void)fetch_tiers(mapped_tiers_);
  (void)populate_to(std::min(ready, geo_.geo.tier_begin(mapped_tiers_)));
  return i < mapped_slots_.load(std::memory_order_acquire);
}

} // namespace slab::mapped
