#include <gtest/gtest.h>
#include <slab/core/tier.hpp>
TEST(tier, placeholder) { EXPECT_EQ(slab::core::tier_geometry(4).tier_of(16), 1U); }
