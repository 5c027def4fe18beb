#include "fabric/bridge/bridge_decode.h"

#include <gtest/gtest.h>

#include "fabric/config_space/capabilities.h"

namespace pciesim::fabric {
namespace {

ConfigSpace bridge(bool ari) {
  ConfigSpace cs;
  build_type1_header(cs, {});
  PcieCapOptions o;
  o.port_type = PCI_EXP_TYPE_DOWNSTREAM;
  o.ari_forwarding = ari;
  add_pcie_capability(cs, o);
  return cs;
}

TEST(BridgeDecode, MemoryWindows) {
  ConfigSpace cs = bridge(false);
  cs.write(PCI_MEMORY_BASE, 2, 0x8010);   // 0x80100000
  cs.write(PCI_MEMORY_LIMIT, 2, 0x8020);  // ..0x802fffff
  AddressWindow w = memory_window(cs);
  EXPECT_TRUE(w.enabled);
  EXPECT_EQ(w.base, 0x80100000u);
  EXPECT_EQ(w.limit, 0x802fffffu);
  EXPECT_TRUE(windows_contain(cs, 0x80100000, 4));
  EXPECT_TRUE(windows_contain(cs, 0x802ffffc, 4));
  EXPECT_FALSE(windows_contain(cs, 0x802ffffe, 4));  // straddles the limit
  EXPECT_FALSE(windows_contain(cs, 0x800fffff, 1));
  // 64-bit prefetchable window.
  cs.write(PCI_PREF_MEMORY_BASE, 2, 0x0000);
  cs.write(PCI_PREF_MEMORY_LIMIT, 2, 0x0ff0);  // limit 0x40_0fff_ffff
  cs.write(PCI_PREF_BASE_UPPER32, 4, 0x40);
  cs.write(PCI_PREF_LIMIT_UPPER32, 4, 0x40);
  EXPECT_TRUE(windows_contain(cs, 0x4000000000ull, 4096));
  EXPECT_TRUE(windows_contain(cs, 0x400fffffffull, 1));
  EXPECT_FALSE(windows_contain(cs, 0x4010000000ull, 1));
  // Disabled window: base above limit.
  cs.write(PCI_MEMORY_BASE, 2, 0xfff0);
  cs.write(PCI_MEMORY_LIMIT, 2, 0x0000);
  EXPECT_FALSE(memory_window(cs).enabled);
}

TEST(BridgeDecode, ConfigRoutingByBusNumber) {
  ConfigSpace cs = bridge(false);
  EXPECT_EQ(route_config(cs, 0, 0, true), ConfigRoute::kNotMine);  // unconfigured
  cs.write(PCI_PRIMARY_BUS, 4, 0x00050302);  // primary 2, secondary 3, subordinate 5
  EXPECT_EQ(route_config(cs, 2, 0, true), ConfigRoute::kNotMine);
  EXPECT_EQ(route_config(cs, 3, 0, true), ConfigRoute::kType0Secondary);
  EXPECT_EQ(route_config(cs, 3, 1, true), ConfigRoute::kBlockedDevice);
  EXPECT_EQ(route_config(cs, 4, 7, true), ConfigRoute::kType1Forward);
  EXPECT_EQ(route_config(cs, 6, 0, true), ConfigRoute::kNotMine);
}

TEST(BridgeDecode, AriForwardingExposesAllFunctionNumbers) {
  ConfigSpace cs = bridge(true);
  cs.write(PCI_PRIMARY_BUS, 4, 0x00030302);
  EXPECT_EQ(route_config(cs, 3, 1, true), ConfigRoute::kBlockedDevice);
  std::uint16_t exp = cs.find_capability(PCI_CAP_ID_EXP);
  cs.write(exp + PCI_EXP_DEVCTL2, 2, PCI_EXP_DEVCTL2_ARI);
  EXPECT_TRUE(ari_forwarding_enabled(cs));
  EXPECT_EQ(route_config(cs, 3, 1, true), ConfigRoute::kType0Secondary);
  // Without the capability bit the enable is not writable.
  ConfigSpace no = bridge(false);
  std::uint16_t e2 = no.find_capability(PCI_CAP_ID_EXP);
  no.write(e2 + PCI_EXP_DEVCTL2, 2, PCI_EXP_DEVCTL2_ARI);
  EXPECT_FALSE(ari_forwarding_enabled(no));
}

TEST(BridgeDecode, CommandBits) {
  ConfigSpace cs = bridge(false);
  EXPECT_FALSE(bus_master_enabled(cs));
  cs.write(PCI_COMMAND, 2, PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY);
  EXPECT_TRUE(bus_master_enabled(cs));
  EXPECT_TRUE(memory_space_enabled(cs));
  cs.write(PCI_BRIDGE_CONTROL, 2, PCI_BRIDGE_CTL_BUS_RESET);
  EXPECT_TRUE(secondary_bus_reset(cs));
}

}  // namespace
}  // namespace pciesim::fabric
