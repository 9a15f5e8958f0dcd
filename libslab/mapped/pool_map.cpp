// pool_map: creating, attaching to and mapping the segments of a daemon-backed pool.
#include <slab/mapped/pool_map.hpp>

#include <bit>
#include <chrono>
#include <cstring>
#include <memory>
#include <new>

#include <slab/core/layout.hpp>

namespace slab::mapped {
namespace {

using platform::ok_t;
using platform::page_policy;
using platform::result;
using platform::segment;
using platform::segment_store;
using platform::status;
using platform::sys_cause;
using platform::unique_fd;
// The platform calls this file makes (platform/segment.hpp, platform/platform.hpp).
using platform::create_segment;
using platform::fd_size;
using platform::huge_page_size;
using platform::lock;
using platform::map_segment;
using platform::normal_page_size;
using platform::open_segment;
using platform::page_nodes;
using platform::prepare_new_range;
using platform::release_range;
using platform::remove_segment;
using platform::reserve_range;
using platform::unmap_segment;

// The pool's own errors: no errno from an OS call, a message naming the pool or tier.
platform::sys_error fail(int err, std::string what, sys_cause cause) {
  return platform::sys_error{err, std::move(what), cause};
}

constexpr std::uint64_t min_gran = 512; // slots: 512 headers fill one 4 KiB page
constexpr std::uint64_t slot_limit = core::max_slots;

struct control_layout {
  std::uint64_t header_bytes, state_offset, contexts_offset, magazines_offset, bytes;
};

control_layout control_for(std::uint32_t contexts, std::uint32_t extra) {
  control_layout c{};
  c.header_bytes = proto::round_up(sizeof(proto::pool_header), 4096);
  c.state_offset = c.header_bytes;
  c.contexts_offset = c.state_offset + proto::round_up(sizeof(core::pool_state), 64);
  c.magazines_offset = c.contexts_offset + std::uint64_t{contexts} * sizeof(core::context_record);
  c.bytes =
      proto::round_up(c.magazines_offset + std::uint64_t{extra} * sizeof(core::magazine), 4096);
  return c;
}

std::uint64_t now_unix_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// Meta segments go on hugepages only when every tier's header part is a whole number of
// them and starts on one: tier 0's headers must fill at least a hugepage.
bool meta_can_be_huge(const proto::pool_geometry& g, std::size_t huge) {
  return huge != 0 && g.geo.base() * sizeof(core::shared_header) >= huge;
}

std::uint64_t header_bytes_of(std::uint64_t slots) { return slots * sizeof(core::shared_header); }
std::uint64_t magazine_bytes_of(std::uint64_t slots) {
  return slots / core::magazine_slots * sizeof(core::magazine);
}

/// Where a new segment lives, for messages: its path, or the memfd's name.
std::string segment_path(const segment_store& store, const std::string& name, bool huge) {
  const std::string& dir = huge ? store.huge_dir : store.normal_dir;
  return dir.empty() ? "memfd '" + name + "'" : dir + "/" + name;
}

} // namespace

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

static std::string control_name(const std::string& pool) { return pool + ".control"; }
static std::string tier_name(const std::string& pool, unsigned t, const char* part) {
  return pool + ".t" + std::to_string(t) + "." + part;
}

result<std::unique_ptr<pool_map>> pool_map::create(const pool_spec& spec,
                                                   const segment_store& store) {
  if (spec.name.empty() || spec.name.size() >= proto::pool_name_max || spec.slot_size == 0 ||
      spec.contexts == 0) {
    return fail(EINVAL, "pool '" + spec.name + "': bad name, slot size or context count",
                sys_cause::invalid_argument);
  }
  std::unique_ptr<pool_map> p(new pool_map());
  p->geo_ = plan_geometry(spec, huge_page_size());
  p->extra_ = p->geo_.extra_magazines;
  const control_layout cl = control_for(p->geo_.contexts, p->extra_);
  result<segment> seg = create_segment(control_name(spec.name), cl.bytes, page_policy::off, store);
  if (!seg) return seg.error();
  // A pool that fails to come up leaves no file behind: a stray control segment would be
  // taken for a pool at the next start.
  struct remove_on_fail {
    const std::string& name;
    const segment_store& store;
    bool armed = true;
    ~remove_on_fail() {
      if (armed) pool_map::destroy(name, store);
    }
  } guard{spec.name, store};
  p->store_ = store;
  p->control_ = std::move(seg.value().fd);
  p->control_bytes_ = cl.bytes;
  // Not populated yet: its pages come after the NUMA binding (prepare_new_range).
  result<void*> cm = map_segment(p->control_.get(), 0, cl.bytes, nullptr, true, false);
  if (!cm) return cm.error();
  p->hdr_ = static_cast<proto::pool_header*>(cm.value());
  if (status s = prepare_new_range(
          p->hdr_, p->control_.get(), 0, cl.bytes, normal_page_size(), spec.numa_node,
          "control segment " + segment_path(store, control_name(spec.name), false), false);
      !s) {
    return s.error();
  }

  proto::pool_header& h = *p->hdr_;
  h.abi = proto::abi_version;
  h.header_bytes = static_cast<std::uint32_t>(cl.header_bytes);
  proto::set_text(h.name, spec.name);
  const core::slot_layout lay = core::slot_layout::for_payload(spec.slot_size);
  h.slot_size = spec.slot_size;
  h.stride = p->geo_.stride;
  h.align = static_cast<std::uint32_t>(lay.align);
  h.base_log2 = p->geo_.geo.base_log2();
  h.max_slots = p->geo_.max_slots;
  h.contexts = p->geo_.contexts;
  h.extra_magazines = p->extra_;
  h.magazine_slots = core::magazine_slots;
  h.page_policy = static_cast<std::uint32_t>(spec.hugepages);
  h.numa_node = spec.numa_node;
  h.max_tiers = core::max_tiers;
  h.state_offset = cl.state_offset;
  h.contexts_offset = cl.contexts_offset;
  h.magazines_offset = cl.magazines_offset;
  h.control_bytes = cl.bytes;
  h.created_unix_ns = now_unix_ns();

  // Objects in the zero-filled segment get their constructors' values (no_magazine
  // links); then the extra magazines form the EMPTY stack.
  auto* base = reinterpret_cast<std::byte*>(p->hdr_);
  p->state_ = ::new (base + cl.state_offset) core::pool_state();
  p->records_ = reinterpret_cast<core::context_record*>(base + cl.contexts_offset);
  p->extra_mags_ = reinterpret_cast<core::magazine*>(base + cl.magazines_offset);
  for (std::uint32_t c = 0; c < p->geo_.contexts; ++c)
    ::new (&p->records_[c]) core::context_record();
  for (std::uint32_t m = 0; m < p->extra_; ++m)
    ::new (&p->extra_mags_[m]) core::magazine();
  core::pool_state& st = *p->state_;
  st.cell(core::cell_id::full).init({core::no_magazine, core::no_context, 0});
  std::uint32_t head = core::no_magazine;
  for (std::uint32_t m = 0; m < p->extra_; ++m) {
    p->extra_mags_[m].next.store(head, std::memory_order_relaxed);
    head = m;
  }
  st.cell(core::cell_id::empty).init({head, core::no_context, 0});
  st.cell(core::cell_id::fresh).init({0, core::no_context, 0});
  st.max_slots.store(p->geo_.max_slots);
  st.contexts.store(p->geo_.contexts);
  st.magazines.store(p->extra_);
  if (status s = p->reserve_ranges(); !s) return s.error();
  // The magic last: a segment whose creator died half-way is never taken for a pool.
  std::atomic_ref<std::uint64_t>(h.magic).store(proto::pool_magic, std::memory_order_release);
  guard.armed = false;
  return p;
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

result<std::unique_ptr<pool_map>> pool_map::adopt(const std::string& name,
                                                  const segment_store& store,
                                                  std::vector<tier_segments>& tiers) {
  result<segment> ctl = open_segment(control_name(name), store);
  if (!ctl) return ctl.error();
  result<std::unique_ptr<pool_map>> m = attach(std::move(ctl.value().fd), true);
  if (!m) return m;
  pool_map& p = *m.value();
  p.store_ = store;
  if (proto::get_text(p.hdr_->name) != name) {
    return fail(EPROTO,
                "segment " + control_name(name) + " holds pool '" +
                    std::string(proto::get_text(p.hdr_->name)) + "'",
                sys_cause::invalid_argument);
  }
  if (status s = lock(p.hdr_, p.control_bytes_); !s) return s.error();
  const unsigned published = p.hdr_->tiers_published.load(std::memory_order_acquire);
  if (published > p.geo_.tier_count()) {
    return fail(EPROTO,
                "pool '" + name + "': " + std::to_string(published) + " tiers published, at most " +
                    std::to_string(p.geo_.tier_count()) + " possible",
                sys_cause::invalid_argument);
  }
  for (unsigned t = 0; t < published; ++t) {
    result<segment> meta = open_segment(tier_name(name, t, "meta"), store);
    if (!meta) return meta.error();
    result<segment> data = open_segment(tier_name(name, t, "data"), store);
    if (!data) return data.error();
    if (status s = p.map_tier(t, meta.value().fd.get(), data.value().fd.get()); !s)
      return s.error();
    if (status s = p.lock_tier(t); !s) return s.error();
    tiers.push_back({std::move(meta.value().fd), std::move(data.value().fd)});
  }
  remove_segment(tier_name(name, published, "meta"), store);
  remove_segment(tier_name(name, published, "data"), store);
  return m;
}

unsigned pool_map::destroy(const std::string& name, const segment_store& store) {
  unsigned n = remove_segment(control_name(name), store) ? 1U : 0U;
  for (unsigned t = 0; t < core::max_tiers; ++t) {
    n += remove_segment(tier_name(name, t, "meta"), store) ? 1U : 0U;
    n += remove_segment(tier_name(name, t, "data"), store) ? 1U : 0U;
  }
  return n;
}

status pool_map::lock_tier(unsigned t) {
  const std::uint64_t first = geo_.geo.tier_begin(t), n = geo_.tier_slots(t);
  if (status s = lock(headers_ + first, header_bytes_of(n)); !s) return s;
  if (status s = lock(tier_mags_[t], tier_mag_bytes_[t]); !s) return s;
  return lock(data_ + first * geo_.stride, n * geo_.stride);
}

result<tier_segments> pool_map::create_tier(unsigned t) {
  std::lock_guard<std::recursive_mutex> g(mu_);
  if (t != mapped_tiers_ || t >= geo_.tier_count()) {
    return fail(EINVAL, "create_tier(" + std::to_string(t) + "): out of order or past the ceiling",
                sys_cause::invalid_argument);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::string pool(proto::get_text(hdr_->name));
  const std::uint64_t n = geo_.tier_slots(t);
  const std::size_t huge = huge_page_size();
  const auto policy = static_cast<page_policy>(hdr_->page_policy);
  const page_policy meta_policy = policy != page_policy::off && meta_can_be_huge(geo_, huge)
                                      ? page_policy::prefer
                                      : page_policy::off;
  // A previous daemon may have died creating this very tier: its files were never
  // published, so nobody maps them.
  remove_segment(tier_name(pool, t, "meta"), store_);
  remove_segment(tier_name(pool, t, "data"), store_);
  result<segment> meta = create_segment(
      tier_name(pool, t, "meta"), header_bytes_of(n) + magazine_bytes_of(n), meta_policy, store_);
  if (!meta) return meta.error();
  result<segment> data =
      create_segment(tier_name(pool, t, "data"), n * geo_.stride, policy, store_);
  if (!data) {
    remove_segment(tier_name(pool, t, "meta"), store_);
    return data.error();
  }
  proto::tier_info& ti = hdr_->tiers[t];
  ti.first_slot = geo_.geo.tier_begin(t);
  ti.slots = n;
  ti.meta_bytes = meta.value().bytes;
  ti.data_bytes = data.value().bytes;
  ti.header_bytes = header_bytes_of(n);
  ti.page_size = static_cast<std::uint32_t>(data.value().page_size);
  ti.numa_node = hdr_->numa_node;
  ti.flags = (data.value().huge ? proto::tier_huge : 0U) |
             (meta.value().huge ? proto::tier_meta_huge : 0U) |
             (data.value().fallback.empty() ? 0U : proto::tier_fallback);
  if (status s = map_tier_locked(t, meta.value().fd.get(), data.value().fd.get(), true); !s) {
    // Nothing of the tier stays: its reserved ranges back to PROT_NONE (which frees what
    // was allocated of it), its files gone, so that a retry starts afresh.
    const std::uint64_t first = geo_.geo.tier_begin(t);
    unmap_segment(headers_ + first, header_bytes_of(n), true);
    unmap_segment(data_ + first * geo_.stride, n * geo_.stride, true);
    unmap_segment(tier_mags_[t], tier_mag_bytes_[t], false);
    tier_mags_[t] = nullptr;
    tier_mag_bytes_[t] = 0;
    remove_segment(tier_name(pool, t, "meta"), store_);
    remove_segment(tier_name(pool, t, "data"), store_);
    return s.error();
  }
  ti.flags |= proto::tier_locked;
  if (ti.numa_node >= 0) {
    result<std::vector<int>> where =
        page_nodes(data_ + ti.first_slot * geo_.stride, n * geo_.stride, ti.data_bytes / 64 + 1);
    bool all = where.ok();
    if (all) {
      for (int node : where.value())
        all = all && node == ti.numa_node;
    }
    if (all) ti.flags |= proto::tier_numa_ok;
  }
  ti.prepare_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  ti.created_unix_ns = now_unix_ns();
  return tier_segments{std::move(meta.value().fd), std::move(data.value().fd)};
}

status pool_map::map_tier(unsigned t, int meta_fd, int data_fd) {
  std::lock_guard<std::recursive_mutex> g(mu_);
  return map_tier_locked(t, meta_fd, data_fd, false);
}

status pool_map::map_tier_locked(unsigned t, int meta_fd, int data_fd, bool fresh) {
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
  // A fresh tier is populated by prepare_new_range, after its NUMA binding.
  const bool populate = !fresh;
  result<void*> h =
      map_segment(meta_fd, 0, header_bytes_of(n), headers_ + first, writable_, populate);
  if (!h) return h.error();
  const std::uint64_t mag_len = ti.meta_bytes - header_bytes_of(n);
  result<void*> m = map_segment(meta_fd, header_bytes_of(n), mag_len, nullptr, writable_, populate);
  if (!m) return m.error();
  tier_mags_[t] = static_cast<core::magazine*>(m.value());
  tier_mag_bytes_[t] = mag_len;
  result<void*> d =
      map_segment(data_fd, 0, n * geo_.stride, data_ + first * geo_.stride, writable_, populate);
  if (!d) return d.error();
  if (fresh) {
    const bool meta_huge = (ti.flags & proto::tier_meta_huge) != 0;
    const bool data_huge = (ti.flags & proto::tier_huge) != 0;
    const std::size_t meta_page = meta_huge ? huge_page_size() : normal_page_size();
    const std::string pool(proto::get_text(hdr_->name));
    const std::string meta_what =
        "meta segment " + segment_path(store_, tier_name(pool, t, "meta"), meta_huge);
    const std::string data_what =
        "data segment " + segment_path(store_, tier_name(pool, t, "data"), data_huge);
    if (status s = prepare_new_range(h.value(), meta_fd, 0, header_bytes_of(n), meta_page,
                                     ti.numa_node, meta_what, meta_huge);
        !s)
      return s;
    if (status s = prepare_new_range(m.value(), meta_fd, header_bytes_of(n), mag_len, meta_page,
                                     ti.numa_node, meta_what, meta_huge);
        !s)
      return s;
    if (status s = prepare_new_range(d.value(), data_fd, 0, n * geo_.stride, ti.page_size,
                                     ti.numa_node, data_what, data_huge);
        !s)
      return s;
    for (std::uint64_t i = 0; i < n / core::magazine_slots; ++i)
      ::new (&tier_mags_[t][i]) core::magazine();
  }
  mapped_tiers_ = t + 1;
  mapped_slots_.store(first + n, std::memory_order_release);
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
  if (i >= state_->ready_slots.load(std::memory_order_acquire)) return false;
  std::lock_guard<std::recursive_mutex> g(mu_);
  if (i < mapped_slots_.load(std::memory_order_relaxed)) return true;
  if (!fetch_tiers) return false;
  const unsigned first = mapped_tiers_;
  bool ok = fetch_tiers(first);
  (void)ok;
  return i < mapped_slots_.load(std::memory_order_acquire);
}

} // namespace slab::mapped
