// Enumeration results (bus numbers, BAR addresses, bridge windows) on three
// topologies, read back from the hardware models after the host booted.
#include <gtest/gtest.h>

#include <linux/pci_regs.h>

#include "fabric/bridge/bridge_decode.h"
#include "fabric/config_space/capabilities.h"
#include "sim/builder/system.h"
#include "sim/config/config_loader.h"
#include "sim/facade/simulation.h"
#include "sim/host/host.h"

namespace pciesim::sim {
namespace {

using fabric::ConfigSpace;

struct Booted {
  explicit Booted(const std::string& yaml) : sim(load_config_text(yaml, "enum.yaml")) {
    sim.boot();
  }
  ConfigSpace& cs(const std::string& name) { return sim.system().function(name)->config(); }
  std::string rid(const std::string& name) { return sim.system().function(name)->rid().str(); }
  std::uint64_t bar(const std::string& name, unsigned i) {
    return fabric::bar_address(cs(name), static_cast<std::uint16_t>(PCI_BASE_ADDRESS_0 + 4 * i));
  }
  std::string buses(const std::string& bridge) {
    ConfigSpace& c = cs(bridge);
    char b[32];
    std::snprintf(b, sizeof b, "%02x/%02x/%02x", fabric::primary_bus(c), fabric::secondary_bus(c),
                  fabric::subordinate_bus(c));
    return b;
  }
  Simulation sim;
};

TEST(Enumeration, SwitchWithTwoEndpoints) {
  Booted b(R"(
root_complex: {root_ports: 2}
switches: [{name: sw0, downstream_ports: 4}]
endpoints: [{name: ep0}, {name: ep1}]
links:
  - {upstream: rc.rp0, downstream: sw0}
  - {upstream: sw0.dsp0, downstream: ep0}
  - {upstream: sw0.dsp1, downstream: ep1}
)");
  EXPECT_EQ(b.rid("rc.rp0"), "00:01.0");
  EXPECT_EQ(b.rid("rc.rp1"), "00:02.0");
  EXPECT_EQ(b.buses("rc.rp0"), "00/01/06");  // switch: internal bus 2, DSPs 3-6
  EXPECT_EQ(b.buses("sw0.usp"), "01/02/06");
  EXPECT_EQ(b.buses("sw0.dsp0"), "02/03/03");
  EXPECT_EQ(b.buses("sw0.dsp3"), "02/06/06");
  EXPECT_EQ(b.buses("rc.rp1"), "00/07/07");
  EXPECT_EQ(b.rid("sw0.dsp1"), "02:01.0");
  EXPECT_EQ(b.rid("ep0.pf"), "03:00.0");
  EXPECT_EQ(b.rid("ep1.pf"), "04:00.0");
  // BAR0 (16 KiB, non-prefetchable) from the 32-bit window, BAR2 (1 MiB,
  // prefetchable 64-bit) from the 64-bit window; 1 MiB bridge granules.
  EXPECT_EQ(b.bar("ep0.pf", 0), 0x80000000u);
  EXPECT_EQ(b.bar("ep1.pf", 0), 0x80100000u);
  EXPECT_EQ(b.bar("ep0.pf", 2), 0x4000000000ull);
  EXPECT_EQ(b.bar("ep1.pf", 2), 0x4000100000ull);
  fabric::AddressWindow w = fabric::memory_window(b.cs("rc.rp0"));
  EXPECT_EQ(w.base, 0x80000000u);
  EXPECT_EQ(w.limit, 0x801fffffu);
  fabric::AddressWindow p = fabric::prefetchable_window(b.cs("sw0.dsp1"));
  EXPECT_EQ(p.base, 0x4000100000ull);
  EXPECT_EQ(p.limit, 0x40001fffffull);
  // Empty downstream ports and root ports have their windows disabled.
  EXPECT_FALSE(fabric::memory_window(b.cs("sw0.dsp2")).enabled);
  EXPECT_FALSE(fabric::prefetchable_window(b.cs("rc.rp1")).enabled);
  // Bridges forward; the bound driver enabled the endpoints.
  EXPECT_TRUE(fabric::bus_master_enabled(b.cs("sw0.dsp0")));
  EXPECT_EQ(b.cs("ep0.pf").get16(PCI_COMMAND) & 0x6, 0x6);
  EXPECT_EQ(b.sim.host().pci().devices().size(), 10u);
}

TEST(Enumeration, EndpointsOnRootPorts) {
  Booted b(R"(
root_complex: {root_ports: 3}
endpoints: [{name: a}, {name: b, device_memory: 4MiB}]
links:
  - {upstream: rc.rp0, downstream: a}
  - {upstream: rc.rp2, downstream: b}
)");
  EXPECT_EQ(b.buses("rc.rp0"), "00/01/01");
  EXPECT_EQ(b.buses("rc.rp1"), "00/02/02");
  EXPECT_EQ(b.buses("rc.rp2"), "00/03/03");
  EXPECT_EQ(b.rid("a.pf"), "01:00.0");
  EXPECT_EQ(b.rid("b.pf"), "03:00.0");
  EXPECT_EQ(b.bar("a.pf", 0), 0x80000000u);
  EXPECT_EQ(b.bar("b.pf", 0), 0x80100000u);
  // 4 MiB BAR: the window and the BAR are 4 MiB aligned.
  EXPECT_EQ(b.bar("b.pf", 2), 0x4000400000ull);
  fabric::AddressWindow p = fabric::prefetchable_window(b.cs("rc.rp2"));
  EXPECT_EQ(p.base, 0x4000400000ull);
  EXPECT_EQ(p.limit, 0x40007fffffull);
  // MPS: root ports support 256 bytes, so everything below runs at 256.
  EXPECT_EQ(fabric::max_payload_size(b.cs("a.pf")), 256u);
  EXPECT_EQ(fabric::max_read_request(b.cs("a.pf")), 512u);
}

TEST(Enumeration, NestedSwitchesAndVfBusReservation) {
  Booted b(R"(
switches:
  - {name: sw0, downstream_ports: 2}
  - {name: sw1, downstream_ports: 2}
endpoints:
  - name: ep0
    sriov: {total_vfs: 300}
  - name: ep1
links:
  - {upstream: rc.rp0, downstream: sw0}
  - {upstream: sw0.dsp0, downstream: sw1}
  - {upstream: sw1.dsp0, downstream: ep0}
  - {upstream: sw0.dsp1, downstream: ep1}
)");
  EXPECT_EQ(b.buses("sw0.usp"), "01/02/08");
  EXPECT_EQ(b.buses("sw0.dsp0"), "02/03/07");
  EXPECT_EQ(b.buses("sw1.usp"), "03/04/07");
  // ep0's 300 VFs reach RID 05:00.0 + 300 = 06:2c.0: bus 6 is reserved.
  EXPECT_EQ(b.buses("sw1.dsp0"), "04/05/06");
  EXPECT_EQ(b.buses("sw1.dsp1"), "04/07/07");
  EXPECT_EQ(b.buses("sw0.dsp1"), "02/08/08");
  EXPECT_EQ(b.rid("ep0.pf"), "05:00.0");
  EXPECT_EQ(b.rid("ep1.pf"), "08:00.0");
  // ARI forwarding was enabled above the ARI device; the PF was told.
  EXPECT_TRUE(fabric::ari_forwarding_enabled(b.cs("sw1.dsp0")));
  std::uint16_t sriov = b.cs("ep0.pf").find_extended_capability(PCI_EXT_CAP_ID_SRIOV);
  EXPECT_TRUE(b.cs("ep0.pf").get16(sriov + PCI_SRIOV_CTRL) & PCI_SRIOV_CTRL_ARI);
  // VF BAR0: 300 x 16 KiB, aligned to 16 KiB, inside the non-prefetchable window.
  std::uint64_t vfbar = fabric::bar_address(b.cs("ep0.pf"), sriov + PCI_SRIOV_BAR);
  fabric::AddressWindow w = fabric::memory_window(b.cs("sw1.dsp0"));
  EXPECT_GE(vfbar, w.base);
  EXPECT_LE(vfbar + 300 * 16384 - 1, w.limit);
  EXPECT_EQ(vfbar % 16384, 0u);
}

}  // namespace
}  // namespace pciesim::sim
