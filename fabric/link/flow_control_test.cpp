#include "fabric/link/flow_control.h"

#include <gtest/gtest.h>

#include "fabric/common/error.h"

namespace pciesim::fabric {
namespace {

TEST(CreditPool, InfiniteNeverStalls) {
  CreditPool p;
  FcStats s;
  EXPECT_TRUE(p.infinite());
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(p.acquire(1, 16, 5, &s), 5u);
    p.commit(1, 16, 1000000);
  }
  EXPECT_EQ(s.stalls, 0u);
}

TEST(CreditPool, HeaderCreditsBoundOutstandingTlps) {
  CreditPool p(2, 0);
  FcStats s;
  EXPECT_EQ(p.acquire(1, 0, 0, &s), 0u);
  p.commit(1, 0, 100);
  EXPECT_EQ(p.acquire(1, 0, 0, &s), 0u);
  p.commit(1, 0, 150);
  EXPECT_EQ(p.headers_in_use(10), 2u);
  // Third TLP waits for the earliest release.
  EXPECT_EQ(p.acquire(1, 0, 10, &s), 100u);
  p.commit(1, 0, 300);
  EXPECT_EQ(s.stalls, 1u);
  EXPECT_EQ(s.stall_time, 90u);
  // At 200 one credit (released at 150) is free again.
  EXPECT_EQ(p.acquire(1, 0, 200, &s), 200u);
  EXPECT_EQ(s.stalls, 1u);
}

TEST(CreditPool, DataCreditsInSixteenByteUnits) {
  EXPECT_EQ(data_credits_for(256), 16u);
  EXPECT_EQ(data_credits_for(1), 1u);
  EXPECT_EQ(data_credits_for(0), 0u);
  CreditPool p(0, 32);  // 512 bytes of buffer
  FcStats s;
  EXPECT_EQ(p.acquire(1, 16, 0, &s), 0u);
  p.commit(1, 16, 40);
  EXPECT_EQ(p.acquire(1, 16, 0, &s), 0u);
  p.commit(1, 16, 80);
  EXPECT_EQ(p.acquire(1, 4, 0, &s), 40u);
  EXPECT_THROW(p.acquire(1, 33, 0, &s), ModelError);  // never fits
}

TEST(TagPool, WaitsForTheEarliestCompletion) {
  TagPool t(2);
  auto a = t.acquire(0);
  auto b = t.acquire(0);
  EXPECT_EQ(a.at, 0u);
  EXPECT_EQ(b.at, 0u);
  EXPECT_NE(a.tag, b.tag);
  t.release_at(a.tag, 50);
  t.release_at(b.tag, 30);
  EXPECT_EQ(t.outstanding(20), 2u);
  EXPECT_EQ(t.outstanding(40), 1u);
  auto c = t.acquire(10);
  EXPECT_EQ(c.tag, b.tag);
  EXPECT_EQ(c.at, 30u);
  t.release_at(c.tag, 60);
  EXPECT_EQ(t.all_released(), 60u);
}

}  // namespace
}  // namespace pciesim::fabric
