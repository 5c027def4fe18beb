#include "fabric/tlp/routing_id.h"

#include <gtest/gtest.h>

namespace pciesim::fabric {

TEST(RoutingId, FormatsAsLspciDoes) {
  EXPECT_EQ(RoutingId(0x3a, 0x1f, 7).str(), "3a:1f.7");
  EXPECT_EQ(RoutingId(0, 0, 0).str(), "00:00.0");
  EXPECT_EQ(RoutingId(0x0201).str(), "02:00.1");
}

TEST(RoutingId, FieldsAndAriFunctionNumber) {
  RoutingId r(5, 3, 2);
  EXPECT_EQ(r.bus(), 5u);
  EXPECT_EQ(r.device(), 3u);
  EXPECT_EQ(r.function(), 2u);
  EXPECT_EQ(r.devfn(), 0x1au);
  EXPECT_EQ(r.value(), 0x051a);
}

TEST(RoutingId, ParsesWithAndWithoutDomain) {
  EXPECT_EQ(RoutingId::parse("02:00.1")->value(), 0x0201);
  EXPECT_EQ(RoutingId::parse("0000:ff:1f.7")->value(), 0xffff);
  EXPECT_FALSE(RoutingId::parse("0001:00:00.0"));  // only domain 0 exists
  EXPECT_FALSE(RoutingId::parse("02:20.0"));       // device > 31
  EXPECT_FALSE(RoutingId::parse("02:00.8"));       // function > 7
  EXPECT_FALSE(RoutingId::parse("junk"));
  EXPECT_FALSE(RoutingId::parse("100:00.0"));
}

}  // namespace pciesim::fabric
