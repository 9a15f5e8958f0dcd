// pool_map: shmd's side: making a pool's segments, adopting the ones a previous daemon
// left, adding tiers, removing them all.
#include <slab/mapped/pool_map.hpp>
#include <slab/platform/process.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "internal.hpp"

namespace slab::mapped {

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

  p->write_header(spec, cl);
  p->build_shared_state(cl);
  if (status s = p->reserve_ranges(); !s) return s.error();
  // The magic last: a segment whose creator died half-way is never taken for a pool.
  std::atomic_ref<std::uint64_t>(p->hdr_->magic)
      .store(proto::pool_magic, std::memory_order_release);
  guard.armed = false;
  return p;
}

void pool_map::write_header(const pool_spec& spec, const control_layout& cl) {
  proto::pool_header& h = *hdr_;
  h.abi = proto::abi_version;
  h.header_bytes = static_cast<std::uint32_t>(cl.header_bytes);
  proto::set_text(h.name, spec.name);
  const core::slot_layout lay = core::slot_layout::for_payload(spec.slot_size);
  h.slot_size = spec.slot_size;
  h.stride = geo_.stride;
  h.align = static_cast<std::uint32_t>(lay.align);
  h.base_log2 = geo_.geo.base_log2();
  h.max_slots = geo_.max_slots;
  h.contexts = geo_.contexts;
  h.extra_magazines = extra_;
  h.magazine_slots = core::magazine_slots;
  h.page_policy = static_cast<std::uint32_t>(spec.hugepages);
  h.numa_node = spec.numa_node;
  h.max_tiers = core::max_tiers;
  h.state_offset = cl.state_offset;
  h.contexts_offset = cl.contexts_offset;
  h.magazines_offset = cl.magazines_offset;
  h.control_bytes = cl.bytes;
  h.created_unix_ns = now_unix_ns();
  h.identity = platform::random_u64();
  geo_.key_salt = proto::key_salt(h.identity);
}

// Objects in the zero-filled segment get their constructors' values (no_magazine
// links); then the extra magazines form the EMPTY stack.
void pool_map::build_shared_state(const control_layout& cl) {
  auto* base = reinterpret_cast<std::byte*>(hdr_);
  state_ = ::new (base + cl.state_offset) core::pool_state();
  records_ = reinterpret_cast<core::context_record*>(base + cl.contexts_offset);
  extra_mags_ = reinterpret_cast<core::magazine*>(base + cl.magazines_offset);
  for (std::uint32_t c = 0; c < geo_.contexts; ++c)
    ::new (&records_[c]) core::context_record();
  for (std::uint32_t m = 0; m < extra_; ++m)
    ::new (&extra_mags_[m]) core::magazine();
  core::pool_state& st = *state_;
  st.cell(core::cell_id::full).init({core::no_magazine, core::no_context, 0});
  std::uint32_t head = core::no_magazine;
  for (std::uint32_t m = 0; m < extra_; ++m) {
    extra_mags_[m].next.store(head, std::memory_order_relaxed);
    head = m;
  }
  st.cell(core::cell_id::empty).init({head, core::no_context, 0});
  st.cell(core::cell_id::fresh).init({0, core::no_context, 0});
  st.max_slots.store(geo_.max_slots);
  st.contexts.store(geo_.contexts);
  st.magazines.store(extra_);
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
    tiers.push_back({std::move(meta.value().fd), std::move(data.value().fd)});
  }
  // What was offered: the last tier may be offered only in part (prepared chunk by chunk).
  if (status s = p.take_over(p.state_->ready_slots.load(std::memory_order_acquire)); !s)
    return s.error();
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

// The tier table's entry for a tier whose segments were just made.
void pool_map::describe_new_tier(unsigned t, const segment& meta, const segment& data) {
  const std::uint64_t n = geo_.tier_slots(t);
  proto::tier_info& ti = hdr_->tiers[t];
  ti.first_slot = geo_.geo.tier_begin(t);
  ti.slots = n;
  ti.meta_bytes = meta.bytes;
  ti.data_bytes = data.bytes;
  ti.header_bytes = header_bytes_of(n);
  ti.page_size = static_cast<std::uint32_t>(data.page_size);
  ti.numa_node = hdr_->numa_node;
  ti.flags = (data.huge ? proto::tier_huge : 0U) | (meta.huge ? proto::tier_meta_huge : 0U) |
             (data.fallback.empty() ? 0U : proto::tier_fallback);
}

// Nothing of a tier that failed to come up stays: its reserved ranges back to PROT_NONE
// (which frees what was allocated of it), its files gone, so that a retry starts afresh.
void pool_map::forget_failed_tier(unsigned t) {
  const std::uint64_t n = geo_.tier_slots(t);
  const std::uint64_t first = geo_.geo.tier_begin(t);
  unmap_segment(headers_ + first, header_bytes_of(n), true);
  unmap_segment(data_ + first * geo_.stride, n * geo_.stride, true);
  unmap_segment(tier_mags_[t], tier_mag_bytes_[t], false);
  tier_mags_[t] = nullptr;
  tier_mag_bytes_[t] = 0;
  mapped_tiers_ = t;
  const std::string pool(proto::get_text(hdr_->name));
  remove_segment(tier_name(pool, t, "meta"), store_);
  remove_segment(tier_name(pool, t, "data"), store_);
}

// Every sampled page of tier t's payloads is on the node it was bound to.
bool pool_map::placed_on_node(unsigned t) {
  const proto::tier_info& ti = hdr_->tiers[t];
  const std::uint64_t n = geo_.tier_slots(t);
  result<std::vector<int>> where =
      page_nodes(data_ + ti.first_slot * geo_.stride, n * geo_.stride, ti.data_bytes / 64 + 1);
  if (!where) return false;
  for (const int node : where.value()) {
    if (node != ti.numa_node) return false;
  }
  return true;
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
  describe_new_tier(t, meta.value(), data.value());
  if (status s = map_tier_locked(t, meta.value().fd.get(), data.value().fd.get()); !s) {
    forget_failed_tier(t);
    return s.error();
  }
  ti.prepare_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  if (status s = prepare_slots(meta.value().fd.get(), data.value().fd.get(),
                               chunk_end(geo_.geo.tier_begin(t)));
      !s) {
    forget_failed_tier(t);
    return s.error();
  }
  ti.created_unix_ns = now_unix_ns();
  return tier_segments{std::move(meta.value().fd), std::move(data.value().fd)};
}

} // namespace slab::mapped
