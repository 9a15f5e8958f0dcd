// Slot layout (slab/core/layout.hpp) and slot headers (slab/core/slot_header.hpp).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <random>

#include <slab/core/layout.hpp>
#include <slab/core/slot_header.hpp>

namespace {

using slab::core::cache_line;
using slab::core::slot_layout;

constexpr bool pow2(std::size_t x) { return x != 0 && (x & (x - 1)) == 0; }

TEST(layout, alignment_rules_for_every_size_and_alignment) {
  const std::size_t aligns[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 65536};
  for (std::size_t size = 0; size <= 4200; ++size) {
    for (const std::size_t ta : aligns) {
      const slot_layout l = slot_layout::for_payload(size, ta);
      SCOPED_TRACE(testing::Message() << "size " << size << " align " << ta);
      // The rules, each one on its own...
      ASSERT_TRUE(pow2(l.align));
      ASSERT_GE(l.align, alignof(std::max_align_t));
      if (size >= cache_line) {
        ASSERT_GE(l.align, cache_line);
      }
      ASSERT_GE(l.align, ta);
      // ...and nothing stronger than they ask for.
      std::size_t want = alignof(std::max_align_t);
      if (size >= cache_line && want < cache_line) want = cache_line;
      if (ta > want) want = ta;
      ASSERT_EQ(l.align, want);
      // The stride: the (non-zero) size rounded up to the alignment, no more.
      ASSERT_EQ(l.size, size == 0 ? 1U : size);
      ASSERT_EQ(l.stride % l.align, 0U);
      ASSERT_GE(l.stride, l.size);
      ASSERT_LT(l.stride - l.size, l.align);
    }
  }
}

TEST(layout, examples) {
  EXPECT_EQ(slot_layout::for_payload(1).align, alignof(std::max_align_t));
  EXPECT_EQ(slot_layout::for_payload(1).stride, alignof(std::max_align_t));
  EXPECT_EQ(slot_layout::for_payload(0).stride, alignof(std::max_align_t));
  EXPECT_EQ(slot_layout::for_payload(63).align, alignof(std::max_align_t));
  EXPECT_EQ(slot_layout::for_payload(63).stride, 64U);
  EXPECT_EQ(slot_layout::for_payload(64).align, 64U);
  EXPECT_EQ(slot_layout::for_payload(64).stride, 64U);
  EXPECT_EQ(slot_layout::for_payload(65).stride, 128U);
  EXPECT_EQ(slot_layout::for_payload(200).stride, 256U);
  EXPECT_EQ(slot_layout::for_payload(8, 128).align, 128U);
  EXPECT_EQ(slot_layout::for_payload(8, 128).stride, 128U);
  EXPECT_EQ(slot_layout::for_payload(4096, 4096).stride, 4096U);
  EXPECT_EQ(slot_layout::for_payload(4097, 4096).stride, 8192U);
  EXPECT_EQ(slot_layout::for_payload(100, 32).align, 64U); // the cache line wins
}

TEST(slot_header, generation_helper) {
  EXPECT_FALSE(slab::core::gen_live(0));
  EXPECT_TRUE(slab::core::gen_live(1));
  EXPECT_FALSE(slab::core::gen_live(2));
  EXPECT_TRUE(slab::core::gen_live(0xFFFFFFFFU));
  const slab::core::slot_header h{};
  EXPECT_EQ(h.gen, 0U);
  EXPECT_EQ(h.aux, 0U);
}

TEST(shared_header, pack_unpack_round_trip) {
  using value = slab::core::shared_header::value;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t w = rng();
    const value v = value::unpack(w);
    ASSERT_EQ(v.gen, static_cast<std::uint32_t>(w));
    ASSERT_EQ(v.aux, static_cast<std::uint32_t>(w >> 32));
    ASSERT_EQ(v.pack(), w);
  }
  EXPECT_EQ((value{1, 2}.pack()), 0x0000000200000001ULL);
}

TEST(shared_header, load_store_and_cas) {
  using value = slab::core::shared_header::value;
  slab::core::shared_header h;
  EXPECT_EQ(h.load(), (value{0, 0}));
  h.store({5, 77});
  EXPECT_EQ(h.load(), (value{5, 77}));
  EXPECT_EQ(h.gen(), 5U);

  value expected{5, 77};
  EXPECT_TRUE(h.cas(expected, {6, 9}));
  EXPECT_EQ(h.load(), (value{6, 9}));
  EXPECT_EQ(expected, (value{5, 77})) << "success leaves expected alone";

  // A second free of the same generation (the double-free guard) fails and reports
  // what is there now.
  value stale{5, 77};
  EXPECT_FALSE(h.cas(stale, {6, 10}));
  EXPECT_EQ(stale, (value{6, 9}));
  EXPECT_EQ(h.load(), (value{6, 9}));

  // Same gen, different aux: the whole word is compared.
  value half{6, 8};
  EXPECT_FALSE(h.cas(half, {7, 8}));
  EXPECT_EQ(half, (value{6, 9}));
}

} // namespace
