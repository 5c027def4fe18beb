// Type-1 (bridge) routing decisions, read straight from the bridge's config
// bytes (DESIGN.md section 5: the config space is the single source of
// truth). Used by root ports and switch ports; plain C++, unit-tested.
#pragma once

#include <cstdint>

#include "fabric/config_space/config_space.h"

namespace pciesim::fabric {

struct AddressWindow {
  bool enabled = false;  // base <= limit
  std::uint64_t base = 0;
  std::uint64_t limit = 0;  // inclusive
  bool contains(std::uint64_t addr, std::uint64_t len = 1) const {
    return enabled && addr >= base && len > 0 && addr + len - 1 <= limit && addr + len - 1 >= addr;
  }
};

// Windows are decoded on every routed request: inline.
inline AddressWindow memory_window(const ConfigSpace& cs) {  // non-prefetchable, 32-bit
  std::uint64_t base = static_cast<std::uint64_t>(cs.get16(0x20) & 0xfff0) << 16;
  std::uint64_t limit = (static_cast<std::uint64_t>(cs.get16(0x22) & 0xfff0) << 16) | 0xfffff;
  return {base <= limit, base, limit};
}
inline AddressWindow prefetchable_window(const ConfigSpace& cs) {  // 64-bit capable
  std::uint16_t b = cs.get16(0x24);
  std::uint16_t l = cs.get16(0x26);
  std::uint64_t base = static_cast<std::uint64_t>(b & 0xfff0) << 16;
  std::uint64_t limit = (static_cast<std::uint64_t>(l & 0xfff0) << 16) | 0xfffff;
  if ((b & 0xf) == 0x1) {  // 64-bit prefetchable window
    base |= static_cast<std::uint64_t>(cs.get32(0x28)) << 32;
    limit |= static_cast<std::uint64_t>(cs.get32(0x2c)) << 32;
  }
  return {base <= limit, base, limit};
}
// True if [addr, addr+len) lies in either memory window.
inline bool windows_contain(const ConfigSpace& cs, std::uint64_t addr, std::uint64_t len) {
  return memory_window(cs).contains(addr, len) || prefetchable_window(cs).contains(addr, len);
}

inline unsigned primary_bus(const ConfigSpace& cs) {
  return cs.get8(0x18);
}
inline unsigned secondary_bus(const ConfigSpace& cs) {
  return cs.get8(0x19);
}
inline unsigned subordinate_bus(const ConfigSpace& cs) {
  return cs.get8(0x1a);
}
// Bus in [secondary, subordinate] and secondary != 0 (unconfigured bridge).
bool bus_behind(const ConfigSpace& cs, unsigned bus);

bool memory_space_enabled(const ConfigSpace& cs);
bool bus_master_enabled(const ConfigSpace& cs);
bool secondary_bus_reset(const ConfigSpace& cs);
bool ari_forwarding_enabled(const ConfigSpace& cs);
bool rrs_software_visibility(const ConfigSpace& cs);
std::uint16_t acs_control(const ConfigSpace& cs);  // 0 without the capability
// ACS Egress Control: with EC enabled, whether the egress vector forbids
// the port whose Port Number is `port_number` (PCIe Base 7.7.8.4).
bool acs_egress_blocked(const ConfigSpace& cs, unsigned port_number);

// Where a config request arriving on a bridge's primary side goes.
enum class ConfigRoute {
  kNotMine,         // bus outside [secondary, subordinate]
  kType0Secondary,  // bus == secondary: convert to Type 0 and send on the link
  kType1Forward,    // deeper: forward as Type 1
  kBlockedDevice,   // Type 0 to device != 0 without ARI Forwarding: UR
};
ConfigRoute route_config(const ConfigSpace& bridge, unsigned bus, unsigned device,
                         bool downstream_port);

}  // namespace pciesim::fabric
