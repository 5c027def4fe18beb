#include "fabric/bridge/bridge_decode.h"

#include <linux/pci_regs.h>

namespace pciesim::fabric {

bool bus_behind(const ConfigSpace& cs, unsigned bus) {
  unsigned sec = secondary_bus(cs);
  return sec != 0 && bus >= sec && bus <= subordinate_bus(cs);
}

bool memory_space_enabled(const ConfigSpace& cs) {
  return cs.get16(PCI_COMMAND) & PCI_COMMAND_MEMORY;
}
bool bus_master_enabled(const ConfigSpace& cs) {
  return cs.get16(PCI_COMMAND) & PCI_COMMAND_MASTER;
}
bool secondary_bus_reset(const ConfigSpace& cs) {
  return cs.get16(PCI_BRIDGE_CONTROL) & PCI_BRIDGE_CTL_BUS_RESET;
}

bool ari_forwarding_enabled(const ConfigSpace& cs) {
  std::uint16_t exp = cs.find_capability(PCI_CAP_ID_EXP);
  return exp && (cs.get16(exp + PCI_EXP_DEVCTL2) & PCI_EXP_DEVCTL2_ARI);
}

bool rrs_software_visibility(const ConfigSpace& cs) {
  std::uint16_t exp = cs.find_capability(PCI_CAP_ID_EXP);
  return exp && (cs.get16(exp + PCI_EXP_RTCTL) & PCI_EXP_RTCTL_CRSSVE);
}

std::uint16_t acs_control(const ConfigSpace& cs) {
  std::uint16_t acs = cs.find_extended_capability(PCI_EXT_CAP_ID_ACS);
  return acs ? cs.get16(acs + PCI_ACS_CTRL) : 0;
}

bool acs_egress_blocked(const ConfigSpace& cs, unsigned port_number) {
  const std::uint16_t acs = cs.find_extended_capability(PCI_EXT_CAP_ID_ACS);
  if (!acs || !(cs.get16(acs + PCI_ACS_CTRL) & PCI_ACS_EC)) return false;
  const unsigned bits = (cs.get16(acs + PCI_ACS_CAP) >> 8) & 0xff;  // 0 = 256
  if (port_number >= (bits ? bits : 256u)) return false;
  const std::uint32_t v =
      cs.get32(static_cast<std::uint16_t>(acs + PCI_ACS_EGRESS_CTL_V + 4 * (port_number / 32)));
  return v & (1u << (port_number % 32));
}

ConfigRoute route_config(const ConfigSpace& bridge, unsigned bus, unsigned device,
                         bool downstream_port) {
  if (!bus_behind(bridge, bus)) return ConfigRoute::kNotMine;
  if (bus != secondary_bus(bridge)) return ConfigRoute::kType1Forward;
  // Only Device 0 exists below a PCIe downstream port unless ARI Forwarding
  // is enabled, in which case the 8-bit function number is used (PCIe Base
  // 7.3.1, 6.13).
  if (downstream_port && device != 0 && !ari_forwarding_enabled(bridge))
    return ConfigRoute::kBlockedDevice;
  return ConfigRoute::kType0Secondary;
}

}  // namespace pciesim::fabric
