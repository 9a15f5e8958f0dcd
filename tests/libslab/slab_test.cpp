#include <gtest/gtest.h>
#include <slab/slab.hpp>
TEST(slab, smoke) { slab::slab<int> s; auto k = s.emplace(3); EXPECT_EQ(*s.get(k), 3); EXPECT_TRUE(s.erase(k)); EXPECT_EQ(s.get(k), nullptr); }
