// A type-1 (PCI-to-PCI bridge) function with a PCI Express capability: a
// root port, a switch upstream port or a switch downstream port. Routing
// decisions are read from its config bytes (fabric/bridge/bridge_decode.h);
// this class builds the registers and reacts to writes that have side
// effects (Secondary Bus Reset, Max Payload Size).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "fabric/config_space/capabilities.h"
#include "fabric/config_space/config_space.h"
#include "fabric/tlp/routing_id.h"

namespace pciesim::models {

struct BridgeOptions {
  std::uint16_t vendor_id = 0x5ec0;
  std::uint16_t device_id = 0x0101;
  std::uint8_t revision = 1;
  std::uint8_t port_type = PCI_EXP_TYPE_ROOT_PORT;
  std::uint16_t physical_slot = 0;  // slot number for root/downstream ports
  bool ari_forwarding = true;
  bool rrs_sw_visibility = true;    // root ports
  std::uint16_t acs_supported = 0;  // PCI_ACS_* bits; 0 = no ACS capability
  unsigned egress_vector_bits = 0;  // with PCI_ACS_EC: bits of the Egress Control Vector
  bool aer = true;
  int link_speed = 3;
  int link_width = 8;
  std::uint8_t port_number = 0;
  std::uint32_t max_payload_supported = 512;
  bool root_rcb_128 = false;  // root port Link Control RCB (hardwired)
  bool dpc = false;           // Downstream Port Containment (downstream ports)
};

class BridgeFunction : public fabric::ConfigListener {
 public:
  BridgeFunction(std::string name, const BridgeOptions& options);
  BridgeFunction(const BridgeFunction&) = delete;
  BridgeFunction& operator=(const BridgeFunction&) = delete;

  const std::string& name() const { return name_; }
  fabric::ConfigSpace& config() { return cs_; }
  const fabric::ConfigSpace& config() const { return cs_; }
  const BridgeOptions& options() const { return options_; }

  // The function's own routing ID. Functions capture their bus number from
  // the Type 0 configuration requests addressed to them (PCIe Base 2.2.6.2).
  fabric::RoutingId rid() const { return rid_; }
  void capture_rid(fabric::RoutingId rid) { rid_ = rid; }

  bool downstream_port() const;
  std::uint16_t acs_control() const;

  // Side effects of config writes.
  std::function<void(bool asserted)> on_secondary_bus_reset;
  std::function<void(std::uint32_t mps)> on_mps_change;
  std::function<void(bool disabled)> on_link_disable;

  // Conventional reset of this function (hot reset from above).
  void reset();

  // Downstream Port Containment (PCIe Base 6.2.10, 7.9.14). `reason`: 0
  // an unmasked uncorrectable error the port detected, 1 ERR_NONFATAL
  // received, 2 ERR_FATAL received. Triggers when DPC is enabled for that
  // severity and not already triggered: records the reason and source,
  // disables the link (on_dpc with true) and returns true.
  bool dpc_trigger(unsigned reason, fabric::RoutingId source, bool fatal);
  bool dpc_triggered() const;
  std::uint16_t dpc_cap() const { return dpc_; }
  // The link goes down on a trigger, and retrains once software clears
  // Trigger Status (true: contained, false: released).
  std::function<void(bool contained)> on_dpc;
  // DPC interrupt (Interrupt Enable set): the host's DPC service.
  std::function<void()> on_dpc_interrupt;

  void config_written(fabric::ConfigSpace& cs, int watch, const fabric::ConfigWrite& w) override;

 private:
  enum Watch { kBridgeControl = 1, kDevCtl, kLnkCtl, kDpcStatus };
  std::string name_;
  BridgeOptions options_;
  fabric::ConfigSpace cs_;
  fabric::RoutingId rid_;
  std::uint16_t exp_ = 0;
  std::uint16_t dpc_ = 0;
};

}  // namespace pciesim::models
